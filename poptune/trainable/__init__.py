"""Trainables: the class API (``Trainable``) and wrappers for function trainables."""

from poptune.trainable._trainable import Trainable
from poptune.trainable._util import with_parameters, with_resources

__all__ = ["Trainable", "with_parameters", "with_resources"]
