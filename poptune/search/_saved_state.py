"""Finding a search algorithm's saved state in a directory (Ray's ``restore_from_dir``).

Two sources: a Ray-style file a ``save_to_dir`` wrote (``searcher-state-<session>.pkl``,
``basic-variant-state-<session>.json``; the newest name wins, as in Ray), and the state a
poptune experiment journaled last (``SearcherState`` records of ``journal.jsonl``, big ones
in ``searcher_state.N.b64``).
"""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Callable
from typing import Any

import cloudpickle

from poptune.exceptions import TuneError

__all__ = ["NoSearchStateError", "journaled_state", "newest_file", "write_atomically"]


class NoSearchStateError(TuneError, RuntimeError):
    """A directory holds no state to restore (a ``RuntimeError``, as Ray raises)."""


def newest_file(dirpath: str, template: str) -> str | None:
    """The greatest name matching ``template.format("*")`` in ``dirpath`` (Ray's choice)."""
    paths = glob.glob(os.path.join(glob.escape(dirpath), template.format("*")))
    return max(paths) if paths else None


def journaled_state(dirpath: str) -> tuple[Any, int] | None:
    """The search algorithm's state the experiment in ``dirpath`` journaled last, and how many
    trials were created after it (a state journaled now and then; see
    ``SearchAlgorithm.replay_creations``); None without a journal or a state.

    Raises:
        RestoreError: the journal is damaged (see :mod:`poptune.storage.replay`).
    """
    from poptune.storage.journal import JOURNAL_FILE
    from poptune.storage.replay import load_state

    path = os.path.join(dirpath, JOURNAL_FILE)
    if not os.path.isfile(path):
        return None
    state = load_state(path)
    blob = state.searcher_state.blob(dirpath) if state.searcher_state is not None else None
    if blob is None:
        return None
    return cloudpickle.loads(blob), state.created_after_search_state


def write_atomically(dirpath: str, name: str, write: Callable[[str], None]) -> None:
    """``write(path)`` to a hidden temporary file in ``dirpath``, then rename it to ``name``
    (nothing is replaced if ``write`` fails or writes nothing)."""
    tmp = os.path.join(dirpath, f".{uuid.uuid4()}-tmp-{name}")
    try:
        write(tmp)
        if os.path.exists(tmp):
            os.replace(tmp, os.path.join(dirpath, name))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
