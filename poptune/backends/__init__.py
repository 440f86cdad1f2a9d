"""Backends run trials: ``local`` (default, worker processes), ``ray`` and ``dask`` (extras),
``simulated`` (in the driver process, on simulated time)."""

from poptune.backends._base import Backend, LaunchSpec

__all__ = ["Backend", "LaunchSpec", "get_backend"]


#: the names ``TuneConfig(backend=...)`` and ``POPTUNE_BACKEND`` accept
BACKEND_NAMES = ("local", "ray", "dask", "simulated")


def get_backend(name: str | Backend | None, **kwargs: object) -> Backend:
    """Create the backend named ``name`` (when None: env ``POPTUNE_BACKEND``, else ``ray``
    after ``ray.init(address=...)`` named a cluster, else ``local``); a :class:`Backend`
    instance is returned as it is."""
    import os

    from poptune._compat import requested_backend
    from poptune._validation import check_one_of

    if isinstance(name, Backend):
        return name
    name = name or os.environ.get("POPTUNE_BACKEND") or requested_backend() or "local"
    check_one_of("backend", name, BACKEND_NAMES)
    if name == "simulated":
        from poptune.backends.simulated import SimulatedBackend

        return SimulatedBackend(**kwargs)  # type: ignore[arg-type]
    if name == "local":
        from poptune.backends.local import LocalBackend

        return LocalBackend(**kwargs)  # type: ignore[arg-type]
    if name == "ray":
        from poptune.backends.ray import RayBackend

        return RayBackend(**kwargs)  # type: ignore[arg-type]
    from poptune.backends.dask import DaskBackend

    return DaskBackend(**kwargs)  # type: ignore[arg-type]
