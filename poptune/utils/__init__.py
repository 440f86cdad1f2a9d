"""Utilities (``ray.tune.utils`` counterpart).

Example:
    >>> from poptune.utils import merge_dicts
    >>> merge_dicts({"a": 1}, {"b": 2})
    {'a': 1, 'b': 2}
"""

from poptune.utils.mock_trainable import MyTrainableClass
from poptune.utils.util import (
    UtilMonitor, date_str, deep_update, diagnose_serialization, flatten_dict, merge_dicts, unflattened_lookup,
    wait_for_gpu, warn_if_slow,
)
from poptune.utils.validation import validate_save_restore

__all__ = ["MyTrainableClass", "UtilMonitor", "date_str", "deep_update", "diagnose_serialization",
           "flatten_dict", "merge_dicts", "unflattened_lookup", "validate_save_restore",
           "wait_for_gpu", "warn_if_slow"]
