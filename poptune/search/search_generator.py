"""Adapt a user :class:`~poptune.search._base.Searcher` to the engine's interface."""

from __future__ import annotations

import logging
from typing import Any

import cloudpickle

from poptune._validation import bad_type
from poptune.exceptions import TuneConfigError
from poptune.search._base import (
    SearchAlgorithm,
    Searcher,
    TrialSuggestion,
    _file_bytes,
    _restore_bytes,
    _set_search_properties_compat,
)
from poptune.search.basic_variant import _get_rng_state, _set_rng_state
from poptune.search.repeater import _warn_num_samples
from poptune.search.sample import Rng, as_generator
from poptune.search.variant_generator import (
    _copy_structure,
    _is_eval,
    _is_grid,
    _join,
    _parse,
    _variants,
    flatten_dict,
    format_vars,
    has_unresolved,
)

__all__ = ["SearchGenerator"]

logger = logging.getLogger(__name__)
_WARNED: set[str] = set()


def _merge(base: Any, overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a fresh copy) updated by ``overlay``, recursing where both hold dicts."""
    merged = _copy_structure(base) if isinstance(base, dict) else {}
    for key, value in overlay.items():
        current = merged.get(key)
        if (isinstance(value, dict) and isinstance(current, dict) and not _is_grid(current)
                and not _is_eval(current)):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _chain(searcher: Searcher) -> list[Searcher]:
    """The searcher and the ones it wraps (``ConcurrencyLimiter``, ``Repeater``)."""
    chain = [searcher]
    while isinstance(getattr(chain[-1], "searcher", None), Searcher):
        chain.append(chain[-1].searcher)  # type: ignore[attr-defined]
    return chain


def _dump_searcher(searcher: Searcher) -> bytes:
    """The searcher's state as bytes; ``b"none:"`` (with a warning) if it cannot be saved."""
    overrides_save = type(searcher).save is not Searcher.save
    overrides_state = type(searcher).get_state is not Searcher.get_state
    try:
        if overrides_save and not overrides_state:  # Ray style: the searcher writes a file
            return b"file:" + _file_bytes(searcher)
        return b"state:" + cloudpickle.dumps(searcher.get_state())
    except Exception as exc:  # noqa: BLE001 - an unsaveable searcher must not stop the run
        name = type(searcher).__name__
        if name not in _WARNED:
            _WARNED.add(name)
            logger.warning(
                "%s cannot be saved (%s: %s); a restored experiment will start it afresh. "
                "Override get_state/set_state to make it restorable.",
                name, type(exc).__name__, exc,
            )  # fmt: skip
        return b"none:"


def _load_searcher(searcher: Searcher, blob: bytes) -> None:
    kind, _, payload = blob.partition(b":")
    if kind == b"none":
        return
    if kind == b"state":
        searcher.set_state(cloudpickle.loads(payload))
        return
    _restore_bytes(searcher, payload)


class SearchGenerator(SearchAlgorithm):
    """Creates trials from a :class:`Searcher`'s suggestions.

    It counts trials up to ``num_samples`` (``-1``: until the searcher returns
    ``Searcher.FINISHED``), fills each suggestion into ``param_space`` so constants reach the
    trainable (by identity), and keeps the searcher's state in the experiment's state.

    If the searcher refuses ``param_space`` (its ``set_search_properties`` returns False,
    because it has a space of its own), ``param_space`` may hold constants only. If it takes
    the space, any domain its suggestion leaves out is sampled with the generator's seeded
    generator.

    Example:
        >>> class Doubling(Searcher):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.x = 1
        ...     def suggest(self, trial_id):
        ...         self.x *= 2
        ...         return {"x": self.x}
        >>> gen = SearchGenerator(Doubling())
        >>> gen.setup_experiment({"epochs": 3}, num_samples=2, seed=0)
        >>> gen.next_trial("t0")
        TrialSuggestion(config={'epochs': 3, 'x': 2}, resolved_vars={'x': 2}, tag='1_epochs=3,x=2')
        >>> gen.next_trial("t1").config["x"], gen.next_trial("t2"), gen.is_finished()
        (4, None, True)
    """

    def __init__(self, searcher: Searcher) -> None:
        if not isinstance(searcher, Searcher):
            raise bad_type("searcher", searcher, "a Searcher subclass instance")
        self.searcher = searcher
        self._space: dict[str, Any] = {}
        self._num_samples = 1
        self._counter = 0
        self._finished = False
        self._space_accepted: bool | None = None  # None: set_search_properties not called
        self._rng: Rng | None = None
        self._set_up = False

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        accepted = _set_search_properties_compat(
            self.searcher.set_search_properties, metric, mode, config, **spec
        )
        self._space_accepted = accepted
        return accepted

    def setup_experiment(
        self, param_space: dict[str, Any], num_samples: int, seed: int | None
    ) -> None:
        space = {} if param_space is None else param_space
        if not isinstance(space, dict):
            raise bad_type("param_space", space, "a dict")
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or not (
            num_samples == -1 or num_samples >= 1
        ):
            raise TuneConfigError(
                f"`num_samples` must be an integer >= 1, or -1 for unlimited, got {num_samples!r}"
            )
        if self._space_accepted is None:
            self.set_search_properties(None, None, space)
        if not self._space_accepted and has_unresolved(space):
            raise TuneConfigError(
                f"`param_space` must hold constants only when {type(self.searcher).__name__} "
                "has a search space of its own (its set_search_properties returned False), "
                "got domains or grids; move them into the searcher's space"
            )
        self._space = space
        self._num_samples = num_samples
        self._rng = as_generator(seed)
        self._set_up = True
        _warn_num_samples(self.searcher, num_samples)

    @property
    def total_samples(self) -> int | None:
        return None if self._num_samples == -1 else self._num_samples

    def is_finished(self) -> bool:
        return self._finished or (
            self._num_samples != -1 and self._counter >= self._num_samples
        )

    def next_trial(self, trial_id: str) -> TrialSuggestion | None:
        if not self._set_up:
            raise TuneConfigError("`setup_experiment` must be called before `next_trial`")
        if self.is_finished():
            return None
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, str) and suggestion == Searcher.FINISHED:
            self._finished = True
            return None
        if suggestion is None:
            return None
        if not isinstance(suggestion, dict):
            raise bad_type(
                f"{type(self.searcher).__name__}.suggest()",
                suggestion,
                "a dict, None or Searcher.FINISHED",
            )
        config = _merge(self._space, suggestion)
        if has_unresolved(config):  # domains the suggestion left out: draw them ourselves
            assert self._rng is not None
            grids = [_join(path) for path, _ in _parse(config)[1]]
            if grids:
                raise TuneConfigError(
                    f"`param_space` entries {grids} are grid_search, which "
                    f"{type(self.searcher).__name__} did not resolve; use the default "
                    "BasicVariantGenerator for grids"
                )
            _, config = next(_variants(config, self._rng, constant_grid_search=False))
        self._counter += 1
        # Ray's tag of a searcher's trial: its count from 1 and every value of its config
        tag = f"{self._counter}_{format_vars(flatten_dict(config))}"
        return TrialSuggestion(config=config, resolved_vars=flatten_dict(suggestion), tag=tag)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def save_state(self) -> dict[str, Any]:
        return {
            "counter": self._counter,
            "finished": self._finished,
            "rng_state": None if self._rng is None else _get_rng_state(self._rng),
            "searchers": [_dump_searcher(s) for s in _chain(self.searcher)],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        chain = _chain(self.searcher)
        if len(chain) != len(state["searchers"]):
            raise TuneConfigError(
                f"`search_alg` must be wrapped as when the experiment was saved "
                f"({len(state['searchers'])} levels), got {len(chain)} levels"
            )
        for searcher, blob in zip(chain, state["searchers"]):
            _load_searcher(searcher, blob)
        self._counter = state["counter"]
        self._finished = state["finished"]
        if state["rng_state"] is not None:
            self._rng = self._rng or as_generator(None)
            _set_rng_state(self._rng, state["rng_state"])
