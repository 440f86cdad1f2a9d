"""PBT's explore step: mutate a donor's config, and the search-space glue it needs.

:func:`explore` perturbs, shifts or resamples each mutated hyperparameter;
:func:`make_experiment_tag` names the explored trial (the PBT replay uses it too). The other
helpers validate ``hyperparam_mutations`` and fill a new trial's missing hyperparameters for
:class:`~poptune.schedulers.PopulationBasedTraining` (and PB2, which extends it).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneError
from poptune.search.variant_generator import _clean_value as _clean  # Ray's `_clean_value`

__all__ = ["explore", "make_experiment_tag"]


# --------------------------------------------------------------------------- search-space glue
def _space() -> Any:
    """The search-space module, imported lazily (None if unavailable)."""
    try:
        from poptune.search import sample
    except ImportError:  # pragma: no cover - the module ships with poptune
        return None
    return sample


def _isinstance(value: Any, name: str) -> bool:
    cls = getattr(_space(), name, None)
    return cls is not None and isinstance(value, cls)


def _sample_domain(domain: Any, rng: random.Random) -> Any:
    """One value from ``domain``, drawn with a numpy generator seeded from ``rng``."""
    import numpy as np

    value = domain.sample(None, size=1, random_state=np.random.default_rng(rng.getrandbits(64)))
    return value.item() if isinstance(value, np.generic) else value


def _domain_bounds(domain: Any) -> tuple[float, float] | None:
    """Inclusive ``(low, high)`` of a numeric domain, or None when unbounded/non-numeric."""
    if _isinstance(domain, "Float") or _isinstance(domain, "Integer"):
        low, high = domain.lower, domain.upper
        sampler = getattr(domain, "sampler", None)
        quantized = _isinstance(sampler, "Quantized") and getattr(sampler, "q", 1) != 1
        if _isinstance(domain, "Integer") and not quantized:
            high = high - 1  # randint's upper bound is exclusive (qrandint's, q > 1, is not)
        return low, high
    if _isinstance(domain, "Categorical"):
        cats = [c for c in domain.categories if isinstance(c, (int, float))]
        if cats and len(cats) == len(domain.categories) and not any(
            isinstance(c, bool) for c in cats
        ):
            return min(cats), max(cats)
    return None


def _clip(value: Any, domain: Any, as_int: bool) -> Any:
    bounds = _domain_bounds(domain)
    if bounds is None or not isinstance(value, (int, float)):
        return value
    low, high = bounds
    if low is not None and value < low:
        value = math.ceil(low) if as_int else low
    if high is not None and value > high:
        value = math.floor(high) if as_int else high
    return value


# --------------------------------------------------------------------------- explore
def explore(
    config: Mapping[str, Any],
    mutations: Mapping[str, Any],
    resample_probability: float = 0.25,
    perturbation_factors: Sequence[float] = (1.2, 0.8),
    custom_explore_fn: Callable[[dict], dict] | None = None,
    rng: random.Random | None = None,
    clip_to_bounds: bool = False,
) -> tuple[dict[str, Any], str]:
    """Return an explored copy of ``config`` and a human-readable summary of the changes.

    Per mutation key: a dict recurses; a list/tuple is resampled with probability
    ``resample_probability`` (or when the value is not in it), otherwise shifted to a
    neighbour (a no-op at the ends); a domain or callable is resampled with that probability,
    otherwise multiplied by a random ``perturbation_factors`` entry. Ints stay ints (rounded)
    and bools stay bools, as in Ray 2.60. ``custom_explore_fn(config)`` runs last.

    Example:
        >>> import random
        >>> new, summary = explore({"lr": 0.5, "bs": 32}, {"lr": lambda: 0.1, "bs": [16, 32, 64]},
        ...                        resample_probability=0.0, rng=random.Random(0))
        >>> sorted(new) == ["bs", "lr"] and new["bs"] in (16, 64)
        True
        >>> print(summary.splitlines()[0])
        lr : 0.5 --- (* 0.8) --> 0.4
    """
    rng = rng if rng is not None else random.Random()
    new_config, operations = _explore_tree(
        config, mutations, resample_probability, tuple(perturbation_factors), rng, clip_to_bounds
    )
    if custom_explore_fn is not None:
        new_config = custom_explore_fn(new_config)
        if new_config is None:
            raise TuneError("`custom_explore_fn` must return the new config, got None")
    old_params = _filter_mutated(config, mutations)
    summary = _summarize(old_params, _filter_mutated(new_config, mutations), operations)
    return new_config, summary or "No hyperparameters mutated."


def _explore_tree(
    config: Mapping[str, Any],
    mutations: Mapping[str, Any],
    p: float,
    factors: tuple[float, ...],
    rng: random.Random,
    clip: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    new = copy.deepcopy(dict(config))
    ops: dict[str, Any] = {}
    for key, dist in mutations.items():
        old = config[key]
        if isinstance(dist, Mapping):
            new[key], ops[key] = _explore_tree(old, dist, p, factors, rng, clip)
        elif isinstance(dist, (list, tuple)):
            values = list(dist)
            if rng.random() < p or old not in values:
                new[key], ops[key] = rng.choice(values), "resample"
            else:
                shift = rng.choice((-1, 1))
                i = values.index(old)
                j = min(max(i + shift, 0), len(values) - 1)
                new[key] = values[j]
                ops[key] = f"shift {'left' if shift < 0 else 'right'}{' (noop)' if i == j else ''}"
        else:  # a Domain or a callable (validated by the scheduler)
            if rng.random() < p:
                is_domain = _isinstance(dist, "Domain")
                new[key] = _sample_domain(dist, rng) if is_domain else dist()
                ops[key] = "resample"
            else:
                factor = rng.choice(factors)
                new[key], ops[key] = old * factor, f"* {factor}"
            if isinstance(old, bool):  # as Ray 2.60: a bool stays a bool (only resampling
                new[key] = bool(new[key])  # changes it), an int is rounded back to an int
            elif isinstance(old, int):
                new[key] = int(round(new[key]))
            if clip:
                new[key] = _clip(new[key], dist, isinstance(old, int))
    return new, ops


def _filter_mutated(config: Mapping[str, Any], mutations: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``config`` that ``mutations`` covers (recursively)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in mutations:
            sub = mutations[key]
            is_nested = isinstance(value, Mapping) and isinstance(sub, Mapping)
            out[key] = _filter_mutated(value, sub) if is_nested else value
    return out


def _summarize(old: Mapping[str, Any], new: Mapping[str, Any], ops: Any, prefix: str = "") -> str:
    lines = []
    for name, old_value in old.items():
        if name not in new:
            continue
        new_value = new[name]
        op = ops.get(name) if isinstance(ops, Mapping) else None
        if isinstance(old_value, Mapping) and isinstance(new_value, Mapping):
            lines.append(f"{prefix}{name} :")
            lines.append(_summarize(old_value, new_value, op or {}, prefix + "    "))
        else:
            arrow = f"--- ({op}) -->" if op else "----->"
            lines.append(f"{prefix}{name} : {old_value} {arrow} {new_value}")
    return "\n".join(line for line in lines if line)


def make_experiment_tag(orig_tag: str, config: Mapping[str, Any], keys: Any) -> str:
    """``"{orig_tag}@perturbed[k=v,...]"`` for the mutated top-level keys (Ray's format:
    keys and values cleaned as in trial tags).

    Example:
        >>> make_experiment_tag("0_lr=0.1", {"lr": 0.5, "opt": {"m": 0.9}, "v": "v1.2"},
        ...                     ["opt", "lr", "v"])
        '0_lr=0.1@perturbed[lr=0.5000,opt=m_0_9,v=v1_2]'
    """
    params = ",".join(f"{_clean(k)}={_clean(config[k])}" for k in sorted(keys) if k in config)
    return f"{orig_tag}@perturbed[{params}]"


def _fill_missing(
    config: Mapping[str, Any], mutations: Mapping[str, Any], rng: random.Random
) -> dict[str, Any]:
    """Sample the hyperparameters ``config`` lacks from ``mutations``, without touching it.

    Returns the sampled values as ``{"a/b": value}`` paths, drawn in the order of
    ``mutations`` (so a seeded ``rng`` gives the same values as it always did).

    Example:
        >>> config = {"lr": 0.1, "model": {}}
        >>> _fill_missing(config, {"lr": [0.5], "model": {"width": [32]}, "bs": [8]},
        ...               random.Random(0))
        {'model/width': 32, 'bs': 8}
        >>> config
        {'lr': 0.1, 'model': {}}
    """
    filled: dict[str, Any] = {}
    for key, space in mutations.items():
        if isinstance(space, Mapping):
            sub = config.get(key, {})
            if isinstance(sub, dict):
                inner = _fill_missing(sub, space, rng)
                filled.update({f"{key}/{k}": v for k, v in inner.items()})
        elif key not in config:
            if isinstance(space, (list, tuple)):
                filled[key] = rng.choice(list(space))
            elif _isinstance(space, "Domain"):
                filled[key] = _sample_domain(space, rng)
            else:
                filled[key] = space()
    return filled


def _validate_mutations(mutations: Mapping[str, Any], path: str = "hyperparam_mutations") -> None:
    accepted = "a list, tuple, dict, search-space domain (tune.uniform, ...) or callable"
    for key, value in mutations.items():
        name = f"{path}[{key!r}]"
        if isinstance(value, Mapping):
            _validate_mutations(value, name)
        elif isinstance(value, (list, tuple)):
            if not value:
                raise bad_value(name, value, "a non-empty list or tuple")
        elif _isinstance(value, "Function"):
            raise bad_value(name, value, accepted + " (tune.sample_from is not supported)")
        elif not (_isinstance(value, "Domain") or callable(value)):
            raise bad_type(name, value, accepted)
