"""Syne Tune's ``FIFOScheduler`` (syne_tune <= 0.13 ``optimizer/schedulers/fifo.py``): trials
run to their end, new configurations come from the searcher named by ``searcher``.

==============  ===================================================================
``searcher``    poptune
==============  ===================================================================
``"random"``    :class:`~poptune.syne_tune.optimizer.baselines.RandomSearch`
``"grid"``      :class:`~poptune.syne_tune.optimizer.baselines.GridSearch`
``"bayesopt"``  :class:`~poptune.syne_tune.optimizer.baselines.BayesianOptimization`
``"botorch"``   :class:`~poptune.syne_tune.optimizer.baselines.BOTorch`
``"kde"``       :class:`~poptune.syne_tune.optimizer.baselines.TPE` (Syne Tune's KDE)
==============  ===================================================================

Any other searcher name (``"bore"``, ``"cqr"``, ``"bayesopt_constrained"``,
``"bayesopt_cost"``, ...) or a searcher object is refused: poptune has no equivalent.
``search_options`` keys the chosen searcher knows (the grid's ``num_samples``,
``shuffle_config``, ``allow_duplicates``; the KDE's ``num_min_data_points``,
``top_n_percent``, ``num_candidates``, ...) are passed on; others warn and are ignored.

Example:
    >>> from poptune.syne_tune.config_space import choice
    >>> FIFOScheduler({"act": choice(["a", "b"])}, searcher="grid", metric="acc",
    ...               mode="max").metric_mode()
    'max'
"""

from __future__ import annotations

from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.syne_tune.optimizer import baselines as _b

__all__ = ["FIFOScheduler"]

#: searcher name -> (baseline, the ``search_options`` keys it takes)
SEARCHERS: dict[str, tuple[type[_b.SyneScheduler], tuple[str, ...]]] = {
    "random": (_b.RandomSearch, ()),
    "grid": (_b.GridSearch, _b._GRID_OPTIONS),
    "bayesopt": (_b.BayesianOptimization, ()),
    "botorch": (_b.BOTorch, ()),
    "kde": (_b.TPE, ("num_min_data_points", "top_n_percent", "min_bandwidth",
                     "num_candidates", "bandwidth_factor", "random_fraction")),
}


def make_searcher(owner: str, accepted: tuple[str, ...], searcher: Any,
                  search_options: dict[str, Any] | None, config_space: dict[str, Any],
                  metric: str, mode: str, random_seed: int | None,
                  points_to_evaluate: list[dict[str, Any]] | None) -> _b.SyneScheduler:
    """The baseline that serves Syne Tune's ``searcher`` name (its ``_searcher()`` is the
    poptune searcher); ``search_options`` it does not know warn."""
    names = ", ".join(repr(n) for n in accepted)
    if not isinstance(searcher, str):
        raise bad_type("searcher", searcher, f"a searcher name, one of {names}")
    if searcher not in accepted:
        raise bad_value("searcher", searcher,
                        f"one of {names} ({owner} on poptune has no equivalent of the others)")
    if search_options is not None and not isinstance(search_options, dict):
        raise bad_type("search_options", search_options, "a dict or None")
    cls, keys = SEARCHERS[searcher]
    options = dict(search_options or {})
    taken = {k: options.pop(k) for k in keys if k in options}
    _b._ignored(f"{owner}(searcher={searcher!r})",
                **{f"search_options[{k!r}]": v for k, v in options.items()})
    return cls(config_space, metric, mode, random_seed, points_to_evaluate, **taken)


class FIFOScheduler(_b.SyneScheduler):
    """Trials in submission order, each running to its end (Syne Tune never stops them: its
    ``on_trial_result`` always continues), configurations from ``searcher``.

    Args are Syne Tune's (keywords, as its ``**kwargs``): ``searcher`` (default
    ``"random"``), ``search_options``, ``metric`` (required), ``mode`` (default ``"min"``),
    ``points_to_evaluate``, ``random_seed``; ``max_resource_attr``, ``max_t`` and
    ``time_keeper`` only informed Syne Tune's searchers: given, they warn and are ignored.
    """

    _owner = "FIFOScheduler"
    _accepted: tuple[str, ...] = ("random", "grid", "bayesopt", "botorch", "kde")

    def __init__(self, config_space: dict[str, Any], *, searcher: Any = "random",
                 search_options: dict[str, Any] | None = None, metric: Any = None,
                 mode: str | None = None, points_to_evaluate: list[dict[str, Any]] | None = None,
                 random_seed: int | None = None, max_resource_attr: str | None = None,
                 max_t: int | None = None, time_keeper: Any = None,
                 metrics: list[str] | None = None, do_minimize: bool | None = None) -> None:
        super().__init__(config_space, metric, mode, random_seed, points_to_evaluate,
                         metrics=metrics, do_minimize=do_minimize)
        _b._ignored(self._owner, max_resource_attr=max_resource_attr, max_t=max_t,
                    time_keeper=time_keeper)
        self.searcher = searcher
        self._inner = make_searcher(self._owner, self._accepted, searcher, search_options,
                                    config_space, self.metric, self.mode, random_seed,
                                    points_to_evaluate)

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "searcher": self.searcher}

    def _searcher(self) -> Any:
        return self._inner._searcher()
