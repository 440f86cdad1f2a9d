"""End a process when its parent ends (Linux's ``PR_SET_PDEATHSIG``; elsewhere nothing).

:func:`die_with_parent` serves both the processes the driver starts to run trials (the local
worker, a Dask agent: they call it themselves) and a script trial's subprocess (its
``preexec_fn``). libc's ``prctl`` is resolved when this module is imported, in the parent:
between ``fork`` and ``exec`` nothing is imported or loaded, which could deadlock on a lock
another thread of the parent held at the fork.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., Any] | None:
    """libc's ``prctl`` (None: not Linux, or no ``libc.so.6``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent ends (Linux only); safe as a
    ``subprocess.Popen`` ``preexec_fn``."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
