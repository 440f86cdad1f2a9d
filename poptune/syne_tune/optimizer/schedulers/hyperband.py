"""Syne Tune's ``HyperbandScheduler`` (syne_tune <= 0.13 ``optimizer/schedulers/hyperband.py``)
on poptune's :class:`~poptune.schedulers.ASHAScheduler` or
:class:`~poptune.schedulers.PromotionASHAScheduler`.

``HyperbandScheduler(config_space, searcher="random", metric=..., mode=...,
resource_attr="epoch", max_t=..., grace_period=1, reduction_factor=3, brackets=1,
type="stopping")``: asynchronous successive halving with rungs at ``grace_period *
reduction_factor**k``; a trial below its rung's cut is stopped (``type="promotion"``: it
pauses at every rung until promoted), one reaching ``max_t`` ends with a STOP decision.
``max_t`` is, as in Syne Tune, ``max_t``, else the constant
``config_space[max_resource_attr]``, else ``config_space["epochs" | "max_t" |
"max_epochs"]``.

What maps:

* ``type="stopping"``: ASHA's stopping variant (:class:`~poptune.schedulers.ASHAScheduler`).
  ``type="promotion"``: trials pause at each rung and the best paused trial in the top
  ``1/reduction_factor`` of its rung is resumed from its checkpoint before a new one starts
  (:class:`~poptune.schedulers.PromotionASHAScheduler`, as ``ASHA(type="promotion")``;
  ``brackets=1`` only). Other types (``"cost_promotion"``, ``"pasha"``, ``"rush_*"``,
  ``"dyhpo"``) are refused.
* ``searcher``: ``"random"``, ``"grid"``, ``"bayesopt"`` (Optuna's GP on each trial's
  last result; Syne Tune's MOBSTER models every rung) and ``"kde"`` (Optuna's TPE); others
  (``"hypertune"``, ``"bore"``, ``"cqr"``, ``"bayesopt_cost"``, ``"dyhpo"``) are refused.
* ``rung_levels`` and ``rung_increment`` (rungs that are not geometric) are refused;
  ``searcher_data``, ``register_pending_myopic``, ``do_snapshots``,
  ``rung_system_per_bracket``, ``rung_system_kwargs``, ``early_checkpoint_removal_kwargs``,
  ``cost_attr`` and ``time_keeper`` warn and are ignored.
"""

from __future__ import annotations

from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError
from poptune.search.sample import Domain
from poptune.syne_tune.optimizer import baselines as _b
from poptune.syne_tune.optimizer.schedulers.fifo import make_searcher

__all__ = ["HyperbandScheduler"]

#: Syne Tune's ``RUNG_SYSTEMS`` keys (0.13); poptune runs "stopping" and "promotion"
_TYPES = ("stopping", "promotion", "cost_promotion", "pasha", "rush_stopping",
          "rush_promotion", "dyhpo")


def infer_max_t(config_space: dict[str, Any], max_t: Any, max_resource_attr: str | None) -> Any:
    """Syne Tune's ``_infer_max_resource_level``: ``max_t``, else the first constant among
    ``config_space[max_resource_attr]``, ``["epochs"]``, ``["max_t"]``, ``["max_epochs"]``."""
    if max_t is not None:
        return max_t
    names = ((max_resource_attr,) if max_resource_attr else ()) + ("epochs", "max_t",
                                                                   "max_epochs")
    for name in names:
        value = config_space.get(name)
        if value is not None and not isinstance(value, Domain):
            return value
    raise TuneConfigError(
        "`max_t` must be given, or be a constant of the config space: "
        "config_space[max_resource_attr], config_space['epochs'], config_space['max_t'] or "
        f"config_space['max_epochs'] (got max_t=None, max_resource_attr={max_resource_attr!r})")


class HyperbandScheduler(_b.ASHA):
    """Syne Tune's ``HyperbandScheduler`` (keyword arguments, as its ``**kwargs``); see the
    module docstring for what maps and what is refused."""

    _accepted: tuple[str, ...] = ("random", "grid", "bayesopt", "kde")

    def __init__(self, config_space: dict[str, Any], *, searcher: Any = "random",
                 search_options: dict[str, Any] | None = None, metric: Any = None,
                 mode: str | None = None, points_to_evaluate: list[dict[str, Any]] | None = None,
                 random_seed: int | None = None, max_resource_attr: str | None = None,
                 max_t: int | None = None, resource_attr: str = "epoch",
                 grace_period: int = 1, reduction_factor: float | None = None,
                 rung_increment: int | None = None, brackets: int = 1,
                 type: str = "stopping", cost_attr: str | None = None,
                 searcher_data: str | None = None, register_pending_myopic: bool | None = None,
                 do_snapshots: bool | None = None, rung_system_per_bracket: bool | None = None,
                 rung_levels: list[int] | None = None,
                 rung_system_kwargs: dict[str, Any] | None = None,
                 early_checkpoint_removal_kwargs: dict[str, Any] | None = None,
                 time_keeper: Any = None, metrics: list[str] | None = None,
                 do_minimize: bool | None = None) -> None:
        if type not in _TYPES[:2]:
            raise bad_value("type", type, "'stopping' or 'promotion' (poptune runs these "
                            "variants of asynchronous successive halving; Syne "
                            f"Tune's {', '.join(repr(t) for t in _TYPES[2:])} have no "
                            "equivalent)")
        for name, value in (("rung_levels", rung_levels), ("rung_increment", rung_increment)):
            if value is not None:
                raise bad_value(name, value, "None (poptune's ASHA places rungs at "
                                "grace_period * reduction_factor**k)")
        if not isinstance(resource_attr, str) or not resource_attr:
            raise bad_type("resource_attr", resource_attr, "a result key (str)")
        if isinstance(grace_period, bool) or not isinstance(grace_period, int) or (
                grace_period < 1):
            raise bad_value("grace_period", grace_period, "an integer >= 1 (as Syne Tune)")
        if reduction_factor is None:
            reduction_factor = 3
        if isinstance(reduction_factor, bool) or not isinstance(
                reduction_factor, (int, float)) or reduction_factor < 2:
            raise bad_value("reduction_factor", reduction_factor, "a number >= 2 (as Syne Tune)")
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise bad_value("brackets", brackets, "an integer >= 1")
        max_level = infer_max_t(config_space, max_t, max_resource_attr)
        super().__init__(config_space, metric, resource_attr, max_level, mode, random_seed,
                         points_to_evaluate, grace_period=grace_period,
                         reduction_factor=reduction_factor, brackets=brackets, type=type,
                         metrics=metrics, do_minimize=do_minimize)
        _b._ignored("HyperbandScheduler", cost_attr=cost_attr, searcher_data=searcher_data,
                    register_pending_myopic=register_pending_myopic,
                    do_snapshots=do_snapshots, rung_system_per_bracket=rung_system_per_bracket,
                    rung_system_kwargs=rung_system_kwargs,
                    early_checkpoint_removal_kwargs=early_checkpoint_removal_kwargs,
                    time_keeper=time_keeper)
        self.searcher = searcher
        self._inner = make_searcher("HyperbandScheduler", self._accepted, searcher,
                                    search_options, config_space, self.metric, self.mode,
                                    random_seed, points_to_evaluate)

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "searcher": self.searcher, "type": self.type}

    def _searcher(self) -> Any:
        return self._inner._searcher()
