"""Record Syne Tune 0.16's scheduler and searcher decisions on fixed, hand-made inputs.

    python tests/syne_tune/record_syne_decisions.py [OUT.json]

Run it with a Python that has ``syne-tune==0.16.0`` (and not poptune: nothing here imports
it); it writes ``syne_tune_0_16_decisions.json`` beside this file (or ``OUT.json``).
``test_decisions_vs_syne_tune.py`` replays the same cases on ``poptune.syne_tune`` and
compares; with ``POPTUNE_COMPAT_LIVE_SYNE=1`` and syne_tune importable it calls
:func:`record` again and checks the file still holds what Syne Tune decides.

Each case is plain data (a config space, scheduler arguments, a stream of events) stored in
the JSON with Syne Tune's answers, so the replay needs nothing from here:

* ``sampling``: each domain drawn 20000 times with ``np.random.RandomState(0)``: the values'
  frequencies (or min / max / mean for continuous domains), their types, the first draws;
* ``searchers``: ``RandomSearch`` / ``ASHA`` / ``PopulationBasedTraining`` suggestions
  (``points_to_evaluate`` first, then random configurations) and whether a seed repeats them;
* ``schedulers``: ``ASHA``, ``MedianStoppingRule`` and ``PopulationBasedTraining`` driven
  through ``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete`` /
  ``on_trial_error`` / ``suggest`` as Syne Tune's ``Tuner`` drives them (a STOP is followed
  by ``on_trial_remove``); each result's decision is recorded, a PBT exploit as
  ``"EXPLOIT<-{donor}"`` with the explored config;
* ``rungs``: ``ASHA``'s rung levels per bracket;
* ``api``: which of the names poptune's docs cite exist in 0.16.

Syne Tune draws some values from numpy's global generator (``RandomSearcher``, ``ASHA``'s
bracket choice): it is seeded before each case so the recording repeats.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from datetime import datetime
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "syne_tune_0_16_decisions.json")
#: draws per domain in ``sampling``
NUM_DRAWS = 20000
#: what an event of a trial that ended (STOP, completed, failed) records: it is not replayed
SKIPPED = "-"
#: at most this many distinct values: a frequency table, else min / max / mean
MAX_DISTINCT = 40

# --- the inputs ------------------------------------------------------------------------------
#: a domain: ``[builder, *args]`` (a config-space function of both libraries); anything else
#: is a constant
DOMAINS: dict[str, list[Any]] = {
    "uniform": ["uniform", 2.0, 4.0],
    "uniform_point": ["uniform", 2.0, 2.0],
    "loguniform": ["loguniform", 0.001, 1.0],
    "randint": ["randint", 1, 3],
    "lograndint": ["lograndint", 1, 10],
    "choice": ["choice", ["a", "b", "c"]],
    "choice_int": ["choice", [16, 32, 64]],
    "ordinal_equal": ["ordinal", [1, 2, 10], "equal"],
    "ordinal_nn": ["ordinal", [1, 2, 10], "nn"],
    "ordinal_default": ["ordinal", [1, 2, 10]],
    "ordinal_str": ["ordinal", ["s", "m", "l"]],
    "logordinal": ["logordinal", [1, 2, 10]],
    "finrange": ["finrange", 0.0, 1.0, 5],
    "finrange_int": ["finrange", 1, 3, 5, True],
    "logfinrange": ["logfinrange", 1.0, 100.0, 3],
    "logfinrange_int": ["logfinrange", 1, 100, 3, True],
}

#: the spaces of the searcher and scheduler cases
SPACES: dict[str, dict[str, Any]] = {
    "mixed": {"lr": ["loguniform", 0.001, 1.0], "n": ["randint", 1, 5],
              "act": ["choice", ["relu", "tanh"]], "f": ["finrange", 0.0, 1.0, 5],
              "o": ["ordinal", [1, 2, 10]], "li": ["lograndint", 1, 10], "epochs": 9},
    "numeric": {"lr": ["uniform", 0.0, 1.0], "n": ["randint", 1, 100], "epochs": 6},
    "bounds": {"lr": ["uniform", 0.0, 1.0], "n": ["randint", 1, 4], "epochs": 6},
    "categorical": {"act": ["choice", ["relu", "tanh", "gelu"]],
                    "bs": ["choice", [16, 32, 64]], "epochs": 6},
    "finite": {"f": ["finrange", 0.0, 1.0, 5], "o": ["logordinal", [1, 2, 10]],
               "epochs": 6},
}


def _results(tid: int, attr: str, values: list[float], start: int = 1) -> list[list[Any]]:
    """``result`` events of trial ``tid``: ``values[k]`` at ``attr = start + k``."""
    return [["result", tid, {attr: start + k, "loss": v}] for k, v in enumerate(values)]


def _interleave(*streams: list[list[Any]]) -> list[list[Any]]:
    """Round-robin over ``streams`` (trial 0's first result, trial 1's first, ...)."""
    out: list[list[Any]] = []
    for k in range(max(len(s) for s in streams)):
        out.extend(s[k] for s in streams if k < len(s))
    return out


def _asha_events() -> dict[str, list[list[Any]]]:
    """The hand-made result streams of the ASHA cases."""
    losses = [[0.5, 0.45, 0.4, 0.35, 0.3, 0.28, 0.26, 0.25, 0.24],
              [0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.38, 0.37],
              [0.3, 0.25, 0.2, 0.18, 0.16, 0.15, 0.14, 0.13, 0.12],
              [0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2],
              [0.4, 0.35, 0.3, 0.28, 0.27, 0.26, 0.25, 0.24, 0.23],
              [0.35, 0.3, 0.31, 0.29, 0.27, 0.26, 0.2, 0.19, 0.18],
              [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]]
    adds = [["add", i] for i in range(len(losses))]
    # trials arrive one after another: trial i starts when trial i - 1 is at epoch 2
    staggered: list[list[Any]] = [adds[0]]
    per_trial = [_results(i, "epoch", v) for i, v in enumerate(losses)]
    cursor = [0] * len(losses)
    started = 1
    for _ in range(200):
        for i in range(started):
            if cursor[i] < len(per_trial[i]):
                staggered.append(per_trial[i][cursor[i]])
                cursor[i] += 1
        if started < len(losses):
            staggered.append(adds[started])
            started += 1
        if all(c == len(p) for c, p in zip(cursor, per_trial)):
            break
    rank_vs_quantile = [["add", i] for i in range(6)] + [
        ["result", i, {"epoch": 1, "loss": v}]
        for i, v in enumerate([0.3, 0.9, 0.6, 0.5, 0.55, 0.95])]
    completes = ([["add", 0], ["add", 1]] + _results(0, "epoch", [0.2, 0.1])
                 + [["complete", 0, {"epoch": 2, "loss": 0.1}]]
                 + _results(1, "epoch", [0.25, 0.3, 0.2])
                 + [["add", 2]] + _results(2, "epoch", [0.5, 0.15, 0.3, 0.1]))
    # trial 1's first result is at epoch 4: judged at rung 3 (and kept), then, at epoch 5,
    # Syne Tune judges it at the rung it skipped (1)
    jump = ([["add", 0], ["add", 1], ["add", 2]]
            + [["result", 0, {"epoch": 1, "loss": 0.1}], ["result", 0, {"epoch": 3, "loss": 0.5}]]
            + [["result", 1, {"epoch": 4, "loss": 0.3}], ["result", 1, {"epoch": 5, "loss": 0.9}],
               ["result", 1, {"epoch": 6, "loss": 0.8}]]
            + [["result", 2, {"epoch": 2, "loss": 0.05}],
               ["result", 2, {"epoch": 3, "loss": 0.04}]])
    error = ([["add", 0], ["add", 1], ["add", 2]] + _results(0, "epoch", [0.5])
             + [["error", 0]] + _results(1, "epoch", [0.6, 0.5])
             + _results(2, "epoch", [0.45, 0.4, 0.3, 0.25]))
    missing = [["add", 0], ["result", 0, {"loss": 0.5}], ["result", 0, {"epoch": 1}]]
    return {"staggered": staggered, "rank_vs_quantile": rank_vs_quantile,
            "completes": completes, "jump": jump, "error": error, "missing": missing}


def _median_events() -> dict[str, list[list[Any]]]:
    """The hand-made result streams of the median-stopping-rule cases."""
    losses = [[0.5, 0.4, 0.3, 0.25], [0.9, 0.85, 0.2, 0.1], [0.3, 0.35, 0.3, 0.3],
              [0.6, 0.5, 0.45, 0.4], [0.4, 0.7, 0.8, 0.9], [0.2, 0.3, 0.25, 0.2],
              [0.7, 0.6, 0.5, 0.45], [0.45, 0.45, 0.45, 0.45]]
    adds = [["add", i] for i in range(len(losses))]
    main = adds + _interleave(*[_results(i, "epoch", v) for i, v in enumerate(losses)])
    nan = (adds[:6] + _interleave(*[_results(i, "epoch", v) for i, v in enumerate(losses[:5])])
           + [["result", 5, {"epoch": 1, "loss": "nan"}],
              ["result", 5, {"epoch": 2, "loss": "nan"}]])
    missing = adds[:6] + _interleave(*[_results(i, "epoch", v[:2])
                                       for i, v in enumerate(losses[:5])]) + [
        ["result", 5, {"epoch": 2}]]
    return {"main": main, "nan": nan, "missing": missing}


def _pbt_events() -> dict[str, list[list[Any]]]:
    """The hand-made result streams of the PBT cases (``epoch`` the resource,
    ``perturbation_interval=2``, ``max_t=6``): at most 4 members are ever scored, so each
    quantile holds one trial and the donor is never drawn at random."""
    four = [["add", i] for i in range(4)]
    decisions = four + _interleave(
        _results(0, "epoch", [0.5, 0.4, 0.35, 0.3, 0.28, 0.25]),
        _results(1, "epoch", [0.9, 0.8]),
        _results(2, "epoch", [0.3, 0.2, 0.15, 0.1, 0.08, 0.05]),
        _results(3, "epoch", [0.6, 0.5, 0.45, 0.7, 0.6, 0.5]),
    ) + [["suggest"]]
    two = [["add", 0], ["add", 1]] + _interleave(_results(0, "epoch", [0.2, 0.1]),
                                                 _results(1, "epoch", [0.8, 0.9])) + [["suggest"]]
    member = ([["add", 0], ["add", 1], ["add", 2]]
              + _results(0, "epoch", [0.2, 0.1, 0.09, 0.08, 0.07, 0.06])
              + _interleave(_results(1, "epoch", [0.5, 0.4]), _results(2, "epoch", [0.6, 0.7])))
    # trial 1 is exploited at epoch 2 (from trial 0's checkpoint at epoch 2); Syne Tune runs
    # the exploit as trial 2, which goes on from epoch 3
    restart = (two[:-1] + [["suggest"], ["restart", 2, 1]]
               + _results(2, "epoch", [0.12, 0.11, 0.1], start=3))
    return {"decisions": decisions, "two": two, "member": member, "restart": restart}


def scheduler_cases() -> list[dict[str, Any]]:
    """The scheduler cases: ``{"id", "cls", "kwargs", "space", "events"}`` (for a
    ``MedianStoppingRule``, ``wrapped`` holds the ``RandomSearch`` arguments)."""
    asha = _asha_events()
    median = _median_events()
    pbt = _pbt_events()
    out: list[dict[str, Any]] = []

    def add(case_id: str, cls: str, kwargs: dict[str, Any], space: str,
            events: list[list[Any]], **extra: Any) -> None:
        out.append({"id": case_id, "cls": cls, "kwargs": kwargs, "space": space,
                    "events": events, **extra})

    base = {"metric": "loss", "time_attr": "epoch", "random_seed": 1}
    add("asha_rf3_min", "ASHA", {**base, "max_t": 9}, "mixed", asha["staggered"])
    add("asha_rf2_max_grace2", "ASHA", {**base, "max_t": 9, "do_minimize": False,
                                        "grace_period": 2, "reduction_factor": 2},
        "mixed", asha["staggered"])
    add("asha_rf4_min", "ASHA", {**base, "max_t": 8, "reduction_factor": 4}, "mixed",
        asha["staggered"])
    add("asha_rank_vs_quantile", "ASHA", {**base, "max_t": 9}, "mixed",
        asha["rank_vs_quantile"])
    add("asha_completes", "ASHA", {**base, "max_t": 9}, "mixed", asha["completes"])
    add("asha_jump", "ASHA", {**base, "max_t": 9}, "mixed", asha["jump"])
    add("asha_error", "ASHA", {**base, "max_t": 9}, "mixed", asha["error"])
    add("asha_missing_time_attr", "ASHA", {**base, "max_t": 9}, "mixed", asha["missing"])

    wrapped = {"metrics": ["loss"], "random_seed": 1}
    rule = {"time_attr": "epoch", "metric": "loss"}
    add("median_defaults", "MedianStoppingRule", rule, "mixed", median["main"],
        wrapped=wrapped)
    add("median_raw_cutoff", "MedianStoppingRule",
        {**rule, "running_average": False, "grace_time": 2, "grace_population": 3,
         "rank_cutoff": 0.3}, "mixed", median["main"], wrapped=wrapped)
    add("median_no_grace", "MedianStoppingRule",
        {**rule, "grace_time": None, "grace_population": 1}, "mixed", median["main"],
        wrapped=wrapped)
    add("median_max", "MedianStoppingRule", {**rule, "do_minimize": False}, "mixed",
        median["main"], wrapped={**wrapped, "do_minimize": False})
    add("median_mode_from_default", "MedianStoppingRule", rule, "mixed", median["main"],
        wrapped={**wrapped, "do_minimize": False})
    add("median_metric_from_scheduler", "MedianStoppingRule", {"time_attr": "epoch"}, "mixed",
        median["main"], wrapped=wrapped)
    add("median_nan", "MedianStoppingRule", rule, "mixed", median["nan"], wrapped=wrapped)
    add("median_missing_metric", "MedianStoppingRule", rule, "mixed", median["missing"],
        wrapped=wrapped)

    pbt_kw = {"metric": "loss", "time_attr": "epoch", "max_t": 6, "perturbation_interval": 2,
              "random_seed": 1, "resample_probability": 0.0}
    add("pbt_decisions", "PopulationBasedTraining", pbt_kw, "numeric", pbt["decisions"],
        configs=_pbt_configs("numeric", 4))
    add("pbt_max", "PopulationBasedTraining", {**pbt_kw, "do_minimize": False}, "numeric",
        pbt["decisions"], configs=_pbt_configs("numeric", 4))
    add("pbt_clip_to_bounds", "PopulationBasedTraining", pbt_kw, "bounds", pbt["two"],
        configs=[{"lr": 0.95, "n": 4, "epochs": 6}, {"lr": 0.5, "n": 1, "epochs": 6}])
    add("pbt_categorical", "PopulationBasedTraining", pbt_kw, "categorical", pbt["two"],
        configs=[{"act": "relu", "bs": 32, "epochs": 6}, {"act": "tanh", "bs": 16, "epochs": 6}])
    add("pbt_finite", "PopulationBasedTraining", pbt_kw, "finite", pbt["two"],
        configs=[{"f": 0.75, "o": 2, "epochs": 6}, {"f": 0.25, "o": 1, "epochs": 6}])
    add("pbt_completed_member", "PopulationBasedTraining", pbt_kw, "numeric", pbt["member"],
        configs=_pbt_configs("numeric", 3))
    add("pbt_restart", "PopulationBasedTraining", pbt_kw, "numeric", pbt["restart"],
        configs=_pbt_configs("numeric", 2))
    return out


def _pbt_configs(space: str, n: int) -> list[dict[str, Any]]:
    """Fixed configs of the PBT trials (numeric values away from the bounds)."""
    assert space == "numeric"
    return [{"lr": 0.1 * (i + 2), "n": 10 * (i + 2), "epochs": 6} for i in range(n)]


def searcher_cases() -> list[dict[str, Any]]:
    """The searcher cases: ``{"id", "cls", "kwargs", "space", "num"}``: ``num``
    suggestions of a fresh scheduler."""
    full_valid = {"lr": 0.1, "n": 3, "act": "tanh", "f": 0.25, "o": 2, "li": 4, "epochs": 9}
    needs_cast = {"lr": 0.1, "n": 3.7, "act": "tanh", "f": 0.3, "o": 3, "li": 4.2,
                  "epochs": 9}
    partial = {"act": "tanh", "n": 2}
    out = []
    for cls, extra in (("RandomSearch", {"metrics": ["loss"]}),
                       ("ASHA", {"metric": "loss", "time_attr": "epoch", "max_t": 9}),
                       ("PopulationBasedTraining", {"metric": "loss", "time_attr": "epoch",
                                                    "max_t": 9})):
        for case, points in (("valid", [full_valid]), ("cast", [needs_cast]),
                             ("partial", [partial]), ("none", None)):
            kwargs = {**extra, "random_seed": 3}
            if cls == "PopulationBasedTraining":
                kwargs["searcher_kwargs"] = {"points_to_evaluate": points}
            else:
                kwargs["points_to_evaluate"] = points
            out.append({"id": f"{cls}_{case}", "cls": cls, "kwargs": kwargs,
                        "space": "mixed", "num": 6})
    return out


# --- Syne Tune -------------------------------------------------------------------------------
def build_domain(spec: Any) -> Any:
    """Syne Tune's domain for ``[builder, *args]``; anything else is a constant."""
    from syne_tune import config_space as cs

    if not isinstance(spec, list):
        return spec
    name, *args = spec
    return getattr(cs, name)(*args)


def build_space(name: str) -> dict[str, Any]:
    return {k: build_domain(v) for k, v in SPACES[name].items()}


def plain(value: Any) -> Any:
    """A JSON-able ``value``: numpy scalars as Python numbers, a domain object that leaked
    into a config as ``{"domain": repr}``, NaN as the string ``"nan"``."""
    from syne_tune.config_space import Domain

    if isinstance(value, Domain):
        return {"domain": repr(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def type_name(value: Any) -> str:
    """``int`` / ``float`` / ``str`` / ... (numpy scalars by their own name)."""
    return type(value).__name__


def as_result(result: dict[str, Any]) -> dict[str, Any]:
    """An event's result as reported: the string ``"nan"`` stands for a NaN (JSON has none)."""
    return {k: float("nan") if v == "nan" else v for k, v in result.items()}


def _seed_global(seed: int = 0) -> None:
    import numpy as np

    np.random.seed(seed)


def record_sampling() -> dict[str, Any]:
    """Each domain of :data:`DOMAINS` drawn :data:`NUM_DRAWS` times with
    ``RandomState(0)``."""
    import numpy as np

    out = {}
    for name, spec in DOMAINS.items():
        domain = build_domain(spec)
        draws = domain.sample(size=NUM_DRAWS, random_state=np.random.RandomState(0))
        one = domain.sample(random_state=np.random.RandomState(0))
        entry: dict[str, Any] = {"spec": spec, "types": sorted({type_name(x) for x in draws}),
                                 "one_type": type_name(one), "first": plain(draws[:5])}
        counts = Counter(draws)
        if len(counts) <= MAX_DISTINCT:
            entry["frequencies"] = [[plain(v), n / NUM_DRAWS] for v, n in sorted(counts.items())]
        else:
            values = np.array(draws, dtype=float)
            entry.update(min=float(values.min()), max=float(values.max()),
                         mean=float(values.mean()), mean_log=float(np.log(values).mean()))
        out[name] = entry
    return out


def describe(value: Any) -> dict[str, Any]:
    """What Syne Tune accepts for one hyperparameter: ``{"range": [lower, upper], "type",
    "log"}`` (both bounds included), ``{"values": [...], "log"}`` (a finite range, an ordinal
    or a categorical domain) or ``{"constant": value}``."""
    from syne_tune.config_space import (
        Categorical, Domain, FiniteRange, Float, Integer, is_log_space)

    if not isinstance(value, Domain):
        return {"constant": value}
    if isinstance(value, (Float, Integer)):
        return {"range": [value.lower, value.upper], "type": value.value_type.__name__,
                "log": is_log_space(value)}
    if isinstance(value, FiniteRange):
        return {"values": plain(value.values), "log": value.log_scale,
                "type": value.value_type.__name__, "numeric": True}
    assert isinstance(value, Categorical), value
    return {"values": plain(value.categories), "log": is_log_space(value),
            "type": value.value_type.__name__, "numeric": False}


def record_support() -> dict[str, dict[str, Any]]:
    """:func:`describe` of each hyperparameter of each space in :data:`SPACES`."""
    return {name: {k: describe(v) for k, v in build_space(name).items()} for name in SPACES}


def make_scheduler(cls: str, kwargs: dict[str, Any], space: dict[str, Any],
                   wrapped: dict[str, Any] | None = None) -> Any:
    """Syne Tune's scheduler ``cls`` (a baseline, ``MedianStoppingRule`` around a
    ``RandomSearch`` made with ``wrapped``, or ``PopulationBasedTraining``)."""
    from syne_tune.optimizer import baselines
    from syne_tune.optimizer.schedulers import MedianStoppingRule, PopulationBasedTraining

    if cls == "MedianStoppingRule":
        inner = baselines.RandomSearch(space, **(wrapped or {}))
        return MedianStoppingRule(inner, **kwargs)
    if cls == "PopulationBasedTraining":
        return PopulationBasedTraining(space, **kwargs)
    return getattr(baselines, cls)(space, **kwargs)


def _suggestion(sugg: Any) -> dict[str, Any] | None:
    if sugg is None:
        return None
    return {"config": plain(sugg.config), "spawn_new_trial_id": sugg.spawn_new_trial_id,
            "checkpoint_trial_id": sugg.checkpoint_trial_id}


def record_searcher(case: dict[str, Any]) -> dict[str, Any]:
    """``case["num"]`` suggestions of a fresh scheduler, their value types; whether a second
    scheduler with the same ``random_seed`` suggests the same (numpy's global generator in
    another state), and whether the global generator's state alone decides them."""
    space = build_space(case["space"])

    def suggest_all(seed_global: int) -> list[Any]:
        _seed_global(seed_global)
        sched = make_scheduler(case["cls"], case["kwargs"], space)
        return [_suggestion(sched.suggest()) for _ in range(case["num"])]

    first = suggest_all(0)
    again = suggest_all(1)  # the same random_seed, another global state
    other = {**case, "kwargs": {**case["kwargs"], "random_seed": 4}}
    _seed_global(0)
    sched = make_scheduler(other["cls"], other["kwargs"], space)
    other_seed = [_suggestion(sched.suggest()) for _ in range(case["num"])]
    _seed_global(0)
    sched = make_scheduler(case["cls"], case["kwargs"], space)
    types = [{k: type_name(v) for k, v in sched.suggest().config.items()}
             for _ in range(case["num"])]
    return {"suggestions": first, "types": types,
            "same_seed_same_configs": first == again,
            "global_state_decides": first == other_seed}


def record_scheduler(case: dict[str, Any]) -> list[Any]:
    """Drive ``case``'s scheduler through its events; one entry per event: a result's
    decision (``"EXPLOIT<-{donor}"`` with ``config`` for a PBT exploit), a suggestion, None
    for the others, ``"raise {Type}"`` when Syne Tune raises, :data:`SKIPPED` for an event of
    a trial that ended."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.scheduler import SchedulerDecision

    _seed_global(0)
    space = build_space(case["space"])
    sched = make_scheduler(case["cls"], case["kwargs"], space, case.get("wrapped"))
    configs = case.get("configs") or []
    trials: dict[int, Any] = {}
    out: list[Any] = []
    stamp = datetime(2026, 1, 1)
    ended: set[int] = set()  # stopped, completed or failed: their later events are skipped
    for event in case["events"]:
        kind, args = event[0], event[1:]
        if kind in ("result", "complete", "error") and args[0] in ended:
            out.append(SKIPPED)
            continue
        try:
            if kind == "add":
                tid = args[0]
                config = dict(configs[tid]) if tid < len(configs) else {}
                trials[tid] = Trial(tid, config, stamp)
                sched.on_trial_add(trials[tid])
                out.append(None)
            elif kind == "restart":  # the trial Syne Tune starts for the last exploit
                tid = args[0]
                trials[tid] = Trial(tid, dict(out[-1]["config"]), stamp)
                sched.on_trial_add(trials[tid])
                out.append(None)
            elif kind == "result":
                tid, result = args
                stack = getattr(sched, "trial_decisions_stack", None)
                before = len(stack) if stack is not None else 0
                decision = sched.on_trial_result(trials[tid], as_result(result))
                if stack is not None and len(stack) > before:
                    donor, config = stack[-1]
                    out.append({"decision": f"EXPLOIT<-{donor}", "config": plain(config)})
                else:
                    out.append(decision)
                if decision == SchedulerDecision.STOP:
                    ended.add(tid)
                    sched.on_trial_remove(trials[tid])
            elif kind == "complete":
                tid, result = args
                ended.add(tid)
                sched.on_trial_complete(trials[tid], as_result(result))
                out.append(None)
            elif kind == "error":
                ended.add(args[0])
                sched.on_trial_error(trials[args[0]])
                out.append(None)
            elif kind == "suggest":
                out.append(_suggestion(sched.suggest()))
            else:
                raise ValueError(f"unknown event {event!r}")
        except (KeyError, AssertionError, RuntimeError, TypeError) as exc:
            out.append(f"raise {type(exc).__name__}")
    return out


def record_rungs() -> list[dict[str, Any]]:
    """``ASHA``'s rung levels (highest first) per bracket for a few settings."""
    settings: list[dict[str, Any]] = [
        {"max_t": t, "grace_period": g, "reduction_factor": rf, "brackets": b}
        for t, g, rf, b in ((9, 1, 3, 1), (27, 1, 3, 3), (100, 2, 4, 2), (16, 1, 2, 4),
                            (10, 3, 2.5, 1))]
    out = []
    space = build_space("mixed")
    for kw in settings:
        sched = make_scheduler("ASHA", {"metric": "loss", "time_attr": "epoch", **kw}, space)
        out.append({"kwargs": kw,
                    "rungs": [[float(m) for m, _ in b.rungs] for b in sched.brackets]})
    return out


def record_api() -> dict[str, Any]:
    """Which of the scheduler names poptune's docs cite exist in this release, and
    ``ASHA``'s parameters."""
    import inspect

    import syne_tune
    from syne_tune.optimizer import baselines, schedulers

    names = ["RandomSearch", "GridSearch", "BayesianOptimization", "BOTorch", "TPE", "ASHA"]
    sched_names = ["FIFOScheduler", "HyperbandScheduler", "MedianStoppingRule",
                   "PopulationBasedTraining"]
    return {"version": syne_tune.__version__,
            "baselines": {n: hasattr(baselines, n) for n in names},
            "schedulers": {n: hasattr(schedulers, n) for n in sched_names},
            "asha_parameters": list(inspect.signature(baselines.ASHA).parameters)}


def record() -> dict[str, Any]:
    """Everything this script records (see the module docstring), JSON-able."""
    import numpy as np

    saved = np.random.get_state()
    try:
        return {
            "api": record_api(),
            "spaces": SPACES,
            "support": record_support(),
            "sampling": record_sampling(),
            "searchers": [{**c, "syne": record_searcher(c)} for c in searcher_cases()],
            "schedulers": [{**c, "syne": record_scheduler(c)} for c in scheduler_cases()],
            "rungs": record_rungs(),
        }
    finally:
        np.random.set_state(saved)


def canonical(data: Any) -> Any:
    """``data`` as it reads back from the JSON file (tuples become lists, NaN a string)."""
    return json.loads(json.dumps(data))


def main(path: str = OUT) -> None:
    data = canonical(record())
    with open(path, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes, syne_tune {data['api']['version']})")


if __name__ == "__main__":
    main(*sys.argv[1:])
