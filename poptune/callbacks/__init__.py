"""Callbacks: hooks the runner calls as an experiment progresses."""

from poptune.callbacks._base import Callback

__all__ = ["Callback"]
