"""``ray.air.session``: Ray 2.0–2.6's reporting API for Tune trainables.

``session.report(metrics, checkpoint=...)`` and ``session.get_checkpoint()`` are
:func:`poptune.report` and :func:`poptune.get_checkpoint`; like Ray 2.60, they warn inside a
trial that ``tune.report``/``tune.get_checkpoint`` are the names to use. The getters return
the running trial's facts, as :func:`poptune.get_context`'s do. Outside a trial every function
warns once and returns ``None`` (``get_world_size``: 1, the ranks: 0), as in Ray.

Example:
    >>> from poptune.air import session
    >>> def trainable(config):
    ...     for step in range(3):
    ...         session.report({"loss": config["lr"] / (step + 1)})
    ...     return {"trial": session.get_trial_name()}
"""

from __future__ import annotations

from typing import Any, Callable

from poptune import session as _session
from poptune.checkpoint import Checkpoint
from poptune.train import stand_ins, use_tune_instead

__all__ = ["get_checkpoint", "get_experiment_name", "get_local_rank", "get_local_world_size",
           "get_node_rank", "get_trial_dir", "get_trial_id", "get_trial_name",
           "get_trial_resources", "get_world_rank", "get_world_size", "report"]

#: Ray Train's session functions (a trainer's datasets and metadata)
globals().update(stand_ins("session", ["get_dataset_shard", "get_metadata"]))

_AS_RAY_260 = "as Ray 2.60 warns too"


def report(metrics: dict[str, Any], *, checkpoint: Checkpoint | None = None) -> None:
    """:func:`poptune.report` (warns inside a trial: use ``tune.report``)."""
    use_tune_instead("session.report", "report", _AS_RAY_260)
    _session.report(metrics, checkpoint=checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """:func:`poptune.get_checkpoint` (warns inside a trial: use ``tune.get_checkpoint``)."""
    use_tune_instead("session.get_checkpoint", "get_checkpoint", _AS_RAY_260)
    return _session.get_checkpoint()


def _getter(name: str, outside: Any = None) -> Callable[[], Any]:
    """``session.<name>()``: the running trial's ``get_context().<name>()``; outside a trial,
    a warning (once) and ``outside``."""

    def getter() -> Any:
        if _session.current_session() is None:
            _session._outside(name, outside)
            return outside
        return getattr(_session.get_context(), name)()

    getter.__name__ = getter.__qualname__ = name
    getter.__doc__ = f"The running trial's ``{name}()`` (:class:`poptune.TuneContext`)."
    return getter


get_experiment_name = _getter("get_experiment_name")
get_trial_name = _getter("get_trial_name")
get_trial_id = _getter("get_trial_id")
get_trial_dir = _getter("get_trial_dir")
get_trial_resources = _getter("get_trial_resources")
get_world_size = _getter("get_world_size", 1)
get_world_rank = _getter("get_world_rank", 0)
get_local_rank = _getter("get_local_rank", 0)
get_local_world_size = _getter("get_local_world_size", 0)
get_node_rank = _getter("get_node_rank", 0)
