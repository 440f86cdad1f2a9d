"""The search extension point: what to run next.

Two bases live here:

* :class:`SearchAlgorithm` is what the engine talks to. The Tuner calls, in order:
  ``set_search_properties(metric, mode, param_space)`` (optional), ``setup_experiment(...)``
  once, then ``next_trial(trial_id)`` whenever it has room for a trial, ``on_trial_result`` /
  ``on_trial_complete`` as events arrive, and ``save_state`` after events it persists. A
  restored experiment gets a fresh instance, ``setup_experiment`` with the same arguments and
  ``load_state`` with what ``save_state`` returned (the order of those two does not matter).
  Implementations: :class:`~poptune.search.basic_variant.BasicVariantGenerator` (grid and
  random search, the default) and :class:`~poptune.search.search_generator.SearchGenerator`
  (adapts a :class:`Searcher`).
* :class:`Searcher` is Ray Tune's user-facing base class for model-based search: implement
  ``suggest`` (and usually ``on_trial_complete``), pass it as ``TuneConfig(search_alg=...)``.

Search algorithms decide and never act: they return a :class:`TrialSuggestion` and never see
the runner or a backend. Every hook is called in the driver, one at a time.
"""

from __future__ import annotations

import abc
import inspect
import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cloudpickle

from poptune._validation import bad_value, check_mode
from poptune.exceptions import TuneConfigError
from poptune.search import _saved_state

__all__ = ["SearchAlgorithm", "Searcher", "TrialSuggestion"]

logger = logging.getLogger(__name__)


def finite_metric(value: Any) -> float | None:
    """A reported metric as a float if it is a finite real number, else None (NaN, inf,
    missing, bool or not a number): what a model-based searcher can learn from.

    >>> finite_metric(0.5), finite_metric(float("nan")), finite_metric(True), finite_metric(None)
    (0.5, None, None, None)
    """
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class TrialSuggestion:
    """A trial to create.

    Attributes:
        config: the resolved config the trainable receives.
        resolved_vars: the sampled values by ``"/"``-joined path (Ray's ``evaluated_params``),
            from which the trial's tag is built with ``format_vars``.
        tag: the trial's experiment tag, when the algorithm makes its own (Ray's
            ``SearchGenerator``: its 1-based count and the whole config); None: the engine
            makes ``{index}_{format_vars(resolved_vars)}``.
    """

    config: dict[str, Any]
    resolved_vars: dict[str, Any]
    tag: str | None = None


class SearchAlgorithm(abc.ABC):
    """Engine-facing source of trials.

    ``next_trial`` returns ``None`` when nothing should start right now (a concurrency limit,
    a searcher waiting for results, or the end); ``is_finished`` tells the two apart.
    """

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Receive ``TuneConfig``'s metric/mode and the ``param_space``.

        Returns:
            False if the algorithm refuses them (e.g. a searcher with a space of its own).
        """
        return True

    @abc.abstractmethod
    def setup_experiment(
        self, param_space: dict[str, Any], num_samples: int, seed: int | None
    ) -> None:
        """Called once before any ``next_trial``.

        Args:
            param_space: the Tuner's ``param_space`` (constants, domains, grids).
            num_samples: ``TuneConfig.num_samples``; ``-1`` means unlimited.
            seed: a seed for the algorithm's own generator, used when it was not given one.
        """

    @abc.abstractmethod
    def next_trial(self, trial_id: str) -> TrialSuggestion | None:
        """The next trial to create, with id ``trial_id``, or None if none now."""

    @abc.abstractmethod
    def is_finished(self) -> bool:
        """True once no trial will ever be suggested again."""

    @property
    def total_samples(self) -> int | None:
        """How many trials the algorithm will create in all, None if unlimited or unknown."""
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """A trial this algorithm created reported an intermediate ``result``."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """A trial ended: its last ``result`` (None if none), ``error=True`` if it failed."""

    @property
    def completion_changes_state(self) -> bool:
        """Whether :meth:`on_trial_complete` changes what :meth:`save_state` must keep (the
        engine then journals the state after each completion, not only after each new
        trial). True unless an algorithm knows better."""
        return True

    #: whether a new trial changes the state only in a way :meth:`replay_creations` can
    #: redo from the trial count: the engine then journals the state now and then (every
    #: :data:`~poptune.engine.runner.SEARCH_STATE_EVERY` trials) instead of with each trial
    replays_creations: bool = False

    def replay_creations(self, n: int) -> None:
        """After :meth:`load_state`: the next ``n`` trials were created already (their
        records are in the journal); move past them. Only for :attr:`replays_creations`."""
        raise NotImplementedError

    @abc.abstractmethod
    def save_state(self) -> dict[str, Any]:
        """A picklable snapshot from which :meth:`load_state` continues exactly here."""

    @abc.abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`save_state` snapshot: trials already created are not
        created again and the rest come out as they would have."""


def _set_search_properties_compat(
    method: Callable[..., bool],
    metric: str | None,
    mode: str | None,
    config: dict[str, Any],
    **spec: Any,
) -> bool:
    """Call ``set_search_properties``, dropping ``**spec`` for old overrides without it."""
    params = inspect.signature(method).parameters.values()
    if spec and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        spec = {}
    return bool(method(metric, mode, config, **spec))


def _check_metric_mode(metric: Any, mode: Any) -> None:
    if isinstance(mode, (list, tuple)):
        if not isinstance(metric, (list, tuple)) or len(metric) != len(mode):
            raise bad_value("metric", metric, f"a list as long as `mode`={list(mode)!r}")
        for m in mode:
            if m not in ("min", "max", "obs"):
                raise bad_value("mode", m, "'min', 'max' or 'obs' in a list of modes")
    else:
        check_mode(mode)


class Searcher:
    """Base class of model-based searchers (Ray Tune's ``Searcher``).

    Subclasses implement :meth:`suggest` and usually :meth:`on_trial_complete`, and call
    ``super().__init__(metric=..., mode=...)``. A searcher that builds its space from the
    Tuner's ``param_space`` overrides :meth:`set_search_properties` and returns True.

    Example:
        >>> import random
        >>> class RandomLR(Searcher):
        ...     def __init__(self):
        ...         super().__init__(metric="loss", mode="min")
        ...         self.rng = random.Random(0)
        ...         self.seen = {}
        ...     def suggest(self, trial_id):
        ...         return {"lr": self.rng.uniform(1e-4, 1e-1)}
        ...     def on_trial_complete(self, trial_id, result=None, error=False):
        ...         self.seen[trial_id] = result
        >>> "lr" in RandomLR().suggest("t0")
        True
    """

    FINISHED = "FINISHED"
    _metric: Any = None
    _mode: Any = None

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        _check_metric_mode(metric, mode)
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> Any:
        """The result key being optimized (None until known)."""
        return self._metric

    @property
    def mode(self) -> Any:
        """``"min"`` or ``"max"`` (None until known)."""
        return self._mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Receive metric, mode and ``param_space`` from the Tuner.

        Returns:
            True if the searcher took them (it will search ``config``), False if it keeps
            its own space. The default is False, as in Ray.
        """
        return False

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """A config for a new trial ``trial_id``; None for "not now"; ``FINISHED`` for never."""
        raise NotImplementedError(f"{type(self).__name__} must implement `suggest(trial_id)`")

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """An intermediate result (may lack the metric or hold NaN)."""

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """A suggested trial ended; ``result`` is its last result (None on some errors)."""

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Tell the searcher about a point evaluated outside this experiment."""
        raise NotImplementedError(
            f"{type(self).__name__} does not support `add_evaluated_point`; override it to "
            "feed externally evaluated points to the searcher"
        )

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Return True if the searcher limits concurrency itself (``ConcurrencyLimiter``
        then leaves it alone)."""
        return False

    def get_state(self) -> dict[str, Any]:
        """The searcher's state (default: its attributes). Must be picklable by cloudpickle."""
        return dict(self.__dict__)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        """Write :meth:`get_state` to ``checkpoint_path`` (a pickle file)."""
        with open(checkpoint_path, "wb") as f:
            cloudpickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        """Load a file written by :meth:`save` (or by a wrapper's ``save``: a ``Repeater``'s
        file holds this searcher's file, which is what Ray's holds)."""
        with open(checkpoint_path, "rb") as f:
            state = cloudpickle.load(f)
        if isinstance(state, _WrappedFile):
            _restore_bytes(self, state.inner)
            return
        if not isinstance(state, dict):
            raise TuneConfigError(f"`checkpoint_path` {checkpoint_path!r} holds no searcher state")
        self.set_state(state)

    #: Ray's name of the file :meth:`save_to_dir` writes, ``{}`` the session string
    CKPT_FILE_TMPL = "searcher-state-{}.pkl"

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Write :meth:`save`'s file to ``checkpoint_dir/searcher-state-{session_str}.pkl``
        (atomically, as Ray's); a ``save`` raising NotImplementedError is skipped with a
        warning."""
        try:
            _saved_state.write_atomically(
                checkpoint_dir, self.CKPT_FILE_TMPL.format(session_str), self.save)
        except NotImplementedError:
            logger.warning("save not implemented for %s. Skipping save.", type(self).__name__)

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore from ``checkpoint_dir``: the newest ``searcher-state-*.pkl`` in it (written
        by :meth:`save_to_dir`), else the searcher state a poptune experiment there saved
        last. From an experiment, the innermost searcher's state goes to this searcher's
        innermost one (wrappers start afresh; Ray's file holds only that state too).

        Raises:
            NoSearchStateError: (a ``RuntimeError``, as Ray's) the directory holds neither.
        """
        from poptune.search.search_generator import _chain, _load_searcher

        path = _saved_state.newest_file(checkpoint_dir, self.CKPT_FILE_TMPL)
        if path is not None:
            self.restore(path)
            return
        found = _saved_state.journaled_state(checkpoint_dir)
        blobs = found[0].get("searchers") if found and isinstance(found[0], dict) else None
        if not blobs or blobs[-1] == b"none:":
            raise _saved_state.NoSearchStateError(
                f"Searcher unable to find checkpoint in {checkpoint_dir!r}: `checkpoint_dir` "
                "must hold a `searcher-state-*.pkl` (written by `save_to_dir`) or be the "
                "directory of a poptune experiment whose search algorithm was a Searcher"
            )
        _load_searcher(_chain(self)[-1], blobs[-1])


class _WrappedFile:
    """What a wrapper's ``save`` writes (``Repeater``): the wrapped searcher's own file and
    the wrapper's state. :meth:`Searcher.restore` reads the inner file; code that takes it
    for a state dict (``__dict__.update``) fails clearly instead of copying attributes."""

    def __init__(self, wrapper: str, state: dict[str, Any], inner: bytes) -> None:
        self.wrapper, self.state, self.inner = wrapper, state, inner

    def keys(self) -> Any:
        raise TuneConfigError(
            f"`checkpoint_path` holds a {self.wrapper}'s file, not a state dict: restore it with "
            f"{self.wrapper}.restore or Searcher.restore (which read the wrapped searcher's file)"
        )

    def __iter__(self) -> Any:
        return self.keys()


def _file_bytes(searcher: Searcher) -> bytes:
    """The file ``searcher.save`` writes, as bytes."""
    fd, path = tempfile.mkstemp(suffix=".pkl")
    os.close(fd)
    try:
        searcher.save(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def _restore_bytes(searcher: Searcher, data: bytes) -> None:
    """``searcher.restore`` from a file holding ``data``."""
    fd, path = tempfile.mkstemp(suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        searcher.restore(path)
    finally:
        os.unlink(path)
