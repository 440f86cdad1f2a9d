"""Grid and random search: the default search algorithm.

Trials come in *passes*. Each point of ``points_to_evaluate`` is one pass (the point is merged
into the space, so keys it leaves out are still sampled or gridded); then come
``num_samples - len(points_to_evaluate)`` passes over the plain space. A pass yields every grid
point. This is Ray's ``BasicVariantGenerator`` semantics: with ``a`` a 2-value grid,
``b`` random, ``num_samples=4`` and points ``[{"a": 2, "b": 2}, {"a": 1}, {"b": 2}]`` the
trials are ``(2, 2)``, ``(1, rand)``, ``(1, 2), (2, 2)``, ``(1, rand), (2, rand)``.

State for restore is tiny: the pass and position reached plus the generator's state when that
pass began; a restored generator replays the pass up to the same position (without handing
those configs out again) and continues with exactly the configs not generated yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import cloudpickle
import numpy as np

from poptune._validation import bad_type, bad_value
from poptune.exceptions import TuneConfigError
from poptune.search import _saved_state
from poptune.search._base import SearchAlgorithm, TrialSuggestion
from poptune.search.sample import Domain, RandomState, Rng, as_generator
from poptune.search.variant_generator import (
    Parsed,
    _copy_structure,
    _flatten_paths,
    _grid_values,
    _is_eval,
    _is_grid,
    _parse,
    _variants,
    count_variants,
)

__all__ = ["BasicVariantGenerator"]

logger = logging.getLogger(__name__)


def _merge_point(space: dict[str, Any], point: dict[str, Any], where: str) -> dict[str, Any]:
    """``space`` with the values of ``point`` in place of its domains, grids or constants."""
    merged = _copy_structure(space)
    for key, value in point.items():
        path = f"{where}/{key}" if where else str(key)
        if key not in space:
            raise TuneConfigError(
                f"`points_to_evaluate` key `{path}` is not in `param_space`; add it to the "
                "search space first"
            )
        target = space[key]
        if (isinstance(value, dict) and isinstance(target, dict) and not _is_grid(target)
                and not _is_eval(target)):
            merged[key] = _merge_point(target, value, path)
            continue
        if _is_eval(target):  # any value may stand for an expression's (as in Ray)
            valid = True
        elif _is_grid(target):
            valid = value in _grid_values((path,), target)
        elif isinstance(target, Domain):
            valid = target.is_valid(value)
        else:
            valid = target == value
        if not valid:
            logger.warning("Pre-set value %r of `%s` is outside its search space %r",
                           value, path, target)  # fmt: skip
        merged[key] = value
    return merged


def _get_rng_state(rng: Rng) -> Any:
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.state
    return rng.get_state()


def _set_rng_state(rng: Rng, state: Any) -> None:
    if isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    else:
        rng.set_state(state)


class BasicVariantGenerator(SearchAlgorithm):
    """Resolve ``param_space`` by grid expansion and random sampling (Ray's default).

    Args:
        points_to_evaluate: configs (possibly partial) to run first; each replaces one of
            the ``num_samples`` passes.
        max_concurrent: at most this many of its trials running at once (0: no limit).
        constant_grid_search: draw random values once per pass and reuse them for every
            grid point, instead of drawing anew for each.
        random_state: seed or numpy generator. If None, the Tuner's seed is used; if that is
            None too, a fresh unseeded generator.

    Example:
        >>> from poptune.search.sample import grid_search, uniform
        >>> gen = BasicVariantGenerator(random_state=0)
        >>> gen.setup_experiment({"a": grid_search([1, 2]), "b": uniform(0, 1)}, 2, None)
        >>> gen.total_samples
        4
        >>> [gen.next_trial(f"t{i}").config["a"] for i in range(4)]
        [1, 2, 1, 2]
        >>> gen.next_trial("t4") is None and gen.is_finished()
        True
    """

    #: Ray's name of the file :meth:`save_to_dir` writes (a pickle), ``{}`` the session string
    CKPT_FILE_TMPL = "basic-variant-state-{}.json"

    def __init__(
        self,
        points_to_evaluate: list[dict[str, Any]] | None = None,
        max_concurrent: int = 0,
        constant_grid_search: bool = False,
        random_state: RandomState = None,
    ) -> None:
        if points_to_evaluate is not None and not isinstance(points_to_evaluate, (list, tuple)):
            raise bad_type("points_to_evaluate", points_to_evaluate, "None or a list of dicts")
        points = list(points_to_evaluate or [])
        for i, point in enumerate(points):
            if not isinstance(point, dict):
                raise bad_type(f"points_to_evaluate[{i}]", point, "a dict")
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or (
            max_concurrent < 0
        ):
            raise bad_value("max_concurrent", max_concurrent, "an integer >= 0 (0: no limit)")
        self._points = points
        self.max_concurrent = max_concurrent
        self._constant_grid_search = bool(constant_grid_search)
        self._rng: Rng | None = None if random_state is None else as_generator(random_state)
        self._spaces: list[dict[str, Any]] = []  # one per point, then the plain space
        self._parsed: dict[int, Parsed] = {}  # each space parsed once
        self._num_samples = 1
        self._total: int | None = None
        # Cursor. Configs are generated one ahead of those handed out (so that `is_finished`
        # turns True with the last trial); `_position` counts the configs of pass `_pass`
        # handed out, `_pass_rng_state` is the generator state when that pass began.
        self._pass = 0
        self._position = 0
        self._pass_rng_state: Any = None
        self._iter: Iterator[tuple[dict[Any, Any], dict[str, Any]]] | None = None
        self._ahead: tuple[dict[Any, Any], dict[str, Any]] | None = None
        self._live: set[str] = set()
        self._finished = False
        self._restored: dict[str, Any] | None = None  # applied at the next `next_trial`
        self._replay = 0  # trials created after `_restored` was saved (see `restore_from_dir`)

    def setup_experiment(
        self, param_space: dict[str, Any], num_samples: int, seed: int | None
    ) -> None:
        space = {} if param_space is None else param_space
        if not isinstance(space, dict):
            raise bad_type("param_space", space, "a dict")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or not (
            num_samples == -1 or num_samples >= 1
        ):
            raise bad_value("num_samples", num_samples, "an integer >= 1, or -1 for unlimited")
        # merging validates every point now, not when its turn comes
        points = [_merge_point(space, p, "") for p in self._points]
        self._spaces = points + [space]
        self._parsed = {}
        self._num_samples = num_samples
        if num_samples == -1:
            self._total = None
        else:
            rest = max(0, num_samples - len(points))
            self._total = sum(count_variants(s) for s in points) + rest * count_variants(space)
        if self._rng is None:
            self._rng = as_generator(seed)

    @property
    def total_samples(self) -> int | None:
        return self._total

    def _num_passes(self) -> float:
        points = len(self._spaces) - 1
        if self._num_samples == -1:
            return float("inf")
        return points + max(0, self._num_samples - points)

    def _open_pass(self) -> None:
        assert self._rng is not None
        index = min(self._pass, len(self._spaces) - 1)
        space = self._spaces[index]
        parsed = self._parsed.get(index)
        if parsed is None:
            parsed = self._parsed[index] = _parse(space)
        # Ray's trial tags leave out the values of sample_from functions
        self._iter = _variants(space, self._rng, self._constant_grid_search, parsed,
                               hide_functions=True)

    def _generate(self) -> tuple[dict[Any, Any], dict[str, Any]] | None:
        """The next config of the experiment, opening passes as needed; None at the end."""
        assert self._rng is not None
        while self._pass < self._num_passes():
            if self._iter is None:
                self._pass_rng_state = _get_rng_state(self._rng)
                self._position = 0
                self._open_pass()
            item = next(self._iter, None)  # type: ignore[arg-type]
            if item is not None:
                return item
            self._iter, self._pass = None, self._pass + 1
        return None

    def _apply_restored(self, state: dict[str, Any]) -> None:
        assert self._rng is not None
        if state["rng_state"] is not None:
            _set_rng_state(self._rng, state["rng_state"])
        if state["opened"] and not self._finished:
            # replay the handed-out configs of the current pass, then the look-ahead
            self._pass_rng_state = state["rng_state"]
            self._open_pass()
            for _ in range(self._position):
                next(self._iter)  # type: ignore[arg-type]
            self._ahead = next(self._iter, None)  # type: ignore[arg-type]
            if self._ahead is None:
                self._iter, self._pass = None, self._pass + 1
                self._ahead = self._generate()
            self._finished = self._ahead is None

    def next_trial(self, trial_id: str) -> TrialSuggestion | None:
        if not self._spaces:
            raise TuneConfigError("`setup_experiment` must be called before `next_trial`")
        if self._restored is not None:
            state, self._restored = self._restored, None
            self._apply_restored(state)
            if self._replay:  # move past the trials created after that state, limit or not
                n, limit = self._replay, self.max_concurrent
                self._replay = self.max_concurrent = 0
                self.replay_creations(n)
                self.max_concurrent = limit
        if self._finished:
            return None
        if self.max_concurrent and len(self._live) >= self.max_concurrent:
            return None
        item = self._ahead if self._ahead is not None else self._generate()
        if item is None:
            self._finished = True
            return None
        self._position += 1
        self._ahead = self._generate()
        self._finished = self._ahead is None
        self._live.add(trial_id)
        resolved, config = item
        return TrialSuggestion(config=config, resolved_vars=_flatten_paths(resolved))

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self._live.discard(trial_id)

    def is_finished(self) -> bool:
        return self._finished

    @property
    def completion_changes_state(self) -> bool:
        """Only a concurrency limit makes the set of live trials part of the state."""
        return bool(self.max_concurrent)

    @property
    def replays_creations(self) -> bool:  # type: ignore[override]
        """Without a concurrency limit, the state after ``n`` more trials is the state
        now plus ``n`` draws of the same generator."""
        return not self.max_concurrent

    def replay_creations(self, n: int) -> None:
        for i in range(n):
            if self.next_trial(f"__replayed_{i}") is None:
                break
        self._live.clear()  # not the real trial ids; without a limit nobody reads them

    def save_state(self) -> dict[str, Any]:
        if self._restored is not None:  # restored but not resumed yet: same snapshot
            return dict(self._restored, live=sorted(self._live), replay=self._replay)
        opened = self._pass_rng_state is not None
        rng_state = self._pass_rng_state
        if not opened and self._rng is not None:
            rng_state = _get_rng_state(self._rng)
        return {
            "pass": self._pass,
            "position": self._position,
            "opened": opened,
            "rng_state": rng_state,
            "live": sorted(self._live),
            "finished": self._finished,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._pass = state["pass"]
        self._position = state["position"]
        self._live = set(state["live"])
        self._finished = state["finished"]
        self._iter, self._ahead = None, None
        self._pass_rng_state = state["rng_state"] if state["opened"] else None
        self._replay = state.get("replay", 0)
        self._restored = dict(state)

    # Ray's names for the state, and its files in a directory
    def get_state(self) -> dict[str, Any]:
        """:meth:`save_state` (Ray's name)."""
        return self.save_state()

    def set_state(self, state: dict[str, Any]) -> None:
        """:meth:`load_state` (Ray's name): call ``setup_experiment`` with the same
        ``param_space`` and ``num_samples`` (a Tuner does) to continue the sequence."""
        self.load_state(state)

    def save_to_dir(self, dirpath: str, session_str: str = "default") -> None:
        """Write :meth:`get_state` to ``dirpath/basic-variant-state-{session_str}.json``."""
        def write(path: str) -> None:
            with open(path, "wb") as f:
                cloudpickle.dump(self.get_state(), f)

        _saved_state.write_atomically(dirpath, self.CKPT_FILE_TMPL.format(session_str), write)

    def has_checkpoint(self, dirpath: str) -> bool:
        """Whether :meth:`restore_from_dir` finds a state in ``dirpath``."""
        return self._saved_in(dirpath) is not None

    def restore_from_dir(self, dirpath: str) -> None:
        """Restore from the newest ``basic-variant-state-*.json`` in ``dirpath`` (written by
        :meth:`save_to_dir`), else from the state a poptune experiment there (run with this
        generator) saved last. Trials live in that run do not count against
        ``max_concurrent`` here.

        Raises:
            NoSearchStateError: (a ``RuntimeError``, as Ray's) no state in ``dirpath``.
        """
        state = self._saved_in(dirpath)
        if state is None:
            raise _saved_state.NoSearchStateError(
                f"Unable to find checkpoint in {dirpath!r}: `dirpath` must hold a "
                "`basic-variant-state-*.json` (written by `save_to_dir`) or be the directory "
                "of a poptune experiment whose search algorithm was a BasicVariantGenerator"
            )
        self.set_state(dict(state, live=[]))

    def _saved_in(self, dirpath: str) -> dict[str, Any] | None:
        path = _saved_state.newest_file(dirpath, self.CKPT_FILE_TMPL)
        if path is not None:
            with open(path, "rb") as f:
                state = cloudpickle.load(f)
            if not _is_own_state(state):
                raise bad_value(f"{dirpath}'s file {path}", type(state).__name__,
                                "a state written by poptune's save_to_dir")
            return state  # type: ignore[no-any-return]
        found = _saved_state.journaled_state(dirpath)
        if found is None or not _is_own_state(found[0]):
            return None  # none, or another search algorithm's
        return dict(found[0], replay=found[0].get("replay", 0) + found[1])


def _is_own_state(state: Any) -> bool:
    """Whether ``state`` is a :meth:`BasicVariantGenerator.save_state` snapshot."""
    return isinstance(state, dict) and {"pass", "position", "opened"} <= state.keys()
