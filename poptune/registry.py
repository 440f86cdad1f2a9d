"""Named trainables and environments (``ray.tune.registry`` → ``poptune.registry``).

``register_trainable(name, fn_or_class)`` lets a script pass the name wherever a trainable is
accepted: ``tune.Tuner("name")``, ``tune.run("name")``, ``Experiment(name, run="name")``,
``Tuner.restore(path, "name")``. ``register_env(name, creator)`` keeps an environment creator
under a name for code that looks it up (RLlib-style ``config={"env": "name"}``).

The registry lives in the driver process: the name is turned into the trainable there, and
workers receive the trainable itself, so nothing needs to be registered in each worker (Ray
keeps its registry in the cluster's key-value store for the same reason).

Example:
    >>> import poptune as tune
    >>> def objective(config):
    ...     tune.report({"score": config["x"]})
    >>> tune.register_trainable("objective", objective)
    >>> get_trainable_cls("objective") is objective
    True
    >>> get_trainable_cls("nope")
    Traceback (most recent call last):
    ...
    poptune.exceptions.TuneError: Unknown trainable: 'nope'; registered trainables: ['objective']
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from poptune._validation import bad_type
from poptune.exceptions import TuneError

__all__ = [
    "TRAINABLE_CLASS", "ENV_CREATOR", "register_trainable", "register_env", "get_trainable_cls",
    "validate_trainable", "is_function_trainable", "get_env_creator", "resolve_trainable",
    "construct_accepting",
]

#: the registry's categories, with Ray's names
TRAINABLE_CLASS = "trainable_class"
ENV_CREATOR = "env_creator"

_lock = threading.Lock()
_registry: dict[str, dict[str, Any]] = {TRAINABLE_CLASS: {}, ENV_CREATOR: {}}


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise bad_type("name", name, "a non-empty str")


def register_trainable(name: str, trainable: Callable[..., Any] | type,
                       warn: bool = True) -> None:
    """Register a trainable function or ``Trainable`` subclass under ``name``.

    Registering a name again replaces the earlier trainable, as in Ray.

    Args:
        name: the name to pass instead of the trainable.
        trainable: a function ``train(config)`` or a :class:`~poptune.Trainable` subclass.
        warn: accepted for compatibility (Ray's warnings about old function signatures).

    Raises:
        TypeError: ``trainable`` is neither callable nor a ``Trainable`` subclass.
    """
    from poptune.trainable import Trainable

    _check_name(name)
    if inspect.isclass(trainable):
        if not issubclass(trainable, Trainable):
            raise bad_type("trainable", trainable,
                           "a function train(config) or a poptune.Trainable subclass")
    elif not callable(trainable):
        raise bad_type("trainable", trainable,
                       "a function train(config) or a poptune.Trainable subclass")
    with _lock:
        _registry[TRAINABLE_CLASS][name] = trainable


def register_env(name: str, env_creator: Callable[..., Any]) -> None:
    """Register an environment creator (``env_creator(env_config) -> env``) under ``name``.

    Example:
        >>> register_env("corridor", lambda env_config: ("corridor", env_config))
        >>> get_env_creator("corridor")({"length": 5})
        ('corridor', {'length': 5})
    """
    _check_name(name)
    if not callable(env_creator):
        raise bad_type("env_creator", env_creator, "a callable(env_config) -> env")
    with _lock:
        _registry[ENV_CREATOR][name] = env_creator


def _get(category: str, name: str, what: str) -> Any:
    with _lock:
        entries = _registry[category]
        if name not in entries:
            raise TuneError(f"Unknown {what}: {name!r}; registered {what}s: {sorted(entries)}")
        return entries[name]


def get_trainable_cls(trainable_name: str) -> Any:
    """The trainable registered as ``trainable_name`` (``TuneError`` if there is none)."""
    return _get(TRAINABLE_CLASS, trainable_name, "trainable")


def validate_trainable(trainable_name: str) -> None:
    """Raise ``TuneError`` unless ``trainable_name`` is registered."""
    get_trainable_cls(trainable_name)


def get_env_creator(env_name: str) -> Callable[..., Any]:
    """The creator registered as ``env_name`` (``TuneError`` if there is none)."""
    return _get(ENV_CREATOR, env_name, "env")  # type: ignore[no-any-return]


def is_function_trainable(trainable: Any) -> bool:
    """True for a function trainable (or the name of one), False for a class."""
    if isinstance(trainable, str):
        trainable = get_trainable_cls(trainable)
    return callable(trainable) and not inspect.isclass(trainable)


def resolve_trainable(trainable: Any) -> tuple[Any, str | None]:
    """``(trainable, registered name)`` for a name; ``(trainable, None)`` for anything else."""
    if isinstance(trainable, str):
        return get_trainable_cls(trainable), trainable
    return trainable, None


def construct_accepting(cls: Any, kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)`` keeping only the keywords its constructor accepts (all of them when
    it takes ``**kwargs``): how Ray's ``create_scheduler``/``create_searcher`` build."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return cls(**kwargs)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**kwargs)
    return cls(**{k: v for k, v in kwargs.items() if k in params})


def _unregister_all() -> None:
    """Forget every registration (tests)."""
    with _lock:
        for entries in _registry.values():
            entries.clear()
