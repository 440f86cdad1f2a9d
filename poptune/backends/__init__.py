"""Backends run trials: ``local`` (default, worker processes), ``ray`` and ``dask`` (extras)."""

from poptune.backends._base import Backend, LaunchSpec

__all__ = ["Backend", "LaunchSpec", "get_backend"]


def get_backend(name: str | None, **kwargs: object) -> Backend:
    """Create the backend named ``name`` (env ``POPTUNE_BACKEND`` when None)."""
    import os

    from poptune._validation import check_one_of

    name = name or os.environ.get("POPTUNE_BACKEND") or "local"
    check_one_of("backend", name, ("local", "ray", "dask"))
    if name == "local":
        from poptune.backends.local import LocalBackend

        return LocalBackend(**kwargs)  # type: ignore[arg-type]
    if name == "ray":
        from poptune.backends.ray import RayBackend

        return RayBackend(**kwargs)  # type: ignore[arg-type]
    from poptune.backends.dask import DaskBackend

    return DaskBackend(**kwargs)  # type: ignore[arg-type]
