"""Per-trial checkpoint bookkeeping with reference counting.

``num_to_keep`` limits how many checkpoints a trial keeps (best by score attribute, or most
recent), but a checkpoint is never deleted while anything may still restore from it: the
trial's latest checkpoint, a checkpoint a pending trial will start from (PBT donor, resume),
and whatever the scheduler pins.

Example:
    >>> m = TrialCheckpoints(num_to_keep=1)
    >>> m.add("/x/checkpoint_000000", {"acc": 0.1, "training_iteration": 1})
    []
    >>> m.add("/x/checkpoint_000001", {"acc": 0.2, "training_iteration": 2})
    ['/x/checkpoint_000000']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from poptune._dicts import nested_get


@dataclass(slots=True)
class CheckpointRecord:
    path: str
    metrics: dict[str, Any]
    order: int


@dataclass(slots=True)
class TrialCheckpoints:
    """The checkpoints of one trial, oldest first."""

    num_to_keep: int | None = None
    score_attribute: str | None = None
    score_order: str = "max"
    records: list[CheckpointRecord] = field(default_factory=list)
    is_pinned: Callable[[str], bool] = field(default=lambda path: False, repr=False)
    _counter: int = 0

    @property
    def latest(self) -> CheckpointRecord | None:
        return self.records[-1] if self.records else None

    def add(self, path: str, metrics: dict[str, Any]) -> list[str]:
        """Record a new checkpoint; return the paths that may now be deleted."""
        self._counter += 1
        self.records.append(CheckpointRecord(path, dict(metrics), self._counter))
        return self.collect()

    def _score(self, rec: CheckpointRecord) -> float:
        if self.score_attribute is None:
            return float(rec.order)
        value = nested_get(rec.metrics, self.score_attribute)
        try:
            v = float(value)
        except (TypeError, ValueError):
            return -math.inf
        if math.isnan(v):
            return -math.inf
        return v if self.score_order == "max" else -v

    def best(self) -> list[CheckpointRecord]:
        """Records ranked best first."""
        return sorted(self.records, key=lambda r: (self._score(r), r.order), reverse=True)

    def collect(self) -> list[str]:
        """Drop records beyond ``num_to_keep`` that nothing may restore from."""
        if self.num_to_keep is None or len(self.records) <= self.num_to_keep:
            return []
        keep = {id(r) for r in self.best()[: self.num_to_keep]}
        latest = self.latest
        deleted = []
        survivors = []
        for rec in self.records:
            if id(rec) in keep or rec is latest or self.is_pinned(rec.path):
                survivors.append(rec)
            else:
                deleted.append(rec.path)
        self.records = survivors
        return deleted

    def remove_after(self, iteration: int) -> list[str]:
        """Forget checkpoints taken after ``iteration`` (a trial rolled back); return paths."""
        gone = [r.path for r in self.records if r.metrics.get("training_iteration", 0) > iteration]
        self.records = [r for r in self.records if r.metrics.get("training_iteration", 0) <= iteration]
        return gone
