"""Utilities (``ray.tune.utils`` counterpart)."""

from poptune.utils.mock_trainable import MyTrainableClass
from poptune.utils.validation import validate_save_restore

__all__ = ["MyTrainableClass", "validate_save_restore"]
