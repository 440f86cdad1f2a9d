"""``LocalBackend``: any training script as a trial, through :func:`poptune.script`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from poptune._validation import bad_type, bad_value
from poptune.syne_tune.backend._python import CHECKPOINT_KEY, TrialBackend, TrialSetup, _check_bool


class LocalBackend(TrialBackend):
    """Run ``entry_point`` (a Python script, or any executable) once per trial.

    As in Syne Tune, the script gets each hyperparameter as ``--name value`` and a
    checkpoint directory as ``--st_checkpoint_dir DIR`` (restored from on resume and after
    a PBT exploit), and reports with ``Reporter()`` (from ``syne_tune`` or
    ``poptune.syne_tune``: both print ``[tune-metric]: {...}`` lines). It runs in the working
    directory the backend was built in (as Syne Tune's subprocess inherits it). poptune also
    sets ``POPTUNE_CONFIG`` (the config as JSON); stdout and stderr are kept in the trial
    directory (``stdout.txt``, ``stderr.txt``). Built on :func:`poptune.script`.

    Args:
        entry_point: path of the script (``train.py``) or executable.
        rotate_gpus: when poptune's backend has GPUs, give each trial
            ``num_gpus_per_trial`` of them (shared when the workers outnumber them), as
            Syne Tune rotates them; False (or no GPU): the driver's ``CUDA_VISIBLE_DEVICES``.
        num_gpus_per_trial: GPUs per trial with ``rotate_gpus`` (capped at the GPU count).
        gpus_to_use: not supported (poptune picks the GPUs); a list warns and is ignored.
        delete_checkpoints, pass_args_as_json: accepted for compatibility; arguments are
            always ``--name value``.

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
        if isinstance(num_gpus_per_trial, bool) or not isinstance(num_gpus_per_trial, int) or (
                num_gpus_per_trial < 1):
            raise bad_value("num_gpus_per_trial", num_gpus_per_trial, "an integer >= 1")
        if gpus_to_use is not None:
            warnings.warn(f"LocalBackend: `gpus_to_use`={gpus_to_use!r} is ignored: poptune "
                          "assigns the GPUs it detects (set CUDA_VISIBLE_DEVICES and "
                          "POPTUNE_NUM_GPUS for the driver instead)", stacklevel=2)
        self.entry_point = path
        self.delete_checkpoints = delete_checkpoints
        self.rotate_gpus = _check_bool("rotate_gpus", rotate_gpus)
        self.num_gpus_per_trial = num_gpus_per_trial
        self.cwd = os.getcwd()

    def entrypoint_stem(self) -> str:
        return Path(self.entry_point).stem

    def trainable(self, config_space: dict[str, Any], setup: TrialSetup) -> Any:
        from poptune.script_trial import script

        # a script that reports nothing completes (Syne Tune's tuner then raises)
        run_script = script([self.entry_point], cwd=self.cwd, checkpoint_arg=CHECKPOINT_KEY,
                            silence_ok=True)

        def trainable(config: dict[str, Any]) -> None:
            with setup.applied():
                run_script(config)

        trainable.__name__ = trainable.__qualname__ = self.entrypoint_stem()
        return trainable
