"""``PlacementGroupFactory``: a trial's resources as a list of bundles, as in Ray Tune.

Ray places each bundle on a node (the first, the "head" bundle, runs the trainable; the
others are for workers it starts, e.g. distributed training). poptune schedules a trial
with the *sum* of its bundles: on one machine that is exactly what the trial may use, and
the Ray and Dask backends size the trial's worker by the same sum. ``strategy`` is
validated and kept (so scripts and equality behave as in Ray) but does not change placement.

Example:
    >>> pgf = PlacementGroupFactory([{"CPU": 1}, {"CPU": 2, "GPU": 0.5}])
    >>> pgf.required_resources
    {'CPU': 3.0, 'GPU': 0.5}
    >>> pgf.head_cpus
    1.0
    >>> pgf == PlacementGroupFactory([{"CPU": 1}, {"CPU": 2, "GPU": 0.5}])
    True
"""

from __future__ import annotations

import copy
import math
from typing import Any

from poptune._validation import bad_type, bad_value

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class PlacementGroupFactory:
    """Resources of one trial as bundles (``[{"CPU": 1, "GPU": 1}, {"CPU": 4}]``).

    Args:
        bundles: A non-empty list of dicts from resource name to an amount >= 0. Zero
            amounts are dropped; an all-zero first bundle means the trainable itself needs
            nothing (``head_bundle_is_empty``), as in Ray.
        strategy: One of ``"PACK"``, ``"SPREAD"``, ``"STRICT_PACK"``, ``"STRICT_SPREAD"``.
        *args, **kwargs: Accepted for compatibility with Ray (passed to Ray's
            ``placement_group()`` there); kept, not used.
    """

    def __init__(self, bundles: list[dict[str, float]], strategy: str = "PACK",
                 *args: Any, **kwargs: Any) -> None:
        if not isinstance(bundles, (list, tuple)) or not bundles:
            raise bad_value("bundles", bundles, 'a non-empty list of dicts such as [{"CPU": 1}]')
        cleaned: list[dict[str, float]] = []
        for i, bundle in enumerate(bundles):
            if not isinstance(bundle, dict):
                raise bad_type(f"bundles[{i}]", bundle, 'a dict such as {"CPU": 1}')
            out = {}
            for key, value in bundle.items():
                if (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                        or not math.isfinite(value)):
                    raise bad_value(f"bundles[{i}][{key!r}]", value, "a finite number >= 0")
                if value:
                    out[str(key)] = float(value)
            cleaned.append(out)
        if strategy not in STRATEGIES:
            raise bad_value("strategy", strategy, f"one of {', '.join(map(repr, STRATEGIES))}")
        self._head_bundle_is_empty = not cleaned[0]
        if self._head_bundle_is_empty:
            cleaned.pop(0)
            if not cleaned:
                raise bad_value("bundles", bundles,
                                "at least one bundle with a non-zero resource")
        self._bundles = cleaned
        self._strategy = strategy
        self._args = args
        self._kwargs = kwargs

    @property
    def bundles(self) -> list[dict[str, float]]:
        """A copy of the bundles (zero amounts and an empty head bundle removed)."""
        return copy.deepcopy(self._bundles)

    @property
    def strategy(self) -> str:
        return self._strategy

    @property
    def head_bundle_is_empty(self) -> bool:
        return self._head_bundle_is_empty

    @property
    def head_cpus(self) -> float:
        """CPUs of the bundle the trainable runs in (0 when the head bundle is empty)."""
        return 0.0 if self._head_bundle_is_empty else self._bundles[0].get("CPU", 0.0)

    @property
    def required_resources(self) -> dict[str, float]:
        """Every resource summed over the bundles, e.g. ``{"CPU": 3.0, "GPU": 0.5}``."""
        total: dict[str, float] = {}
        for bundle in self._bundles:
            for key, value in bundle.items():
                total[key] = total.get(key, 0.0) + value
        return total

    def _key(self) -> tuple[Any, ...]:
        return (tuple(tuple(sorted(b.items())) for b in self._bundles), self._strategy,
                self._head_bundle_is_empty, self._args, tuple(sorted(self._kwargs.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroupFactory) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"PlacementGroupFactory({self._bundles!r}, strategy={self._strategy!r}"
                f"{', head_bundle_is_empty=True' if self._head_bundle_is_empty else ''})")


def resource_dict_to_pg_factory(spec: dict[str, float] | None = None) -> PlacementGroupFactory:
    """One bundle from a resource dict (``{"cpu": 2, "gpu": 1}`` → ``[{"CPU": 2, "GPU": 1}]``).

    >>> resource_dict_to_pg_factory({"cpu": 2, "gpu": 1}).bundles
    [{'CPU': 2.0, 'GPU': 1.0}]
    """
    spec = dict(spec or {"cpu": 1})
    cpus = spec.pop("cpu", spec.pop("CPU", 0.0))
    gpus = spec.pop("gpu", spec.pop("GPU", 0.0))
    memory = spec.pop("memory", 0.0)
    custom = spec.pop("custom_resources", None)
    bundle: dict[str, Any] = dict(custom) if isinstance(custom, dict) and custom else dict(spec)
    bundle.update({"CPU": cpus, "GPU": gpus, "memory": memory})
    return PlacementGroupFactory([bundle])
