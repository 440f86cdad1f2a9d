"""``validate_save_restore``: check a class trainable's save/restore round trip."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from poptune.exceptions import TuneError


def validate_save_restore(trainable_cls: type, config: dict[str, Any] | None = None,
                          num_gpus: int = 0) -> bool:
    """Train once, save, restore into a fresh instance and train again; raise if the restored
    instance does not continue from the saved iteration.

    Example:
        >>> from poptune.utils import MyTrainableClass
        >>> validate_save_restore(MyTrainableClass, {"width": 2})
        True
    """
    config = config or {}
    first = trainable_cls(config)
    first.train()
    path = first.save(tempfile.mkdtemp(prefix="validate_"))
    try:
        second = trainable_cls(config)
        second.restore(path)
        if second.training_iteration != first.training_iteration:
            raise TuneError(
                f"{trainable_cls.__name__} restored to iteration {second.training_iteration}, "
                f"expected {first.training_iteration}: check save_checkpoint/load_checkpoint"
            )
        second.train()
        first.stop()
        second.stop()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return True
