"""Execution helpers with Ray Tune's module path (``ray.tune.execution`` → ``poptune.execution``)."""

from poptune.execution.placement_groups import PlacementGroupFactory, resource_dict_to_pg_factory
from poptune.execution.tune_controller import TuneController

__all__ = ["PlacementGroupFactory", "TuneController", "resource_dict_to_pg_factory"]
