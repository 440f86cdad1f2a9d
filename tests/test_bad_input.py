"""Table-driven bad input: each row is one malformed thing a user could write.

Every row asserts a clean error of the expected type whose message names the parameter (or
key), the value received and what is accepted (the ``needles``, matched case-insensitively),
raised before any trial starts where the input is visible then; rows whose input only shows
up while a trial runs run on the simulated backend (no processes, deterministic). Each row
runs under a watchdog, so a hang fails the row instead of the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import poptune as tune
from poptune import schedulers as sch
from poptune import search
from poptune._imports import MissingDependencyError
from poptune.exceptions import TuneConfigError, TuneError

WATCHDOG_S = 20  # generous: a row takes milliseconds; this only turns a hang into a failure


@dataclass
class Case:
    id: str
    run: Callable[[Path], Any]
    exc: type[BaseException] | tuple[type[BaseException], ...]
    needles: tuple[str, ...]


CASES: list[Case] = []


def case(id: str, exc: Any, *needles: str) -> Callable[[Callable[[Path], Any]], None]:
    def add(fn: Callable[[Path], Any]) -> None:
        CASES.append(Case(id, fn, exc, needles))
    return add


def row(id: str, fn: Callable[[], Any], exc: Any, *needles: str) -> None:
    CASES.append(Case(id, lambda _tmp: fn(), exc, needles))


CFG = (TuneConfigError, TypeError, ValueError)


def _warned(fn: Callable[..., Any], *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def f(config: dict[str, Any]) -> None:
    tune.report({"score": 1.0})


# -- search spaces -----------------------------------------------------------------------------
row("uniform-upper-inf", lambda: tune.uniform(0, float("inf")), CFG, "upper", "inf", "finite")
row("uniform-lower-nan", lambda: tune.uniform(float("nan"), 1), CFG, "lower", "nan")
row("uniform-reversed-warns", lambda: _warned(tune.uniform, 5, 1), UserWarning, "lower",
    "greater than", "upper")  # documented legal (as in Ray): sampled from [1, 5) with a warning
row("uniform-str-bound", lambda: tune.uniform("a", 1), CFG, "lower", "'a'", "number")
row("loguniform-zero-lower", lambda: tune.loguniform(0, 1), CFG, "lower", "0", "> 0")
row("loguniform-negative", lambda: tune.loguniform(-1, 1), CFG, "lower", "-1", "> 0")
row("loguniform-reversed", lambda: tune.loguniform(1, 1e-3), CFG, "upper", "0.001")
row("quniform-q-zero", lambda: tune.quniform(0, 1, 0), CFG, "q", "0", "> 0")
row("quniform-q-negative", lambda: tune.quniform(0, 1, -0.1), CFG, "q", "-0.1")
row("qloguniform-zero-lower", lambda: tune.qloguniform(0, 1, 0.1), CFG, "lower", "0")
row("randint-empty", lambda: tune.randint(5, 5), CFG, "upper", "5")
row("randint-str", lambda: tune.randint("1", 5), CFG, "lower", "'1'")
row("qrandint-q-zero", lambda: tune.qrandint(1, 10, 0), CFG, "q", "0")
row("lograndint-zero", lambda: tune.lograndint(0, 10), CFG, "lower", "0")
row("randn-negative-sd", lambda: tune.randn(0, -1), CFG, "sd", "-1")
row("choice-empty", lambda: tune.choice([]), CFG, "categories", "[]")
row("choice-not-sequence", lambda: tune.choice(5), CFG, "categories", "5")
row("grid-empty", lambda: tune.grid_search([]), CFG, "values", "[]")
row("grid-not-iterable", lambda: tune.grid_search(5), CFG, "values", "5")
row("sample-from-not-callable", lambda: tune.sample_from(5), CFG, "func", "5", "callable")


def tuner(tmp: Path, trainable: Any = f, space: Any = None, **tc: Any) -> tune.Tuner:
    return tune.Tuner(trainable, param_space=space,
                      tune_config=tune.TuneConfig(backend="simulated", **tc),
                      run_config=tune.RunConfig(storage_path=str(tmp), name="exp", verbose=0))


def fit(tmp: Path, trainable: Any = f, space: Any = None, **tc: Any) -> Any:
    """Run ``trainable`` on the simulated backend; raise the first trial's error, if any."""
    grid = tuner(tmp, trainable, space, **tc).fit()
    for result in grid:
        if result.error is not None:
            raise result.error
    return grid


# -- param_space ---------------------------------------------------------------------------------
case("space-uncalled-domain", CFG, "lr", "loguniform")(
    lambda tmp: tuner(tmp, space={"lr": tune.loguniform}))
case("space-not-a-dict", CFG, "param_space", "[1, 2]", "dict")(
    lambda tmp: tuner(tmp, space=[1, 2]))
case("space-unpicklable-value", CFG, "lock", "pickl")(
    lambda tmp: fit(tmp, space={"lock": threading.Lock()}))
case("space-nested-uncalled-domain", CFG, "opt/lr", "uniform")(
    lambda tmp: tuner(tmp, space={"opt": {"lr": tune.uniform}}))

# -- TuneConfig --------------------------------------------------------------------------------
TC = tune.TuneConfig
row("tc-metric-int", lambda: TC(metric=5), CFG, "metric", "5", "str")
row("tc-mode-word", lambda: TC(mode="maximize"), CFG, "mode", "maximize", "'min'")
row("tc-num-samples-zero", lambda: TC(num_samples=0), CFG, "num_samples", "0", "-1")
row("tc-num-samples-minus-two", lambda: TC(num_samples=-2), CFG, "num_samples", "-2")
row("tc-num-samples-float", lambda: TC(num_samples=1.5), CFG, "num_samples", "1.5")
row("tc-num-samples-str", lambda: TC(num_samples="3"), CFG, "num_samples", "'3'")
row("tc-num-samples-bool", lambda: TC(num_samples=True), CFG, "num_samples", "true")
row("tc-max-concurrent-negative", lambda: TC(max_concurrent_trials=-1), CFG,
    "max_concurrent_trials", "-1")
row("tc-max-concurrent-float", lambda: TC(max_concurrent_trials=2.5), CFG,
    "max_concurrent_trials", "2.5")
row("tc-time-budget-minus-one", lambda: TC(time_budget_s=-1), CFG, "time_budget_s", "-1", "> 0")
row("tc-time-budget-negative", lambda: TC(time_budget_s=-5), CFG, "time_budget_s", "-5")
row("tc-time-budget-str", lambda: TC(time_budget_s="10"), CFG, "time_budget_s", "'10'")
row("tc-time-budget-nan", lambda: TC(time_budget_s=float("nan")), CFG, "time_budget_s", "nan")
row("tc-seed-negative", lambda: TC(seed=-1), CFG, "`seed`", "-1", ">= 0")
row("tc-seed-float", lambda: TC(seed=1.5), CFG, "seed", "1.5", "int")
row("tc-seed-str", lambda: TC(seed="x"), CFG, "seed", "'x'")
row("tc-backend-unknown", lambda: TC(backend="gpu-cluster"), CFG, "backend", "gpu-cluster",
    "simulated")
row("tc-backend-int", lambda: TC(backend=5), CFG, "backend", "5")
row("tc-name-creator-str", lambda: TC(trial_name_creator="x"), CFG, "trial_name_creator", "'x'",
    "callable")
row("tc-dirname-creator-int", lambda: TC(trial_dirname_creator=5), CFG, "trial_dirname_creator",
    "5", "callable")
case("tc-scheduler-str", CFG, "scheduler", "'pbt'", "TrialScheduler")(  # checked in fit()
    lambda tmp: tuner(tmp, scheduler="pbt").fit())
case("tc-search-alg-str", CFG, "search_alg", "'optuna'", "Searcher")(
    lambda tmp: tuner(tmp, search_alg="optuna").fit())
row("tc-metric-empty", lambda: TC(metric=""), CFG, "metric", "''", "non-empty")

# -- RunConfig ---------------------------------------------------------------------------------
RC = tune.RunConfig
row("rc-name-dotdot", lambda: RC(name=".."), CFG, "name", "'..'")
row("rc-name-dot", lambda: RC(name="."), CFG, "name", "'.'")
row("rc-name-slash", lambda: RC(name="a/b"), CFG, "name", "'a/b'", "'/'")
row("rc-name-too-long", lambda: RC(name="x" * 300), CFG, "name", "xxxx", "255")
row("rc-name-nul", lambda: RC(name="a\x00b"), CFG, "name", "a\\x00b")
row("rc-name-int", lambda: RC(name=5), CFG, "name", "5", "str")
row("rc-storage-int", lambda: RC(storage_path=5), CFG, "storage_path", "5", "str")
row("rc-verbose-seven", lambda: RC(verbose=7), CFG, "verbose", "7", "[0, 3]")
row("rc-verbose-negative", lambda: RC(verbose=-1), CFG, "verbose", "-1", "[0, 3]")
row("rc-checkpoint-config-dict", lambda: RC(checkpoint_config={"num_to_keep": 1}), CFG,
    "checkpoint_config", "num_to_keep", "CheckpointConfig")
row("rc-failure-config-int", lambda: RC(failure_config=3), CFG, "failure_config", "3",
    "FailureConfig")
row("rc-stop-str", lambda: RC(stop="loss"), CFG, "stop", "'loss'", "dict")
row("rc-stop-threshold-str", lambda: RC(stop={"loss": "low"}), CFG, "stop", "loss", "'low'",
    "number")
row("rc-log-sinks-unknown", lambda: RC(log_sinks=["carrier-pigeon"]), CFG, "log_sinks",
    "carrier-pigeon")
row("rc-callbacks-not-list", lambda: RC(callbacks=5), CFG, "callbacks", "5", "list")
case("rc-callbacks-bad-item", CFG, "callbacks", "object", "Callback")(  # checked in fit()
    lambda tmp: tune.Tuner(f, tune_config=TC(backend="simulated"),
                           run_config=RC(storage_path=str(tmp), callbacks=[object()],
                                         verbose=0)).fit())

# -- CheckpointConfig / FailureConfig ----------------------------------------------------------------
CC, FC = tune.CheckpointConfig, tune.FailureConfig
row("cc-keep-zero", lambda: CC(num_to_keep=0), CFG, "num_to_keep", "0", ">= 1")
row("cc-keep-negative", lambda: CC(num_to_keep=-1), CFG, "num_to_keep", "-1")
row("cc-keep-float", lambda: CC(num_to_keep=1.5), CFG, "num_to_keep", "1.5")
row("cc-order-up", lambda: CC(checkpoint_score_order="up"), CFG, "checkpoint_score_order",
    "'up'", "'max'")
row("cc-frequency-negative", lambda: CC(checkpoint_frequency=-1), CFG, "checkpoint_frequency",
    "-1", ">= 0")
row("cc-frequency-float", lambda: CC(checkpoint_frequency=2.5), CFG, "checkpoint_frequency",
    "2.5")
row("cc-score-attr-int", lambda: CC(checkpoint_score_attribute=5), CFG,
    "checkpoint_score_attribute", "5", "str")
row("cc-at-end-str", lambda: CC(checkpoint_at_end="yes"), CFG, "checkpoint_at_end", "'yes'",
    "bool")
row("fc-max-failures-minus-two", lambda: FC(max_failures=-2), CFG, "max_failures", "-2", "-1")
row("fc-max-failures-float", lambda: FC(max_failures=1.5), CFG, "max_failures", "1.5")
row("fc-max-failures-str", lambda: FC(max_failures="3"), CFG, "max_failures", "'3'")
row("fc-fail-fast-str", lambda: FC(fail_fast="yes"), CFG, "fail_fast", "'yes'", "raise")

# -- schedulers --------------------------------------------------------------------------------
row("asha-max-t-zero", lambda: sch.ASHAScheduler(max_t=0), CFG, "max_t", "0")
row("asha-grace-zero", lambda: sch.ASHAScheduler(grace_period=0), CFG, "grace_period", "0")
row("asha-grace-over-max", lambda: sch.ASHAScheduler(max_t=5, grace_period=10), CFG,
    "grace_period", "10", "max_t")
row("asha-rf-one", lambda: sch.ASHAScheduler(reduction_factor=1), CFG, "reduction_factor", "1")
row("asha-brackets-zero", lambda: sch.ASHAScheduler(brackets=0), CFG, "brackets", "0")
row("asha-mode-up", lambda: sch.ASHAScheduler(mode="up"), CFG, "mode", "'up'")
row("asha-time-attr-int", lambda: sch.ASHAScheduler(time_attr=5), CFG, "time_attr", "5", "str")
row("hyperband-max-t-zero", lambda: sch.HyperBandScheduler(max_t=0), CFG, "max_t", "0")
row("hyperband-rf-one", lambda: sch.HyperBandScheduler(reduction_factor=1), CFG,
    "reduction_factor", "1")
row("median-grace-negative", lambda: sch.MedianStoppingRule(grace_period=-1), CFG,
    "grace_period", "-1")
row("median-min-samples-zero", lambda: sch.MedianStoppingRule(min_samples_required=0), CFG,
    "min_samples_required", "0")
row("median-slice-negative", lambda: sch.MedianStoppingRule(min_time_slice=-1), CFG,
    "min_time_slice", "-1")
PBT = sch.PopulationBasedTraining
MUT = {"lr": tune.uniform(0, 1)}
row("pbt-interval-zero", lambda: PBT(perturbation_interval=0, hyperparam_mutations=MUT), CFG,
    "perturbation_interval", "0")
row("pbt-quantile-high", lambda: PBT(quantile_fraction=0.7, hyperparam_mutations=MUT), CFG,
    "quantile_fraction", "0.7", "0.5")
row("pbt-resample-high", lambda: PBT(resample_probability=1.5, hyperparam_mutations=MUT), CFG,
    "resample_probability", "1.5")
row("pbt-burn-in-negative", lambda: PBT(burn_in_period=-1, hyperparam_mutations=MUT), CFG,
    "burn_in_period", "-1")
row("pbt-no-mutations", lambda: PBT(), CFG, "hyperparam_mutations", "custom_explore_fn")
row("pbt-mutation-int", lambda: PBT(hyperparam_mutations={"lr": 5}), CFG, "lr", "5")
row("pbt-mutations-str", lambda: PBT(hyperparam_mutations="lr"), CFG, "hyperparam_mutations",
    "'lr'")
row("pbt-explore-fn-int", lambda: PBT(hyperparam_mutations=MUT, custom_explore_fn=5), CFG,
    "custom_explore_fn", "5", "callable")
row("pbt-factors-empty", lambda: PBT(hyperparam_mutations=MUT, perturbation_factors=()), CFG,
    "perturbation_factors", "()")
row("pbt-mode-up", lambda: PBT(hyperparam_mutations=MUT, mode="up"), CFG, "mode", "'up'")
row("pb2-bounds-short", lambda: sch.PB2(hyperparam_bounds={"lr": [1]}), CFG, "lr", "[1]")
row("pb2-bounds-reversed", lambda: sch.PB2(hyperparam_bounds={"lr": [1, 0]}), CFG, "lr",
    "[1, 0]")
row("pb2-no-bounds", lambda: sch.PB2(), CFG, "hyperparam_bounds")
row("pbt-replay-missing-file", lambda: sch.PopulationBasedTrainingReplay("/nonexistent/p.txt"),
    (CFG, OSError, TuneError), "/nonexistent/p.txt")
row("resource-changing-base-str",
    lambda: sch.ResourceChangingScheduler(base_scheduler="fifo"), CFG, "base_scheduler",
    "'fifo'")

# -- searchers ---------------------------------------------------------------------------------
row("bvg-max-concurrent-negative", lambda: search.BasicVariantGenerator(max_concurrent=-1), CFG,
    "max_concurrent", "-1")
row("bvg-points-dict", lambda: search.BasicVariantGenerator(points_to_evaluate={"a": 1}), CFG,
    "points_to_evaluate", "list")
row("limiter-zero", lambda: search.ConcurrencyLimiter(search.BasicVariantGenerator(), 0), CFG,
    "max_concurrent", "0")
row("limiter-not-searcher", lambda: search.ConcurrencyLimiter("optuna", 2), CFG, "searcher",
    "'optuna'")
row("repeater-zero", lambda: search.Repeater(_Searcher(), repeat=0), CFG, "repeat", "0")
row("repeater-not-searcher", lambda: search.Repeater("optuna"), CFG, "searcher", "'optuna'")
row("optuna-mode-up", lambda: _optuna(mode="up", metric="x"), CFG, "mode", "'up'")
row("optuna-space-int", lambda: _optuna(space=5), CFG, "space", "5")
row("hyperopt-initial-negative", lambda: _hyperopt(n_initial_points=-1), CFG,
    "n_initial_points", "-1")


class _Searcher(search.Searcher):
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return {}


def _optuna(**kw: Any) -> Any:
    pytest.importorskip("optuna")
    from poptune.search.optuna import OptunaSearch

    return OptunaSearch(**kw)


def _hyperopt(**kw: Any) -> Any:
    pytest.importorskip("hyperopt")
    from poptune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(**kw)


# -- trainables and resources ------------------------------------------------------------------------
case("trainable-int", CFG, "trainable", "5")(lambda tmp: tuner(tmp, trainable=5))
case("trainable-unknown-name", CFG + (TuneError,), "no_such_trainable")(
    lambda tmp: tuner(tmp, trainable="no_such_trainable"))
row("resources-cpu-negative", lambda: tune.with_resources(f, {"cpu": -1}), CFG, "cpu", "-1")
row("resources-gpu-str", lambda: tune.with_resources(f, {"gpu": "one"}), CFG, "gpu", "'one'")
row("resources-not-dict", lambda: tune.with_resources(f, 5), CFG, "resources", "5")
case("resources-memory-too-large", CFG, "memory", "1e+15")(
    lambda tmp: tune.Tuner(tune.with_resources(f, {"memory": 1e15}),  # local: checked in fit()
                           run_config=tune.RunConfig(storage_path=str(tmp), verbose=0)).fit())

# -- reported values (seen only while a trial runs: simulated backend) -----------------------------


def report_str(config: dict[str, Any]) -> None:
    tune.report({"score": "high"})


def report_unpicklable(config: dict[str, Any]) -> None:
    tune.report({"score": 1.0, "handle": threading.Lock()})


def report_not_dict(config: dict[str, Any]) -> None:
    tune.report(5)  # type: ignore[arg-type]


case("report-metric-str", (CFG, TuneError), "score", "'high'", "number")(
    lambda tmp: fit(tmp, report_str, metric="score", mode="max", num_samples=2).get_best_result())
case("report-unpicklable-value", (CFG, TuneError), "handle", "pickl")(
    lambda tmp: fit(tmp, report_unpicklable))
case("report-not-dict", (CFG, TuneError), "metrics", "5", "dict")(
    lambda tmp: fit(tmp, report_not_dict))
# tune.report outside a trial is not an error: as in Ray it warns and reports nothing
# (tests/engine/test_tuner_basic.py)

# -- restore paths ----------------------------------------------------------------------------------
case("restore-missing-dir", (TuneError, ValueError, OSError), "/nonexistent/exp")(
    lambda tmp: tune.Tuner.restore("/nonexistent/exp", f))


@case("restore-truncated-tuner-pkl", TuneError, "tuner.pkl", "truncated")
def _(tmp: Path) -> None:
    fit(tmp)
    pkl = tmp / "exp" / "tuner.pkl"
    pkl.write_bytes(pkl.read_bytes()[:40])
    tune.Tuner.restore(str(tmp / "exp"), f)


@case("restore-a-file", (TuneError, ValueError, OSError), "not_a_dir")
def _(tmp: Path) -> None:
    (tmp / "not_a_dir").write_text("x")
    tune.Tuner.restore(str(tmp / "not_a_dir"), f)


@case("restore-missing-journal", TuneError, "journal")
def _(tmp: Path) -> None:
    fit(tmp)
    os.remove(tmp / "exp" / "journal.jsonl")
    tune.Tuner.restore(str(tmp / "exp"), f)


@case("restore-other-experiments-journal", TuneError, "journal.jsonl", "another experiment",
      "'other'")
def _(tmp: Path) -> None:
    fit(tmp)
    tune.Tuner(f, tune_config=tune.TuneConfig(backend="simulated"),
               run_config=tune.RunConfig(storage_path=str(tmp), name="other", verbose=0)).fit()
    shutil.copy(tmp / "other" / "journal.jsonl", tmp / "exp" / "journal.jsonl")
    tune.Tuner.restore(str(tmp / "exp"), f)


# -- CLI arguments (exit code 2 and a one-line error naming the argument) ------------------------------
def cli(*argv: str) -> None:
    from poptune.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    if code != 0:
        raise CliError(code)


class CliError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exit {code}")
        self.code = code


CLI_ROWS = [
    ("cli-show-missing", ("show", "/nonexistent/exp"), "/nonexistent/exp"),
    ("cli-plot-bad-mode", ("plot", "x", "--mode", "sideways"), "sideways"),
    ("cli-dashboard-port-zero", ("dashboard", "/", "--port", "0"), "--port"),
    ("cli-dashboard-port-high", ("dashboard", "/", "--port", "70000"), "70000"),
    ("cli-dashboard-port-str", ("dashboard", "/", "--port", "http"), "'http'"),
    ("cli-resume-trainable-no-colon", ("resume", "{tmp}", "--trainable", "train"), "train"),
    ("cli-ls-missing-storage", ("ls", "/nonexistent/store"), "/nonexistent/store"),
    ("cli-unknown-command", ("bogus",), "bogus"),
    ("cli-resume-both-errored-flags", ("resume", "x", "--trainable", "m:f", "--resume-errored",
                                       "--restart-errored"), "--restart-errored"),
]


def _cli_case(argv: tuple[str, ...]) -> Callable[[Path], Any]:
    def run(tmp: Path) -> None:
        if "{tmp}" in argv:
            fit(tmp)
        cli(*(a.replace("{tmp}", str(tmp / "exp")) for a in argv))
    return run


for _id, _argv, _needle in CLI_ROWS:
    CASES.append(Case(_id, _cli_case(_argv), CliError, ("<stderr>", _needle)))

# -- dashboard requests --------------------------------------------------------------------------------
DASH_ROWS = [
    ("dash-mode-sideways", "/api/experiments/exp/trials?mode=sideways", 400, ("mode", "sideways")),
    ("dash-series-since-word", "/api/experiments/exp/series?since=t:abc", 400, ("since", "abc")),
    ("dash-exploits-since-word", "/api/experiments/exp/exploits?since=abc", 400,
     ("since", "abc")),
    ("dash-series-unknown-trial", "/api/experiments/exp/series?trials=nope", 404, ("nope",)),
    ("dash-unknown-experiment", "/api/experiments/nope/trials", 404, ("nope",)),
    ("dash-unknown-trial", "/api/experiments/exp/trials/nope/error", 404, ("nope",)),
    ("dash-post", "/api/experiments", 405, ("get",)),
]


class HttpError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text}")
        self.status = status


def _dash_case(url: str, status: int) -> Callable[[Path], Any]:
    def run(tmp: Path) -> None:
        pytest.importorskip("starlette")
        pytest.importorskip("httpx")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient
        from poptune.dashboard import create_app

        fit(tmp)
        client = TestClient(create_app(str(tmp)), base_url="http://127.0.0.1")
        r = client.post(url) if status == 405 else client.get(url)
        assert r.status_code == status, (r.status_code, r.text)
        raise HttpError(r.status_code, r.text)
    return run


for _id, _url, _status, _needles in DASH_ROWS:
    CASES.append(Case(_id, _dash_case(_url, _status), HttpError, _needles))


def _flat(exc: Any) -> Iterator[type[BaseException]]:
    for e in exc:
        if isinstance(e, tuple):
            yield from _flat(e)
        else:
            yield e


# -- the runner ----------------------------------------------------------------------------------
@pytest.fixture
def watchdog() -> Iterator[None]:
    """Fail the row (TimeoutError inside it) if it runs longer than ``WATCHDOG_S``."""
    def fire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"bad-input row still running after {WATCHDOG_S}s: it hangs")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, WATCHDOG_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_the_table_has_at_least_100_distinct_rows() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 100, len(ids)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clean_error(c: Case, tmp_path: Path, watchdog: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    exc = c.exc if isinstance(c.exc, type) else tuple(_flat(c.exc))
    try:
        with pytest.raises(exc) as info:
            c.run(tmp_path)  # noqa: PT012
    except MissingDependencyError as missing:  # e.g. PB2 without scikit-learn installed
        pytest.skip(str(missing))
    assert not isinstance(info.value, TimeoutError), info.value
    message = str(info.value)
    if isinstance(info.value, CliError):
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.strip(), err  # argparse adds its usage lines
        message = "<stderr>" + err
    low = message.lower()
    missing = [n for n in c.needles if n.lower() not in low]
    assert not missing, f"{c.id}: message {message!r} does not mention {missing}"
