"""Ax's clients behind one small interface, for :class:`~poptune.search.ax.AxSearch`.

``ax.api.Client`` (Ax 1.x) and the deprecated ``AxClient`` (removed in Ax 1.4) differ in how
experiments are created, trials asked for, completed and saved; :class:`_ApiClient` and
:class:`_LegacyClient` give AxSearch the same few methods over both. Ax is imported lazily,
with the install hint when it is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from poptune._imports import require
from poptune._validation import bad_type
from poptune.exceptions import TuneConfigError

_quiet_done = False
_PLAIN_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def _plain_type(values: list[Any]) -> str | None:
    """Ax's parameter type if ``values`` are distinct plain values of one type, else None."""
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or next(iter(kinds)) not in _PLAIN_TYPES:
        return None
    if len(set(values)) != len(values):
        return None
    return _PLAIN_TYPES[next(iter(kinds))]


def _ax() -> Any:
    """Import Ax (with the install hint if missing); its INFO messages are quieted once."""
    global _quiet_done
    module = require("ax", "AxSearch")
    if not _quiet_done:
        _quiet_done = True
        _set_ax_log_level(logging.WARNING)
    return module


def _set_ax_log_level(level: int) -> None:
    # Ax logs through one handler on its root logger "ax" (which does not propagate)
    for handler in logging.getLogger("ax").handlers:
        handler.setLevel(level)


def _api() -> Any:
    _ax()
    return importlib.import_module("ax.api")


def _exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(Ax's "not now" exceptions, Ax's "never again" exceptions)."""
    core = importlib.import_module("ax.exceptions.core")
    gen = importlib.import_module("ax.exceptions.generation_strategy")
    wait = (core.DataRequiredError, gen.MaxParallelismReachedException)
    done = (core.OptimizationComplete,)  # GenerationStrategyCompleted, OptimizationShouldStop
    return wait, done


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch and BLAS thread while Ax fits its model: the small Gaussian-process fits are
    several times faster that way than with threads contending for cores the trials use."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - scikit-learn (an Ax dependency) brings it
            yield
        else:
            with threadpool_limits(limits=1, user_api="blas"):
                yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- the clients
class _ApiClient:
    """Ax's ``ax.api.Client``."""

    kind = "api"

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def new(cls, kwargs: dict[str, Any]) -> _ApiClient:
        api = _api()
        return cls(api.Client(storage_config=kwargs.get("storage_config"),
                              random_seed=kwargs.get("random_seed")))

    def experiment(self) -> Any:
        return getattr(self.client, "_maybe_experiment", None)

    def create(self, params: list[dict[str, Any]], constraints: list[str] | None, metric: str,
               mode: str, outcome_constraints: list[str] | None, kwargs: dict[str, Any]) -> None:
        api = _api()
        configs = []
        for p in params:
            if p["type"] == "range":
                low, high = p["bounds"]
                kind = p.get("value_type") or (
                    "int" if all(type(b) is int for b in (low, high)) else "float")
                configs.append(api.RangeParameterConfig(
                    name=p["name"], bounds=(low, high) if kind == "int" else (float(low),
                                                                             float(high)),
                    parameter_type=kind, scaling="log" if p.get("log_scale") else "linear"))
            else:
                values = list(p["values"])
                configs.append(api.ChoiceParameterConfig(
                    name=p["name"], values=values,
                    parameter_type=p.get("value_type") or _plain_type(values) or "str",
                    is_ordered=p.get("is_ordered")))
        self.client.configure_experiment(parameters=configs,
                                         parameter_constraints=constraints or None)
        objective = f"-{metric}" if mode == "min" else metric
        self.client.configure_optimization(objective=objective,
                                           outcome_constraints=outcome_constraints or None)
        if kwargs.get("generation_strategy") is not None:
            self.client.set_generation_strategy(kwargs["generation_strategy"])
        else:
            options = {k: v for k, v in kwargs.items() if k in _gs_options()}
            if kwargs.get("torch_device") is not None:
                options["torch_device"] = str(kwargs["torch_device"])
            if options:
                self.client.configure_generation_strategy(**options)

    def next(self) -> tuple[int, dict[str, Any]] | None:
        got = self.client.get_next_trials(max_trials=1)
        return next(iter(got.items()), None)

    def attach(self, parameters: dict[str, Any]) -> int:
        return int(self.client.attach_trial(parameters=parameters))

    def complete(self, index: int, values: dict[str, float]) -> None:
        self.client.complete_trial(trial_index=index, raw_data=values)

    def abandon(self, index: int, reason: str) -> None:
        self.client.mark_trial_abandoned(trial_index=index)

    def dump(self) -> dict[str, Any]:
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            self.client.save_to_json_file(path)
            with open(path) as f:
                snapshot = f.read()
        finally:
            os.unlink(path)
        return {"kind": self.kind, "snapshot": snapshot,
                "random_seed": getattr(self.client, "_random_seed", None),
                "storage_config": getattr(self.client, "_storage_config", None)}

    @classmethod
    def load(cls, dumped: dict[str, Any]) -> _ApiClient:
        api = _api()
        fd, path = tempfile.mkstemp(suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(dumped["snapshot"])
            client = api.Client.load_from_json_file(path,
                                                    storage_config=dumped.get("storage_config"))
        finally:
            os.unlink(path)
        client._random_seed = dumped.get("random_seed")  # not part of Ax's snapshot
        return cls(client)


class _LegacyClient(_ApiClient):
    """Ax's deprecated ``AxClient`` (Ray's client), when a user passes one."""

    kind = "legacy"

    def experiment(self) -> Any:
        return getattr(self.client, "_experiment", None)

    def create(self, params: list[dict[str, Any]], constraints: list[str] | None, metric: str,
               mode: str, outcome_constraints: list[str] | None, kwargs: dict[str, Any]) -> None:
        instantiation = importlib.import_module("ax.service.utils.instantiation")
        self.client.create_experiment(
            parameters=params,
            objectives={metric: instantiation.ObjectiveProperties(minimize=mode == "min")},
            parameter_constraints=constraints or None,
            outcome_constraints=outcome_constraints or None)

    def next(self) -> tuple[int, dict[str, Any]] | None:
        parameters, index = self.client.get_next_trial()
        return index, parameters

    def attach(self, parameters: dict[str, Any]) -> int:
        return int(self.client.attach_trial(parameters=parameters)[1])

    def complete(self, index: int, values: dict[str, float]) -> None:
        self.client.complete_trial(trial_index=index,
                                   raw_data={k: (v, None) for k, v in values.items()})

    def abandon(self, index: int, reason: str) -> None:
        self.client.abandon_trial(trial_index=index, reason=reason)

    def dump(self) -> dict[str, Any]:
        return {"kind": self.kind, "snapshot": json.dumps(self.client.to_json_snapshot())}

    @classmethod
    def load(cls, dumped: dict[str, Any]) -> _ApiClient:
        service = importlib.import_module("ax.service.ax_client")
        return cls(service.AxClient.from_json_snapshot(json.loads(dumped["snapshot"])))


def _gs_options() -> set[str]:
    """The options of ``Client.configure_generation_strategy`` in the installed Ax."""
    params = inspect.signature(_api().Client.configure_generation_strategy).parameters
    return {name for name in params if name != "self"}


def _wrap(client: Any) -> _ApiClient:
    if isinstance(client, _api().Client):
        return _ApiClient(client)
    try:
        legacy = getattr(importlib.import_module("ax.service.ax_client"), "AxClient", None)
    except ImportError:  # an Ax without the deprecated AxClient
        legacy = None
    if legacy is not None and isinstance(client, legacy):
        return _LegacyClient(client)
    raise bad_type("ax_client", client, "an ax.api.Client (or an ax AxClient) or None")


def _objective(experiment: Any) -> tuple[str, str]:
    """The metric and mode of an Ax experiment with one objective."""
    config = experiment.optimization_config
    if config is None:
        raise TuneConfigError("the experiment of `ax_client` has no optimization config; call "
                              "its configure_optimization (or create_experiment with "
                              "objectives) first")
    objective = config.objective
    names = list(objective.metric_names)
    if len(names) != 1 or getattr(objective, "is_multi_objective", False):
        raise TuneConfigError(
            f"the experiment of `ax_client` must have one objective metric for AxSearch, got "
            f"the objective {getattr(objective, 'expression', objective)!s}")
    return names[0], "min" if objective.minimize else "max"
