"""``tune.track``: the reporting API of Ray Tune 0.7–0.8, kept by Ray 1.x as a deprecated alias.

Tutorials of that time (the "Ray Tune: a Python library for fast hyperparameter tuning at
any scale" post among them) report with ``tune.track.log(mean_accuracy=acc)``. Ray 1.x kept
these calls working with a warning (once per process) and made ``init``, ``shutdown`` and
``get_session`` raise ``DeprecationWarning``; Ray 2 removed the module. poptune keeps Ray
1.x's behaviour, so such a script runs after the import swap.

Example:
    >>> import poptune as tune
    >>> def train(config):
    ...     for step in range(3):
    ...         tune.track.log(mean_accuracy=0.1 * step)  # as tune.report(mean_accuracy=...)
    >>> tune.track.init()
    Traceback (most recent call last):
    ...
    DeprecationWarning: tune.track is deprecated (Ray 0.8); use `tune.report` instead
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from poptune import session

logger = logging.getLogger("poptune")

__all__ = ["log", "trial_dir", "trial_name", "trial_id", "init", "shutdown", "get_session"]

_warned = False


def _deprecated(call: str, instead: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning("tune.track.%s is deprecated (Ray 0.8); use `%s` instead", call, instead)


def _removed(*args: Any, **kwargs: Any) -> NoReturn:
    raise DeprecationWarning("tune.track is deprecated (Ray 0.8); use `tune.report` instead")


def log(**metrics: Any) -> None:
    """Report ``metrics`` for one iteration: ``tune.report(metrics)``."""
    _deprecated("log", "tune.report(metrics)")
    session.report(metrics)


def trial_dir() -> str:
    """The running trial's directory: ``tune.get_context().get_trial_dir()``."""
    _deprecated("trial_dir", "tune.get_context().get_trial_dir()")
    return session.get_context().get_trial_dir()


def trial_name() -> str:
    """The running trial's name: ``tune.get_context().get_trial_name()``."""
    _deprecated("trial_name", "tune.get_context().get_trial_name()")
    return session.get_context().get_trial_name()


def trial_id() -> str:
    """The running trial's id: ``tune.get_context().get_trial_id()``."""
    _deprecated("trial_id", "tune.get_context().get_trial_id()")
    return session.get_context().get_trial_id()


#: a track session of its own outside Tune is gone, as in Ray 1.x: these raise
init = shutdown = get_session = _removed
