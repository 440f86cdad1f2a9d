"""Resolve a ``param_space`` into concrete configs: grid expansion plus random sampling.

Ray Tune's rules (``ray.tune.search.variant_generator``):

* ``{"grid_search": [...]}`` values form a cartesian product. Grid keys are sorted by their
  path and the *first* one varies fastest: ``{"x": grid([1, 2]), "y": grid(["a", "b"])}``
  gives ``(1, a), (2, a), (1, b), (2, b)``.
* Each grid point samples the random domains anew (unless ``constant_grid_search``: then the
  random values are drawn once and reused for every grid point of that sample).
* ``num_samples`` repeats the whole grid: 6 grid points x 4 samples = 24 configs.
* ``sample_from`` functions see the partially resolved config; a function that reads a value
  not resolved yet is retried after the others (up to 20 passes).
* Grid values may themselves hold domains or grids; they are expanded recursively.
* A one-key ``{"eval": "<expression>"}`` dict is Ray's JSON-style function: the expression
  is evaluated with ``spec`` (the config so far: ``spec.config.a``; ``spec.a`` works too)
  and the modules ``np`` and ``random``.

Unlike Ray, constants are never deep-copied: every generated config gets fresh ``dict``
containers (and fresh lists/tuples where they held a domain), while every other leaf — a
model, a dataset, an array — is the very object from ``param_space``.

Example:
    >>> from poptune.search.sample import grid_search
    >>> space = {"x": grid_search([1, 2]), "y": grid_search(["a", "b"])}
    >>> [c for _, c in generate_variants(space)]
    [{'x': 1, 'y': 'a'}, {'x': 2, 'y': 'a'}, {'x': 1, 'y': 'b'}, {'x': 2, 'y': 'b'}]
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from poptune._dicts import flatten_dict, unflatten_dict  # noqa: F401  (re-exported)
from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError, TuneError
from poptune.search.sample import (  # noqa: F401  (the view and grid test: re-exported)
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    RandomState,
    Rng,
    _ConfigView,
    _Eval,
    _is_eval,
    _is_grid,
    _UnresolvedAccess,
    as_generator,
    config_view,
    grid_search,
    has_unresolved,
)

__all__ = [
    "config_view", "count_variants", "flatten_dict", "format_vars", "generate_variants",
    "grid_search", "has_unresolved", "unflatten_dict",
]  # fmt: skip

Path = tuple[Any, ...]
_MAX_RESOLUTION_PASSES = 20


def _grid_values(path: Path, value: dict[str, Any]) -> list[Any]:
    values = value["grid_search"]
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise bad_type(f"{_join(path)}/grid_search", values, "a non-empty list of values")
    values = list(values)
    if not values:
        raise bad_value(f"{_join(path)}/grid_search", values, "a non-empty list of values")
    return values


Grids = list[tuple[Path, list[Any]]]


def _parse(node: Any, prefix: Path = ()) -> tuple[list[tuple[Path, Domain]], Grids]:
    """Domains (in resolution order) and grids (sorted by path) found in ``node``."""
    domains: list[tuple[Path, Domain]] = []
    grids: Grids = []

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, Domain):
            if value.is_grid():
                grids.append((path, list(value.categories)))  # type: ignore[attr-defined]
            else:
                domains.append((path, value))
        elif _is_grid(value):
            grids.append((path, _grid_values(path, value)))
        elif _is_eval(value):
            domains.append((path, _Eval(_join(path), value["eval"])))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, path + (i,))

    walk(node, prefix)
    # Ray sorts grids by path; list indices sort numerically
    grids.sort(key=lambda g: tuple((0, k) if isinstance(k, int) else (1, str(k)) for k in g[0]))
    return domains, grids


def count_variants(space: Any) -> int:
    """Configs one sample of ``space`` yields: the grid size, counting grids nested in grids.

    Example:
        >>> count_variants({"a": grid_search([1, 2, 3]), "b": {"c": grid_search([0, 1])}})
        6
    """
    _, grids = _parse(space)
    total = 1
    for _, values in grids:
        total *= sum(count_variants(v) for v in values)
    return total


def _copy_structure(value: Any) -> Any:
    """Fresh dicts (and containers holding unresolved values); every other leaf is shared."""
    if isinstance(value, Domain) or _is_grid(value) or _is_eval(value):
        return value
    if type(value) is dict:
        return {k: _copy_structure(v) for k, v in value.items()}
    if isinstance(value, (dict, list, tuple)) and has_unresolved(value):
        if isinstance(value, dict):  # a dict subclass: keep its type
            new = copy.copy(value)
            for k, v in value.items():
                new[k] = _copy_structure(v)
            return new
        items = [_copy_structure(v) for v in value]
        return _same_sequence(value, items)
    return value


def _same_sequence(original: Any, items: list[Any]) -> Any:
    if isinstance(original, list):
        return items
    if hasattr(original, "_make"):  # namedtuple
        return original._make(items)
    return type(original)(items)


def _assign(node: Any, path: Path, value: Any) -> Any:
    """Set ``node[path] = value`` and return ``node`` (a rebuilt tuple if ``node`` is one)."""
    key = path[0]
    child = _assign(node[key], path[1:], value) if len(path) > 1 else value
    if isinstance(node, tuple):
        items = list(node)
        items[key] = child
        return _same_sequence(node, items)
    node[key] = child
    return node


def _get(node: Any, path: Path) -> Any:
    for key in path:
        node = node[key]
    return node


def _join(path: Path) -> str:
    return "/".join(str(k) for k in path)


def _resolve_domains(
    config: dict[str, Any], domains: list[tuple[Path, Domain]], rng: Rng, allow_fail: bool
) -> tuple[bool, dict[Path, Any]]:
    """Sample ``domains`` into ``config`` in place, retrying functions that wait on others."""
    resolved: dict[Path, Any] = {}
    waiting: dict[Path, Path] = {}  # a function's path -> the unresolved path it read
    for _ in range(_MAX_RESOLUTION_PASSES):
        waiting = {}
        for path, domain in domains:
            if path in resolved:
                continue
            try:
                value = domain.sample(_ConfigView(config), random_state=rng)
            except _UnresolvedAccess as exc:
                waiting[path] = exc.path
                continue
            except TuneError:
                raise
            except Exception as exc:
                raise TuneConfigError(
                    f"`{_join(path)}` could not be sampled from {domain!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            _assign(config, path, value)
            resolved[path] = value
        if not waiting:
            return True, resolved
    if allow_fail:
        return False, resolved
    pending = [_join(p) for p, _ in domains if p not in resolved]
    reads = ", ".join(
        f"`{_join(p)}` reads `{_join(q)}`" + (" (itself)" if p == q else "")
        for p, q in waiting.items()
    )
    raise TuneConfigError(
        f"`param_space` entries {pending} could not be resolved: their sample_from functions "
        f"depend on each other in a cycle ({reads}); a function may read any value except "
        "itself and the functions that read it"
    )


Parsed = tuple[list[tuple[Path, Domain]], Grids]


def _hidden(value: Any) -> bool:
    """A ``sample_from`` function (not an ``{"eval": ...}`` entry): Ray keeps its value out
    of the trial's tag (it swaps such functions for placeholders before generating
    variants and calls them afterwards)."""
    return isinstance(value, Function) and not isinstance(value, _Eval)


def _tag_vars(resolved: dict[Path, Any], domains: list[tuple[Path, Domain]]) -> dict[Path, Any]:
    """``resolved`` without the values of ``sample_from`` functions (including a function
    that a ``choice`` drew: then the drawn function itself is what ``resolved`` holds)."""
    hidden = {path for path, domain in domains if _hidden(domain)}
    if not hidden and not any(_hidden(v) for v in resolved.values()):
        return resolved
    return {p: v for p, v in resolved.items() if p not in hidden and not _hidden(v)}


def _variants(
    space: Any,
    rng: Rng,
    constant_grid_search: bool,
    parsed: Parsed | None = None,
    hide_functions: bool = False,
) -> Iterator[tuple[dict[Path, Any], Any]]:
    """One sample of ``space``: every grid point, with random values drawn for each.
    ``parsed``: ``_parse(space)`` done already (a generator drawing many samples of one
    space parses it once). ``hide_functions``: leave the values of ``sample_from``
    functions out of the yielded resolved values, as Ray's trial tags do."""
    domains, grids = parsed if parsed is not None else _parse(space)
    if not domains and not grids:
        yield {}, _copy_structure(space)
        return
    if not grids and _draws_plain_values(domains):
        # random search's usual space: one variant, the same draws in the same order as
        # below, without the grid and nesting machinery (this runs once per trial)
        config = _copy_structure(space)
        yield _resolve_domains(config, domains, rng, allow_fail=False)[1], config
        return
    base, todo = space, domains
    fixed: dict[Path, Any] = {}
    if constant_grid_search:
        base = _copy_structure(space)
        _, fixed = _resolve_domains(base, domains, rng, allow_fail=True)
        todo = [(p, d) for p, d in domains if p not in fixed]
    sizes = [len(values) for _, values in grids]
    # itertools.product varies its *last* factor fastest; Ray varies the first grid fastest
    for indices in itertools.product(*(range(n) for n in reversed(sizes))):
        config = _copy_structure(base)
        chosen = []
        for (path, values), i in zip(grids, reversed(indices)):
            value = _copy_structure(values[i])
            chosen.append(value)
            config = _assign(config, path, value)
        resolved = dict(fixed)
        resolved.update(_resolve_domains(config, todo, rng, allow_fail=False)[1])
        nested = any(has_unresolved(v) for v in chosen) or any(
            has_unresolved(v) for v in resolved.values()
        )
        if not nested:
            for path, _ in grids:
                resolved[path] = _get(config, path)
            yield (_tag_vars(resolved, domains) if hide_functions else resolved), config
            continue
        for inner, final in _variants(config, rng, constant_grid_search,
                                      hide_functions=hide_functions):
            out = dict(resolved)
            for path, _ in grids:
                out[path] = _get(final, path)
            out.update(inner)
            yield (_tag_vars(out, domains) if hide_functions else out), final


def _draws_plain_values(domains: list[tuple[Path, Domain]]) -> bool:
    """Whether every domain draws a value with nothing left to resolve inside, without
    reading the rest of the config (numbers; categories free of domains and grids)."""
    for _, domain in domains:
        kind = type(domain)
        if kind is Categorical:
            if any(has_unresolved(c) for c in domain.categories):  # type: ignore[attr-defined]
                return False
        elif kind is not Float and kind is not Integer:
            return False
    return True


def _flatten_paths(resolved: dict[Path, Any]) -> dict[str, Any]:
    return {_join(path): value for path, value in resolved.items()}


def generate_variants(
    spec: dict[str, Any],
    num_samples: int = 1,
    random_state: RandomState = None,
    constant_grid_search: bool = False,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield ``(resolved_vars, config)`` for every config ``spec`` stands for.

    Args:
        spec: the ``param_space`` (a possibly nested dict of constants, domains and grids).
        num_samples: how many times the whole grid is generated; ``-1`` repeats forever.
        random_state: seed or numpy generator for every random draw (None: unseeded).
        constant_grid_search: draw the random values once per sample, not per grid point.

    Returns:
        An iterator of pairs: the sampled values keyed by ``"/"``-joined path (e.g.
        ``{"model/lr": 0.01}``) and the resolved config.

    Example:
        >>> from poptune.search.sample import grid_search, uniform
        >>> space = {"lr": uniform(0, 1), "bs": grid_search([16, 32, 64])}
        >>> len(list(generate_variants(space, num_samples=4, random_state=0)))
        12
    """
    if not isinstance(spec, dict):
        raise bad_type("param_space", spec, "a dict")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or not (
        num_samples == -1 or num_samples >= 1
    ):
        raise bad_value("num_samples", num_samples, "an integer >= 1, or -1 for unlimited")
    rng = as_generator(random_state)
    repeats = itertools.count() if num_samples == -1 else range(num_samples)
    for _ in repeats:
        for resolved, config in _variants(spec, rng, constant_grid_search):
            yield _flatten_paths(resolved), config


_UNSAFE_TAG = re.compile(r"[^a-zA-Z0-9_-]+")
_CLEAN_KEYS: dict[str, str] = {}  # a space's keys, cleaned once (tags are made per trial)


def _clean_value(value: Any) -> str:
    """Floats with 4 decimals; anything else with characters outside ``[a-zA-Z0-9_-]``
    replaced by ``_`` (as in Ray, so tags are valid directory names)."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return _UNSAFE_TAG.sub("_", str(value)).strip("_")


def _clean_key(key: str) -> str:
    cleaned = _CLEAN_KEYS.get(key)
    if cleaned is None:
        if len(_CLEAN_KEYS) >= 10_000:  # not just a space's keys: do not keep them all
            _CLEAN_KEYS.clear()
        cleaned = _CLEAN_KEYS[key] = _clean_value(key)
    return cleaned


def format_vars(resolved_vars: Mapping[Any, Any]) -> str:
    """Ray's trial-tag string: ``last_key=value`` pairs, sorted by path, comma-joined.

    Keys are ``"/"``-joined paths (or path tuples); pairs are sorted by the full path but
    only its last part is shown.

    Example:
        >>> format_vars({"optim/lr": 0.07012, "momentum": 0.1774, "act": "relu"})
        'act=relu,momentum=0.1774,lr=0.0701'
    """

    if all(type(k) is str and "/" not in k for k in resolved_vars):  # a flat space
        return ",".join(f"{_clean_key(k)}={_clean_value(resolved_vars[k])}"
                        for k in sorted(resolved_vars))

    def parts(key: Any) -> tuple[str, ...]:
        return tuple(str(k) for k in key) if isinstance(key, tuple) else tuple(str(key).split("/"))

    items = sorted(((parts(k), v) for k, v in resolved_vars.items()), key=lambda kv: kv[0])
    return ",".join(f"{_clean_value(path[-1])}={_clean_value(v)}" for path, v in items)
