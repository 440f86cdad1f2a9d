"""Reading what an experiment produced: :class:`Result` per trial, :class:`ResultGrid` for all."""

from poptune.results.result import Result
from poptune.results.result_grid import ResultGrid

__all__ = ["Result", "ResultGrid"]
