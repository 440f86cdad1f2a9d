"""``syne_tune.backend.python_backend`` on poptune."""

from poptune.syne_tune.backend._python import PythonBackend

__all__ = ["PythonBackend"]
