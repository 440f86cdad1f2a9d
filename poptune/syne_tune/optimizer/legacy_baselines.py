"""Syne Tune 0.14's ``syne_tune.optimizer.legacy_baselines``: the baselines of the d2l era
to 0.13 under their 0.14 module, each a :class:`FIFOScheduler` or
:class:`HyperbandScheduler` with its searcher (keyword arguments as theirs).

=====================================  ==================================================
0.14 legacy baseline                   poptune
=====================================  ==================================================
``RandomSearch(space, metric)``        ``FIFOScheduler(searcher="random")``
``GridSearch(space, metric)``          ``FIFOScheduler(searcher="grid")``
``BayesianOptimization(space, metric)`` ``FIFOScheduler(searcher="bayesopt")``
``KDE(space, metric)``                 ``FIFOScheduler(searcher="kde")`` (Optuna's TPE)
``BoTorch(space, metric)``             ``FIFOScheduler(searcher="botorch")``
``ASHA(space, metric, resource_attr)`` ``HyperbandScheduler(searcher="random")``
``MOBSTER(space, metric, resource_attr)`` ``HyperbandScheduler(searcher="bayesopt")``
``BOHB(space, metric, resource_attr)`` ``HyperbandScheduler(searcher="kde")``
=====================================  ==================================================

``ASHA``, ``MOBSTER`` and ``BOHB`` need ``max_t`` or ``max_resource_attr``, as in Syne
Tune. The others of 0.14's module (``HyperTune``, ``DyHPO``, ``PASHA``, ``SyncHyperband``,
``SyncBOHB``, ``DEHB``, ``SyncMOBSTER``, ``BORE``, ``ASHABORE``, ``REA``, ``CQR``,
``ASHACQR``, ``ASHACTS``, ``ZeroShotTransfer``, ``ConstrainedBayesianOptimization``,
``MORandomScalarizationBayesOpt``, ``MOLinearScalarizationBayesOpt``, ``NSGA2``,
``MOREA``) import, and refuse to be built with an error naming them: poptune has no
equivalent.

Example:
    >>> from poptune.syne_tune.config_space import uniform
    >>> s = ASHA({"x": uniform(0, 1)}, "loss", "epoch", max_t=9, mode="min")
    >>> isinstance(s, HyperbandScheduler), s.searcher, s.max_t
    (True, 'random', 9)
"""

from __future__ import annotations

from typing import Any

from poptune._validation import bad_value
from poptune.exceptions import TuneConfigError
from poptune.syne_tune.optimizer.schedulers.fifo import FIFOScheduler
from poptune.syne_tune.optimizer.schedulers.hyperband import HyperbandScheduler

__all__ = ["ASHA", "BOHB", "BayesianOptimization", "BoTorch", "GridSearch", "KDE", "MOBSTER",
           "RandomSearch"]


def _searcher(name: str, kwargs: dict[str, Any], owner: str) -> None:
    """Syne Tune's ``_assert_searcher_must_be``: ``searcher`` may only repeat the
    baseline's."""
    given = kwargs.pop("searcher", None)
    if given is not None and given != name:
        raise bad_value("searcher", given, f"None or {name!r} ({owner} is searcher={name!r})")


def _need_max(kwargs: dict[str, Any], owner: str) -> None:
    """Syne Tune's ``_assert_need_one``: the largest resource is given."""
    if kwargs.get("max_t") is None and kwargs.get("max_resource_attr") is None:
        raise bad_value("max_t", None, f"given, or `max_resource_attr` given ({owner} needs "
                        "one of them, as in Syne Tune)")


class _Fifo(FIFOScheduler):
    _name = "random"

    def __init__(self, config_space: dict[str, Any], metric: str, **kwargs: Any) -> None:
        owner = type(self).__name__
        _searcher(self._name, kwargs, owner)
        self._owner = owner
        super().__init__(config_space, metric=metric, searcher=self._name, **kwargs)


class RandomSearch(_Fifo):
    """Random search (``FIFOScheduler(searcher="random")``)."""


class GridSearch(_Fifo):
    """Grid search (``FIFOScheduler(searcher="grid")``; ``search_options`` as Syne Tune's
    ``GridSearcher``)."""

    _name = "grid"


class BayesianOptimization(_Fifo):
    """Gaussian-process BO (``FIFOScheduler(searcher="bayesopt")``: Optuna's GP)."""

    _name = "bayesopt"


class KDE(_Fifo):
    """Single-fidelity BOHB (``FIFOScheduler(searcher="kde")``: Optuna's TPE)."""

    _name = "kde"


class BoTorch(_Fifo):
    """BoTorch BO (``FIFOScheduler(searcher="botorch")``: Optuna's GP on torch)."""

    _name = "botorch"

    def __init__(self, config_space: dict[str, Any], metric: str,
                 random_seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(config_space, metric, random_seed=random_seed, **kwargs)


class _Hyperband(HyperbandScheduler):
    _name = "random"

    def __init__(self, config_space: dict[str, Any], metric: str, resource_attr: str,
                 **kwargs: Any) -> None:
        owner = type(self).__name__
        _need_max(kwargs, owner)
        _searcher(self._name, kwargs, owner)
        super().__init__(config_space, metric=metric, searcher=self._name,
                         resource_attr=resource_attr, **kwargs)


class ASHA(_Hyperband):
    """Asynchronous successive halving (``HyperbandScheduler(searcher="random")``)."""


class MOBSTER(_Hyperband):
    """``HyperbandScheduler(searcher="bayesopt")``: Optuna's GP fed each trial's last
    result (Syne Tune's MOBSTER models every rung; ``search_options["model"]`` warns and is
    ignored)."""

    _name = "bayesopt"


class BOHB(_Hyperband):
    """Asynchronous BOHB (``HyperbandScheduler(searcher="kde")``: Optuna's TPE)."""

    _name = "kde"


#: 0.14's legacy baselines poptune cannot run, and why
REFUSED = {
    "HyperTune": "a multi-fidelity GP model over the brackets",
    "DyHPO": "DyHPO's promotion rule and deep-kernel GP",
    "PASHA": "progressive ASHA (type='pasha')",
    "SyncHyperband": "synchronous Hyperband",
    "SyncBOHB": "synchronous BOHB",
    "DEHB": "differential-evolution Hyperband",
    "SyncMOBSTER": "synchronous MOBSTER",
    "BORE": "the BORE classifier searcher",
    "ASHABORE": "ASHA with the BORE searcher",
    "REA": "regularized evolution",
    "CQR": "the conformal quantile regression searcher",
    "ASHACQR": "ASHA with the CQR searcher",
    "ASHACTS": "ASHA with the CTS transfer searcher",
    "ZeroShotTransfer": "zero-shot transfer from earlier tasks",
    "ConstrainedBayesianOptimization": "constrained GP BO",
    "MORandomScalarizationBayesOpt": "multi-objective BO (random scalarization)",
    "MOLinearScalarizationBayesOpt": "multi-objective BO (linear scalarization)",
    "NSGA2": "multi-objective NSGA-II",
    "MOREA": "multi-objective regularized evolution",
}


def _refusing(name: str, what: str) -> type:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TuneConfigError(
            f"legacy_baselines.{name} ({what}) has no equivalent on poptune; use one of "
            f"{', '.join(__all__)} from poptune.syne_tune.optimizer.legacy_baselines")

    return type(name, (), {"__init__": __init__, "__doc__": f"Refused: {what}.",
                           "__module__": __name__})


for _name, _what in REFUSED.items():
    globals()[_name] = _refusing(_name, _what)
