"""PBT policy logs: ``pbt_global.txt`` and ``pbt_policy_{trial_id}.txt`` in Ray Tune's format.

Every exploit appends one JSON list per line::

    [target_tag, clone_tag, target_iteration, clone_iteration, clone_config, new_config]

to ``pbt_global.txt`` and to the target's ``pbt_policy_{target}.txt``. Before appending, the
donor's policy file is copied over the target's, so a policy file always holds the lineage of
the model its trial carries: :class:`~poptune.schedulers.PopulationBasedTrainingReplay` walks
that chain back. Files written by Ray Tune and by poptune are interchangeable.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> write_exploit_logs(d, "t_00001", "t_00000",
    ...                    ["1_lr=0.1", "0_lr=0.2", 5, 5, {"lr": 0.2}, {"lr": 0.24}])
    >>> read_policy_file(policy_file_path(d, "t_00001"))
    [['1_lr=0.1', '0_lr=0.2', 5, 5, {'lr': 0.2}, {'lr': 0.24}]]
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
from typing import Any

__all__ = [
    "GLOBAL_LOG",
    "SafeFallbackEncoder",
    "policy_file_path",
    "read_policy_file",
    "write_exploit_logs",
]

#: name of the experiment-wide exploit log
GLOBAL_LOG = "pbt_global.txt"


class SafeFallbackEncoder(json.JSONEncoder):
    """JSON encoder that never fails: numpy values become numbers/lists, NaN becomes ``null``
    when wrapped in a numpy scalar, anything else its ``str()``."""

    def __init__(self, nan_str: str = "null", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nan_str = nan_str

    def default(self, o: Any) -> Any:
        try:
            if hasattr(o, "tolist") and type(o).__module__.split(".")[0] == "numpy":
                value = o.tolist()  # ndarray -> list, numpy scalar -> python scalar
                if isinstance(value, float) and math.isnan(value):
                    return self.nan_str
                return value
            if isinstance(o, numbers.Integral):
                return int(o)
            if isinstance(o, numbers.Number):
                return float(o)  # type: ignore[arg-type]
            return super().default(o)
        except Exception:  # noqa: BLE001 - a log line must never fail
            return str(o)


def policy_file_path(experiment_dir: str, trial_id: str) -> str:
    """Path of ``pbt_policy_{trial_id}.txt`` in ``experiment_dir``."""
    return os.path.join(experiment_dir, f"pbt_policy_{trial_id}.txt")


def format_policy_line(line: list[Any]) -> str:
    """One policy-log line, newline included."""
    return json.dumps(line, cls=SafeFallbackEncoder) + "\n"


def write_exploit_logs(
    experiment_dir: str, target_trial_id: str, donor_trial_id: str, line: list[Any]
) -> None:
    """Record one exploit in ``pbt_global.txt`` and in the target's policy file.

    The donor's policy file (if any) first replaces the target's, so the target inherits the
    donor's lineage; then ``line`` is appended to both files.

    Args:
        experiment_dir: the experiment directory (created if missing).
        target_trial_id: the trial that was restarted from the donor.
        donor_trial_id: the trial whose checkpoint it restored.
        line: ``[target_tag, donor_tag, target_iteration, donor_iteration, donor_config,
            new_config]`` (see :attr:`poptune.schedulers.Exploit.log_line`).
    """
    os.makedirs(experiment_dir, exist_ok=True)
    text = format_policy_line(line)
    with open(os.path.join(experiment_dir, GLOBAL_LOG), "a", encoding="utf-8") as f:
        f.write(text)
    target = policy_file_path(experiment_dir, target_trial_id)
    donor = policy_file_path(experiment_dir, donor_trial_id)
    if donor_trial_id != target_trial_id and os.path.exists(donor):
        shutil.copyfile(donor, target)
    with open(target, "a", encoding="utf-8") as f:
        f.write(text)


def read_policy_file(path: str) -> list[list[Any]]:
    """Parse a policy (or global) log: one JSON list per non-empty line.

    Raises:
        ValueError: a line is not a JSON list of six items, or ``path`` is a directory.
    """
    rows: list[list[Any]] = []
    if os.path.isdir(os.path.expanduser(path)):
        raise ValueError(f"Could not read PBT policy file {path}: it is a directory, not a "
                         "policy file (pbt_global.txt or pbt_policy_<trial_id>.txt)")
    with open(os.path.expanduser(path), encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                raise ValueError(
                    f"Could not read PBT policy file {path}: line {number} is not JSON"
                ) from None
            if not isinstance(row, list) or len(row) != 6:
                raise ValueError(
                    f"Could not read PBT policy file {path}: line {number} must be a list "
                    "[target_tag, clone_tag, target_iteration, clone_iteration, clone_config, "
                    f"new_config], got {raw.strip()[:200]}"
                )
            rows.append(row)
    return rows
