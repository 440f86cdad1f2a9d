"""The legacy ``tune.run`` API, built on :class:`~poptune.Tuner`.

``tune.run(trainable, config=..., ...)`` runs one experiment and returns an
:class:`~poptune.analysis.ExperimentAnalysis`. Ray Tune's Ray-1.x style trainables run as
they are: ``train(config, checkpoint_dir=None)`` receives the directory of the checkpoint it
is restarted from, writes checkpoints with ``tune.checkpoint_dir(step)`` and reports with
``tune.report(**metrics)``. Ray 0.x's do too: ``train(config, reporter)`` reports with
``reporter(**metrics)``, and ``tune.track.log(**metrics)`` works in any of them.

Example:
    >>> import tempfile
    >>> import poptune as tune
    >>> def objective(config):
    ...     tune.report(score=config["x"] ** 2)
    >>> analysis = tune.run(objective, config={"x": tune.grid_search([-1, 2, 3])},
    ...                     metric="score", mode="min", verbose=0,
    ...                     storage_path=tempfile.mkdtemp())
    >>> analysis.best_config
    {'x': -1}
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from poptune._validation import bad_type, bad_value, check_mode
from poptune.analysis import ExperimentAnalysis
from poptune.config import (
    CheckpointConfig,
    FailureConfig,
    ResumeConfig,
    RunConfig,
    TuneConfig,
    default_storage_path,
)
from poptune.exceptions import TuneError
from poptune.experiment.trial import TrialStatus
from poptune.storage.remote import is_remote, local_path
from poptune.trainable import with_resources
from poptune.tuner import Tuner

__all__ = ["run", "run_experiments"]

logger = logging.getLogger("poptune")

#: Ray's ``tune.run`` parameters that change nothing here (accepted so scripts run as they are).
_NO_EFFECT = frozenset({
    "sync_config", "export_formats", "server_port", "checkpoint_keep_all_ranks",
    "checkpoint_upload_from_workers", "storage_filesystem", "_experiment_checkpoint_dir",
    "_remote", "_remote_string_queue", "_entrypoint",
})
#: Ray's other known parameters, handled below.
_HANDLED = frozenset({"chdir_to_trial_dir"})


_RESUME_TYPES = ("LOCAL", "REMOTE", "PROMPT", "AUTO")
_RESUME_SUFFIXES = ("ERRORED", "ERRORED_ONLY", "RESTART_ERRORED", "RESTART_ERRORED_ONLY")


@dataclasses.dataclass(frozen=True)
class _Resume:
    kind: str  # one of _RESUME_TYPES
    resume_unfinished: bool = True
    resume_errored: bool = False
    restart_errored: bool = False


def _parse_resume(resume: Any) -> _Resume | None:
    """Ray's ``resume`` values: False/None, True (= "AUTO", as in Ray 2.60: the experiment
    if it exists, else a new one), "LOCAL", "REMOTE", "PROMPT", "AUTO", each optionally
    suffixed ``+ERRORED``, ``+ERRORED_ONLY``, ``+RESTART_ERRORED`` or
    ``+RESTART_ERRORED_ONLY``. A bare suffix means ``"LOCAL+<suffix>"``, except that the
    deprecated bare ``"ERRORED_ONLY"`` means ``"LOCAL+RESTART_ERRORED_ONLY"``, as in Ray."""
    if resume is None or resume is False:
        return None
    accepted = ("True, False, 'LOCAL', 'REMOTE', 'PROMPT' or 'AUTO', optionally suffixed with "
                "'+ERRORED', '+ERRORED_ONLY', '+RESTART_ERRORED' or '+RESTART_ERRORED_ONLY'")
    if resume is True:
        text = "AUTO"
    elif isinstance(resume, str):
        text = resume.strip().upper()
        if text == "ERRORED_ONLY":
            text = "LOCAL+RESTART_ERRORED_ONLY"
        elif text.split("+")[0] in _RESUME_SUFFIXES:
            text = "LOCAL+" + text
    else:
        raise bad_type("resume", resume, accepted)
    kind, *suffixes = text.split("+")
    if kind not in _RESUME_TYPES or any(s not in _RESUME_SUFFIXES for s in suffixes):
        raise bad_value("resume", resume, accepted)
    flags = {"resume_unfinished": True, "resume_errored": False, "restart_errored": False}
    for suffix in suffixes:
        if suffix == "ERRORED":
            flags["resume_errored"] = True
        elif suffix == "RESTART_ERRORED":
            flags["restart_errored"] = True
        elif suffix == "ERRORED_ONLY":
            flags.update(resume_unfinished=False, resume_errored=True, restart_errored=False)
        else:  # RESTART_ERRORED_ONLY
            flags.update(resume_unfinished=False, resume_errored=False, restart_errored=True)
    return _Resume(kind, **flags)


def _resume_with_config(parsed: _Resume | None, config: Any) -> _Resume | None:
    """``resume_config`` decides which trials continue (as in Ray, it wins over the
    ``+ERRORED``-style suffixes); given alone it resumes an experiment that exists."""
    if config is None:
        return parsed
    if not isinstance(config, ResumeConfig):
        raise bad_type("resume_config", config, "a poptune.ResumeConfig")
    return _Resume(parsed.kind if parsed is not None else "AUTO", **config._flags())


def _check_unknown(unknown: Mapping[str, Any]) -> dict[str, Any]:
    """Return Ray's known extra parameters; raise ``TypeError`` naming any other."""
    bad = sorted(k for k in unknown if k not in _NO_EFFECT and k not in _HANDLED)
    if bad:
        accepted = [p for p in inspect.signature(run).parameters if p != "unknown"]
        accepted += sorted(_NO_EFFECT | _HANDLED)
        hints = []
        for key in bad:
            close = difflib.get_close_matches(key, accepted, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(f"`tune.run()` got unexpected keyword argument(s) {', '.join(hints)}; "
                        f"it accepts {', '.join(accepted)}")
    for key in ("export_formats", "server_port"):
        if unknown.get(key):
            logger.warning("`tune.run(%s=...)` has no effect in poptune", key)
    return dict(unknown)


def _by_name(kind: str, value: Any) -> Any:
    """Ray's ``scheduler="asha"`` / ``search_alg="optuna"`` shorthands (its registries)."""
    if not isinstance(value, str):
        return value
    if kind == "scheduler":
        from poptune.schedulers import create_scheduler

        return create_scheduler(value)
    from poptune.search import create_searcher

    return create_searcher(value)


def _checkpoint_config(base: CheckpointConfig | None, keep_checkpoints_num: int | None,
                       checkpoint_score_attr: str | None, checkpoint_freq: int,
                       checkpoint_at_end: bool) -> CheckpointConfig:
    """Fold the deprecated ``keep_checkpoints_num``/``checkpoint_score_attr``/... arguments into
    a copy of ``checkpoint_config`` (``"min-loss"`` ranks by ``loss``, lowest best)."""
    if base is not None and not isinstance(base, CheckpointConfig):
        raise bad_type("checkpoint_config", base, "a CheckpointConfig")
    changes: dict[str, Any] = {}
    if keep_checkpoints_num is not None:
        changes["num_to_keep"] = keep_checkpoints_num
    if checkpoint_score_attr is not None:
        if not isinstance(checkpoint_score_attr, str) or not checkpoint_score_attr:
            raise bad_type("checkpoint_score_attr", checkpoint_score_attr,
                           'a metric name, optionally prefixed "min-" or "max-"')
        order, attr = "max", checkpoint_score_attr
        if attr.startswith(("min-", "max-")):
            order, attr = attr[:3], attr[4:]
        changes.update(checkpoint_score_attribute=attr, checkpoint_score_order=order)
    if checkpoint_freq:
        changes["checkpoint_frequency"] = checkpoint_freq
    if checkpoint_at_end:
        changes["checkpoint_at_end"] = True
    elif base is None or base.checkpoint_at_end is None:
        changes["checkpoint_at_end"] = False  # tune.run's default (a Tuner's is True)
    return dataclasses.replace(base or CheckpointConfig(), **changes)


# -- trainables ---------------------------------------------------------------------------
def _context() -> Any:
    from poptune import session

    return session.get_context()


class StatusReporter:
    """The ``reporter`` a Ray 0.x function trainable, ``train(config, reporter)``, is given.

    ``reporter(**metrics)`` reports one iteration, as ``tune.report(metrics)``; a positional
    value is reported as ``_metric`` (Ray's default metric name). ``logdir``, ``trial_name``,
    ``trial_id`` and ``trial_resources`` describe the running trial.
    """

    def __call__(self, _metric: Any = None, **metrics: Any) -> None:
        from poptune import session

        if _metric is not None:
            metrics["_metric"] = _metric
        session.report(metrics)

    logdir = property(lambda self: _context().get_trial_dir())
    trial_name = property(lambda self: _context().get_trial_name())
    trial_id = property(lambda self: _context().get_trial_id())
    trial_resources = property(lambda self: _context().get_trial_resources())


def _legacy_function(fn: Callable[..., Any], restore: str | None) -> Callable[..., Any]:
    """Wrap ``fn`` so it gets ``checkpoint_dir`` (Ray 1.x) and ``reporter`` (Ray 0.x) when it
    asks for them, starts from ``restore`` and reports a checkpoint written by
    ``tune.checkpoint_dir`` after its last report."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    takes_dir, takes_reporter = "checkpoint_dir" in params, "reporter" in params

    def train(config: dict[str, Any], checkpoint_dir: str | None = None) -> Any:
        from poptune import session
        from poptune.checkpoint import Checkpoint

        sess = session.current_session()
        if restore and checkpoint_dir is None and sess is not None and sess.restore_checkpoint is None:
            checkpoint_dir = restore
            sess.restore_checkpoint = Checkpoint(restore)
        kwargs: dict[str, Any] = {}
        if takes_reporter:
            kwargs["reporter"] = StatusReporter()
        if takes_dir:
            kwargs["checkpoint_dir"] = checkpoint_dir
        try:
            ret = fn(config, **kwargs)
        except Exception:
            session._discard_pending_checkpoint()
            raise
        if not (isinstance(ret, dict) and ret):  # a returned dict is reported with the checkpoint
            session._flush_pending_checkpoint()
        return ret

    functools.update_wrapper(train, fn)
    train.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("config", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("checkpoint_dir", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
    ])
    return train


def _legacy_class(cls: type, restore: str) -> type:
    """A subclass that loads ``restore`` when a trial starts without a checkpoint of its own."""

    class _Restored(cls):  # type: ignore[misc, valid-type]
        def __init__(self, config: dict[str, Any] | None = None, *args: Any,
                     **kwargs: Any) -> None:
            from poptune import session

            super().__init__(config, *args, **kwargs)
            sess = session.current_session()
            if sess is not None and sess.restore_checkpoint is None:
                self.restore(restore)
                # as Ray: `restore=` hands over the checkpoint without its result, so the
                # trial counts its iterations and time from 0
                self._iteration, self._time_total = 0, 0.0
                sess.iteration, sess.time_total_offset = 0, 0.0

    _Restored.__name__, _Restored.__qualname__ = cls.__name__, cls.__qualname__
    _Restored.__module__ = cls.__module__
    return _Restored


def _prepare_trainable(run_or_experiment: Any, restore: str | None) -> Any:
    from poptune.registry import resolve_trainable

    accepted = ("a function train(config) / train(config, checkpoint_dir=None) / "
                "train(config, reporter), a "
                "poptune.Trainable subclass, a name given to tune.register_trainable or an "
                "Experiment")
    if isinstance(run_or_experiment, str):
        run_or_experiment, _ = resolve_trainable(run_or_experiment)
    if isinstance(run_or_experiment, (list, tuple)) or not callable(run_or_experiment):
        raise bad_type("run_or_experiment", run_or_experiment, accepted)
    if restore is not None:
        restore = os.path.abspath(os.path.expanduser(os.fspath(restore)))
        if not os.path.isdir(restore):
            raise bad_value("restore", restore, "an existing checkpoint directory")
    if inspect.isclass(run_or_experiment):
        return _legacy_class(run_or_experiment, restore) if restore else run_or_experiment
    return _legacy_function(run_or_experiment, restore)


def _named(trainable: Any, name: str) -> Any:
    """``trainable`` under its registered name (trials are called ``{name}_{id}``, as in Ray)."""
    if inspect.isclass(trainable):
        return type(name, (trainable,), {"__module__": trainable.__module__,
                                         "__qualname__": name})
    trainable.__name__ = trainable.__qualname__ = name  # our own wrapper, never the user's
    return trainable


def _is_experiment(value: Any) -> bool:
    from poptune.experiment.experiment import Experiment

    return isinstance(value, Experiment) or (
        isinstance(value, (list, tuple)) and any(isinstance(v, Experiment) for v in value))


def _run_experiment(experiments: Any, call: dict[str, Any],
                    unknown: dict[str, Any]) -> ExperimentAnalysis:
    """``tune.run(Experiment(...))``: the experiment's spec fills the arguments it holds."""
    from poptune.experiment.experiment import _convert_to_experiment_list

    exps = _convert_to_experiment_list(list(experiments) if isinstance(experiments, tuple)
                                       else experiments)
    if len(exps) != 1:
        raise bad_value("run_or_experiment", experiments,
                        "one Experiment (poptune runs one experiment per call; "
                        "tune.run_experiments runs several, one after another)")
    exp = exps[0]
    spec = dict(exp.spec)
    call.update(name=exp.name, stop=spec["stop"], time_budget_s=spec["time_budget_s"],
                config=spec["config"], resources_per_trial=spec["resources_per_trial"],
                num_samples=spec["num_samples"], storage_path=spec["storage_path"],
                local_dir=None, checkpoint_config=spec["checkpoint_config"],
                trial_name_creator=spec["trial_name_creator"],
                trial_dirname_creator=spec["trial_dirname_creator"],
                log_to_file=spec["log_to_file"], max_failures=spec["max_failures"],
                restore=spec["restore"])
    for key in ("sync_config", "storage_filesystem", "export_formats"):
        if spec[key] is not None:
            unknown[key] = spec[key]
    return run(spec["run"], **call, **unknown)


def run_experiments(
    experiments: Any,
    scheduler: Any = None,
    verbose: Any = None,
    progress_reporter: Any = None,
    resume: bool | str | None = None,
    resume_config: ResumeConfig | None = None,
    reuse_actors: bool = False,
    raise_on_failed_trial: bool = True,
    concurrent: bool = True,
    callbacks: Sequence[Any] | None = None,
    **unknown: Any,
) -> list[Any]:
    """Run several experiments and return all their trials (Ray Tune's ``run_experiments``).

    Args:
        experiments: an :class:`~poptune.Experiment`, a dict ``{name: spec}`` (the spec holds
            ``Experiment``'s arguments, ``"run"`` the trainable or its registered name) or a
            list of either.
        scheduler, verbose, progress_reporter, resume, resume_config, reuse_actors,
        raise_on_failed_trial, callbacks: passed to ``tune.run`` for each experiment.
        concurrent: accepted; poptune runs the experiments one after another either way
            (one engine per experiment), each with its own copy of ``scheduler``.

    Example:
        >>> import tempfile
        >>> import poptune as tune
        >>> def objective(config):
        ...     tune.report({"score": config["x"]})
        >>> trials = tune.run_experiments({"demo": {
        ...     "run": objective, "config": {"x": tune.grid_search([1, 2])},
        ...     "storage_path": tempfile.mkdtemp()}}, verbose=0)
        >>> sorted(t.last_result["score"] for t in trials)
        [1, 2]
    """
    import copy

    from poptune.experiment.experiment import _convert_to_experiment_list

    _check_unknown({k: v for k, v in unknown.items() if k != "_remote"})
    exps = _convert_to_experiment_list(experiments)
    trials: list[Any] = []
    for exp in exps:
        analysis = run(exp, scheduler=copy.deepcopy(scheduler) if len(exps) > 1 else scheduler,
                       verbose=verbose, progress_reporter=progress_reporter, resume=resume,
                       resume_config=resume_config, reuse_actors=reuse_actors,
                       raise_on_failed_trial=raise_on_failed_trial, callbacks=callbacks)
        trials.extend(analysis.trials)
    return trials


@contextlib.contextmanager
def _chdir_setting(chdir_to_trial_dir: Any) -> Iterator[None]:
    """``chdir_to_trial_dir=False``: trials keep the driver's working directory."""
    if chdir_to_trial_dir is None or chdir_to_trial_dir:
        yield
        return
    old = os.environ.get("POPTUNE_CHDIR_TO_TRIAL_DIR")
    os.environ["POPTUNE_CHDIR_TO_TRIAL_DIR"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("POPTUNE_CHDIR_TO_TRIAL_DIR", None)
        else:
            os.environ["POPTUNE_CHDIR_TO_TRIAL_DIR"] = old


def _experiment_dir(name: str | None, storage: Any) -> str | None:
    if not name:
        return None
    storage = os.fspath(storage or default_storage_path())
    if is_remote(storage):
        return f"{storage.rstrip('/')}/{name}"
    return os.path.join(os.path.abspath(os.path.expanduser(local_path(storage))), name)


def _tuner(resume: _Resume | None, exp_dir: str | None, fresh: Tuner) -> Tuner:
    """The fresh Tuner, or one restoring ``exp_dir`` as ``resume`` says (Ray's semantics)."""
    if resume is None:
        return fresh
    if exp_dir is not None and Tuner.can_restore(exp_dir):
        if resume.kind == "PROMPT":
            answer = input(f"Resume from local directory? ({exp_dir}) [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                return fresh
        tuner = Tuner.restore(exp_dir, fresh.trainable,
                              resume_unfinished=resume.resume_unfinished,
                              resume_errored=resume.resume_errored,
                              restart_errored=resume.restart_errored)
        tuner.run_config = fresh.run_config  # this call's stop, callbacks, failure handling
        return tuner
    if resume.kind == "AUTO":
        logger.info("No experiment to resume at %s; starting a new one.", exp_dir)
        return fresh
    where = exp_dir or "(no `name` given, so the experiment directory is unknown)"
    raise ValueError(
        f"You called resume ({resume.kind}) when no experiment exists at {where}. Pass the "
        "`name` (and `storage_path`) of the experiment to resume; to start a new experiment "
        'when none exists, use `resume="AUTO"`, or `resume=False`.')


class TrialsDidNotComplete(TuneError):
    """``tune.run``'s error for failed trials: ``args`` are Ray's ``("Trials did not
    complete", [trials])``, ``trials`` the same list, and ``str()`` names each trial's error
    and its ``error.txt``."""

    def __init__(self, trials: list[Any]) -> None:
        super().__init__("Trials did not complete", trials)
        self.trials = trials

    def __str__(self) -> str:
        listing = "; ".join(f"{t} ({t.error_msg or 'error'}, see {t.local_path}/error.txt)"
                            for t in self.trials)
        return (f"Trials did not complete: {listing}. Pass `raise_on_failed_trial=False` to "
                "get the ExperimentAnalysis instead")


def _check_trials(analysis: ExperimentAnalysis, raise_on_failed_trial: bool) -> None:
    unfinished = [t for t in analysis.trials if not t.status.is_finished()]
    failed = [t for t in analysis.trials if t.status == TrialStatus.ERROR]
    if unfinished:  # interrupted: never raise, say how to continue
        logger.warning("Experiment interrupted with %d unfinished trial(s); resume it with "
                       "tune.run(..., name=%r, resume=True)", len(unfinished),
                       os.path.basename(analysis.experiment_path))
    elif failed and raise_on_failed_trial:
        raise TrialsDidNotComplete(failed)
    elif failed:
        logger.error("Trials did not complete: %s", failed)


def run(
    run_or_experiment: Any,
    *,
    name: str | None = None,
    metric: str | None = None,
    mode: str | None = None,
    stop: Any = None,
    time_budget_s: Any = None,
    config: dict[str, Any] | None = None,
    resources_per_trial: Any = None,
    num_samples: int = 1,
    storage_path: str | None = None,
    local_dir: str | None = None,
    search_alg: Any = None,
    scheduler: Any = None,
    checkpoint_config: CheckpointConfig | None = None,
    verbose: Any = None,
    progress_reporter: Any = None,
    log_to_file: Any = False,
    trial_name_creator: Callable[[Any], str] | None = None,
    trial_dirname_creator: Callable[[Any], str] | None = None,
    max_failures: int = 0,
    fail_fast: bool | str = False,
    restore: str | None = None,
    resume: bool | str | None = None,
    resume_config: ResumeConfig | None = None,
    reuse_actors: bool | None = None,
    raise_on_failed_trial: bool = True,
    callbacks: Sequence[Any] | None = None,
    max_concurrent_trials: int | None = None,
    keep_checkpoints_num: int | None = None,
    checkpoint_score_attr: str | None = None,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool = False,
    seed: int | None = None,
    **unknown: Any,
) -> ExperimentAnalysis:
    """Run one experiment and return its :class:`~poptune.analysis.ExperimentAnalysis`.

    The arguments mean what they mean in Ray Tune's ``tune.run``; each maps onto a
    ``Tuner`` setting (``config`` is the ``param_space``, ``resources_per_trial`` goes through
    ``tune.with_resources``, ``max_failures``/``fail_fast`` form the ``FailureConfig``).

    Args:
        run_or_experiment: ``train(config)``, ``train(config, checkpoint_dir=None)``, a
            ``Trainable`` subclass, a name given to ``tune.register_trainable``, or an
            :class:`~poptune.Experiment` (whose spec then replaces ``config``, ``stop``,
            ``num_samples``, ``storage_path`` and the other arguments it holds).
        metric, mode: the metric to optimise and ``"min"``/``"max"``; passed to the searcher
            and scheduler when both are given, and the defaults of the analysis.
        keep_checkpoints_num: ``CheckpointConfig.num_to_keep``.
        checkpoint_score_attr: rank kept checkpoints by this metric, highest best;
            ``"min-loss"`` ranks by ``loss``, lowest best.
        checkpoint_freq, checkpoint_at_end: class trainables' checkpoint schedule.
        restore: a checkpoint directory every trial starts from (when it has none of its own).
        resume: continue the experiment ``{storage_path}/{name}``: ``True``/``"AUTO"`` (if
            it exists, else start it), ``"LOCAL"`` (it must exist), ``"PROMPT"`` (ask);
            ``"+ERRORED"`` also
            resumes errored trials, ``"+RESTART_ERRORED"`` restarts them from scratch, the
            ``_ONLY`` forms skip unfinished trials. Finished trials never re-run.
        resume_config: a :class:`~poptune.ResumeConfig` saying which trials continue; it
            wins over the suffixes of ``resume`` and, given alone, resumes the experiment if
            it exists.
        raise_on_failed_trial: raise ``TuneError`` listing the trials that ended in error.
        seed: poptune's ``TuneConfig.seed`` (same seed, same sampled configs).

    Ray's ``sync_config``, ``storage_filesystem``, ``export_formats``, ``server_port`` and
    ``chdir_to_trial_dir`` are accepted too; any other keyword is a ``TypeError``.

    Raises:
        TuneError: with ``raise_on_failed_trial``, some trial ended in error (an interrupted
            experiment only logs how to resume it).
        TypeError / ValueError: an unknown keyword or a bad value, named in the message.
    """
    if _is_experiment(run_or_experiment):  # the spec's arguments, this call's others
        call = {k: v for k, v in locals().items() if k not in ("run_or_experiment", "unknown")}
        return _run_experiment(run_or_experiment, call, unknown)
    extra = _check_unknown(unknown)
    if local_dir is not None:  # Ray 2.60 refuses it; Ray 1.x-2.6 scripts still pass it
        import warnings

        warnings.warn("`local_dir` is deprecated (Ray 2.60 rejects it): it is used as "
                      "`storage_path`; pass `storage_path` instead", DeprecationWarning,
                      stacklevel=2)
    registered = run_or_experiment if isinstance(run_or_experiment, str) else None
    trainable = _prepare_trainable(run_or_experiment, restore)
    if registered is not None:
        trainable = _named(trainable, registered)
    check_mode(mode)
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise bad_type("config", config, "a dict (the search space)")
    if resources_per_trial is not None:
        trainable = with_resources(trainable, resources_per_trial)
    tune_config = TuneConfig(
        metric=metric if mode else None, mode=mode,
        search_alg=_by_name("search_alg", search_alg),
        scheduler=_by_name("scheduler", scheduler),
        num_samples=num_samples, max_concurrent_trials=max_concurrent_trials,
        time_budget_s=time_budget_s, reuse_actors=reuse_actors,
        trial_name_creator=trial_name_creator, trial_dirname_creator=trial_dirname_creator,
        seed=seed,
    )
    run_config = RunConfig(
        name=name, storage_path=storage_path, local_dir=local_dir, stop=stop,
        checkpoint_config=_checkpoint_config(checkpoint_config, keep_checkpoints_num,
                                             checkpoint_score_attr, checkpoint_freq,
                                             checkpoint_at_end),
        failure_config=FailureConfig(max_failures=max_failures, fail_fast=fail_fast),
        callbacks=callbacks, verbose=verbose, progress_reporter=progress_reporter,
        log_to_file=log_to_file, storage_filesystem=extra.get("storage_filesystem"),
        sync_config=extra.get("sync_config"),
    )
    fresh = Tuner(trainable, param_space=config, tune_config=tune_config, run_config=run_config)
    tuner = _tuner(_resume_with_config(_parse_resume(resume), resume_config),
                   _experiment_dir(name, storage_path or local_dir), fresh)
    tuner._say_how_to_resume = False  # _check_trials says it, the tune.run way
    with _chdir_setting(extra.get("chdir_to_trial_dir")):
        grid = tuner.fit()
    analysis = ExperimentAnalysis._from_result_grid(grid, metric, mode)
    _check_trials(analysis, raise_on_failed_trial)
    return analysis
