"""One :class:`~poptune.exceptions.StorageError` for a failed write of the experiment's files.

A full disk used to surface as bare ``OSError: [Errno 28]`` (several of them, chained), naming
no file. :func:`write_failed` names the file, what was being saved and what to do; the
``OSError`` stays its ``__cause__``.

Example:
    >>> import errno
    >>> err = write_failed(OSError(errno.ENOSPC, "No space left on device"),
    ...                    "/exp/journal.jsonl", "2 results")
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    could not save 2 results to /exp/journal.jsonl: [Errno 28] No space left on device. Free
    space on that disk, then resume the experiment with Tuner.restore("/exp", trainable=...):
    everything committed before this write is kept.
    >>> describe_records([b'{"e":"result","t":"a"}', b'{"e":"result","t":"b"}',
    ...                   b'{"e":"ckpt","t":"a"}'])
    'the journal records of 2 results and 1 checkpoint (trials a, b)'
"""

from __future__ import annotations

import errno
import json
import os

from poptune.exceptions import StorageError

_WORDS = {"exp": "experiment header", "trial": "new trial", "result": "result",
          "ckpt": "checkpoint", "ckpt_del": "checkpoint deletion", "status": "status change",
          "config": "config change", "resources": "resources change", "rollback": "rollback",
          "search": "searcher state", "sched": "scheduler state", "end": "experiment end"}


def write_failed(exc: OSError, path: str, what: str) -> StorageError:
    """The error for ``exc`` raised while saving ``what`` to ``path`` (raise it ``from exc``)."""
    reason = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc)
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        exp = os.path.dirname(path) if os.path.basename(path) == "journal.jsonl" else None
        resume = (f'Tuner.restore("{exp}", trainable=...)' if exp
                  else "Tuner.restore(<experiment dir>, trainable=...)")
        hint = (f". Free space on that disk, then resume the experiment with {resume}: "
                "everything committed before this write is kept")
    err = StorageError(f"could not save {what} to {path}: {reason}{hint}.")
    err.path = path  # type: ignore[attr-defined]  # (OSError's own fields would reword it)
    return err


def describe_records(lines: list[bytes]) -> str:
    """What a journal commit group holds: ``"the journal records of 2 results and 1
    checkpoint (trials a, b)"``."""
    counts: dict[str, int] = {}
    trials: dict[str, None] = {}
    for line in lines:
        try:
            d = json.loads(line)
        except ValueError:
            continue
        kind = str(d.get("e"))
        counts[kind] = counts.get(kind, 0) + 1
        if isinstance(d.get("t"), str):
            trials[d["t"]] = None
        elif isinstance(d.get("id"), str):
            trials[d["id"]] = None
    parts = []
    for kind, n in counts.items():
        word = _WORDS.get(kind, f"{kind!r} record")
        parts.append(f"{n} {word}{'s' if n != 1 and not word.endswith('state') else ''}")
    text = (", ".join(parts[:-1]) + " and " + parts[-1]) if len(parts) > 1 else "".join(parts)
    names = list(trials)
    who = ""
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        who = f" (trial{'s' if len(names) > 1 else ''} {shown})"
    return f"the journal records of {text or 'nothing'}{who}"
