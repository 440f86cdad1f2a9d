"""``LocalBackend``: any training script as a trial, through :func:`poptune.script`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.syne_tune.backend._python import CHECKPOINT_KEY, TrialBackend


class LocalBackend(TrialBackend):
    """Run ``entry_point`` (a Python script, or any executable) once per trial.

    As in Syne Tune, the script gets each hyperparameter as ``--name value`` and a
    checkpoint directory as ``--st_checkpoint_dir DIR`` (restored from on resume and after
    a PBT exploit), and reports with ``Reporter()`` (from ``syne_tune`` or
    ``poptune.syne_tune``: both print ``[tune-metric]: {...}`` lines). poptune also sets
    ``POPTUNE_CONFIG`` (the config as JSON); stdout and stderr are kept in the trial
    directory. Built on :func:`poptune.script`.

    Args:
        entry_point: path of the script (``train.py``) or executable.
        delete_checkpoints, pass_args_as_json, rotate_gpus, num_gpus_per_trial,
        gpus_to_use: accepted for compatibility; arguments are always ``--name value``.

    Example:
        >>> backend = LocalBackend(entry_point="train.py")  # doctest: +SKIP
    """

    def __init__(self, entry_point: str, delete_checkpoints: bool = False,
                 pass_args_as_json: bool = False, rotate_gpus: bool = True,
                 num_gpus_per_trial: int = 1, gpus_to_use: list[int] | None = None) -> None:
        if not isinstance(entry_point, (str, os.PathLike)):
            raise bad_type("entry_point", entry_point, "the path of a training script")
        path = os.path.abspath(os.fspath(entry_point))
        if not os.path.isfile(path):
            raise bad_value("entry_point", entry_point, "an existing script file")
        self.entry_point = path
        self.delete_checkpoints = delete_checkpoints

    def entrypoint_stem(self) -> str:
        return Path(self.entry_point).stem

    def trainable(self, config_space: dict[str, Any]) -> Any:
        from poptune.script_trial import script

        return script([self.entry_point], cwd=os.path.dirname(self.entry_point),
                      checkpoint_arg=CHECKPOINT_KEY)
