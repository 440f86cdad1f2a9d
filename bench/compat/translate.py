"""Translate Ray Tune's own example scripts to poptune by a mechanical import swap.

The scripts are read from the *installed* ``ray`` wheel
(``<site-packages>/ray/tune/examples``); nothing is downloaded and no Ray code is
committed to this repository. Translated copies go to an output directory (default: a
fresh temp dir, or ``--out``; ``bench/results/`` is gitignored) and a diff summary is
printed.

Only import statements and ``ray.tune.`` attribute paths are rewritten; the code is
otherwise byte-for-byte Ray's. The rules, applied line by line in this order (the first
matching import rule wins for a line; rule 9 applies to every line afterwards):

1. ``from ray.tune.examples.X import ...``
   -> ``from poptune.examples.X import ...`` when poptune ships ``poptune.examples.X``
   (e.g. ``mnist_pytorch``), otherwise ``from X import ...``: the translated sibling
   script in the output directory (the runner puts that directory on ``PYTHONPATH``).
2. ``from ray.air.integrations.X import ...`` -> ``from poptune.integration.X import ...``
   (``setup_mlflow``, ``MLflowLoggerCallback``).
3. ``from ray.air import ...`` / ``from ray.train import ...`` (``Checkpoint``,
   ``RunConfig``, ``CheckpointConfig``, ``FailureConfig``, ``Result``) ->
   ``from poptune import ...``.
4. ``from ray.tune.X import ...`` -> ``from poptune.X import ...``
   (``ray.tune.schedulers.pb2`` -> ``poptune.schedulers.pb2`` and so on; a module poptune
   lacks, e.g. ``ray.tune.utils``, stays unresolved and the script fails -> excluded).
5. ``from ray.tune import ...`` -> ``from poptune import ...``.
6. ``from ray import tune`` -> ``import poptune as tune``; other ``from ray import A, B``
   -> ``from poptune import A, B``.
7. ``import ray.tune.X as Y`` -> ``import poptune.X as Y``; ``import ray.tune``
   -> ``import poptune as ray`` (so ``ray.tune.X`` keeps resolving).
8. ``import ray`` -> ``import poptune as ray`` (poptune has ``init``, ``shutdown``,
   ``is_initialized``, ``put``, ``get``; ``poptune.tune`` is poptune itself).
9. On non-import lines, the attribute path ``ray.tune.`` -> ``ray.`` (valid because of
   rule 8: ``ray`` is poptune there; ``ray.tune.X`` would resolve too, this just makes
   the swap explicit).

Anything else (``ray.rllib``, ``ray.train.torch``, ...) is left untouched; such a script
fails to import and is listed as excluded with the reason.

Usage::

    python bench/compat/translate.py [--out DIR] [--diff] [script.py ...]
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import re
import shutil
import sys
import tempfile


def ray_examples_dir() -> str:
    """Directory of the example scripts shipped in the installed ray wheel."""
    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.origin:
        raise SystemExit("ray is not installed; `pip install ray` to read its examples")
    return os.path.join(os.path.dirname(spec.origin), "tune", "examples")


def _poptune_has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_IND = r"^(?P<ind>\s*)"
_RULES: list[tuple[str, re.Pattern[str], object]] = []


def _rule(name: str, pattern: str):
    def deco(fn):
        _RULES.append((name, re.compile(pattern), fn))
        return fn
    return deco


@_rule("examples", _IND + r"from\s+ray\.tune\.examples\.(?P<mod>[\w.]+)\s+import\b")
def _examples(m: re.Match[str]) -> str:
    mod = m["mod"]
    target = f"poptune.examples.{mod}" if _poptune_has(f"poptune.examples.{mod}") else mod
    return f"{m['ind']}from {target} import"


@_rule("air-integrations", _IND + r"from\s+ray\.air\.integrations\.(?P<mod>[\w.]+)\s+import\b")
def _air_integrations(m: re.Match[str]) -> str:
    return f"{m['ind']}from poptune.integration.{m['mod']} import"


@_rule("air/train", _IND + r"from\s+ray\.(?:air|train)\s+import\b")
def _air_train(m: re.Match[str]) -> str:
    return f"{m['ind']}from poptune import"


@_rule("from-ray.tune.X", _IND + r"from\s+ray\.tune\.(?P<mod>[\w.]+)\s+import\b")
def _from_tune_sub(m: re.Match[str]) -> str:
    return f"{m['ind']}from poptune.{m['mod']} import"


@_rule("from-ray.tune", _IND + r"from\s+ray\.tune\s+import\b")
def _from_tune(m: re.Match[str]) -> str:
    return f"{m['ind']}from poptune import"


@_rule("from-ray-import-tune", _IND + r"from\s+ray\s+import\s+tune\s*$")
def _from_ray_tune(m: re.Match[str]) -> str:
    return f"{m['ind']}import poptune as tune"


@_rule("from-ray-import", _IND + r"from\s+ray\s+import\b")
def _from_ray(m: re.Match[str]) -> str:
    return f"{m['ind']}from poptune import"


@_rule("import-ray.tune.X", _IND + r"import\s+ray\.tune\.(?P<mod>[\w.]+)\s+as\b")
def _import_tune_sub(m: re.Match[str]) -> str:
    return f"{m['ind']}import poptune.{m['mod']} as"


@_rule("import-ray.tune", _IND + r"import\s+ray\.tune\s*$")
def _import_tune(m: re.Match[str]) -> str:
    return f"{m['ind']}import poptune as ray"


@_rule("import-ray", _IND + r"import\s+ray(?=\s*(?:#|$))")
def _import_ray(m: re.Match[str]) -> str:
    return f"{m['ind']}import poptune as ray"


_ATTR = re.compile(r"(?<![\w.])ray\.tune\.")


def translate_source(src: str) -> tuple[str, list[tuple[int, str, str, str]]]:
    """Return the translated source and the list of (line no, rule, old, new) changes."""
    out: list[str] = []
    changes: list[tuple[int, str, str, str]] = []
    for i, line in enumerate(src.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        nl = line[len(body):]
        new = body
        for name, pat, fn in _RULES:
            m = pat.match(body)
            if m:
                new = fn(m) + body[m.end():]
                break
        else:
            name = "ray.tune.-attr"
            if not body.lstrip().startswith("#"):
                new = _ATTR.sub("ray.", body)
        if new != body:
            changes.append((i, name, body, new))
        out.append(new + nl)
    return "".join(out), changes


def translate_all(out_dir: str, names: list[str] | None = None, *, show_diff: bool = False,
                  quiet: bool = False) -> dict[str, list[tuple[int, str, str, str]]]:
    """Translate every example (or ``names``) into ``out_dir``; print a diff summary."""
    src_dir = ray_examples_dir()
    os.makedirs(out_dir, exist_ok=True)
    # always translate every top-level script: examples import their siblings (rule 1)
    all_names = sorted(n for n in os.listdir(src_dir) if n.endswith(".py"))
    result: dict[str, list[tuple[int, str, str, str]]] = {}
    for name in all_names:
        with open(os.path.join(src_dir, name), encoding="utf-8") as f:
            src = f.read()
        new, changes = translate_source(src)
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(new)
        result[name] = changes
        if quiet or (names and name not in names):
            continue
        print(f"{name}: {len(changes)} line(s) rewritten")
        for lineno, rule, old, newl in changes:
            print(f"  L{lineno:<4} [{rule}] {old.strip()}  ->  {newl.strip()}")
        if show_diff and changes:
            sys.stdout.writelines(difflib.unified_diff(
                src.splitlines(keepends=True), new.splitlines(keepends=True),
                f"ray/tune/examples/{name}", f"translated/{name}"))
    # sub-packages (pbt_dcgan_mnist/, pbt_transformers/) are copied translated too
    for entry in os.listdir(src_dir):
        sub = os.path.join(src_dir, entry)
        if os.path.isdir(sub) and entry != "__pycache__":
            dst = os.path.join(out_dir, entry)
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(sub, dst, ignore=shutil.ignore_patterns("__pycache__"))
            for root, _, files in os.walk(dst):
                for fn in files:
                    if fn.endswith(".py"):
                        p = os.path.join(root, fn)
                        with open(p, encoding="utf-8") as f:
                            new, _ = translate_source(f.read())
                        with open(p, "w", encoding="utf-8") as f:
                            f.write(new)
    if not quiet:
        total = sum(len(c) for n, c in result.items() if not names or n in names)
        print(f"\n{len(names or result)} script(s), {total} line(s) rewritten -> {out_dir}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scripts", nargs="*", help="example file names (default: all)")
    p.add_argument("--out", default=None, help="output directory (default: a temp dir)")
    p.add_argument("--diff", action="store_true", help="also print unified diffs")
    args = p.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="poptune-compat-")
    translate_all(out, args.scripts or None, show_diff=args.diff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
