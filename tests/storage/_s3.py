"""Shared set-up of the S3 tests: credentials and endpoint for a moto server, a fresh bucket,
and a trainable module importable by worker processes."""

from __future__ import annotations

import sys
import time
from typing import Any


def s3_env(monkeypatch: Any, endpoint: str, staging: str) -> dict[str, str]:
    """Point s3fs at ``endpoint`` with dummy credentials; poptune stages under ``staging``."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "POPTUNE_STAGING_DIR": staging}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def fresh_bucket(prefix: str) -> tuple[Any, str]:
    """A new, empty bucket on the configured endpoint and an s3fs filesystem for it."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    bucket = f"{prefix}{time.time_ns()}"
    fs.mkdir(bucket)
    return fs, bucket


def import_source(directory: Any, name: str, source: str) -> Any:
    """Write ``source`` as module ``name`` in ``directory`` (put on sys.path) and import it,
    so trainables defined there pickle by reference. Remove ``directory`` from sys.path after."""
    (directory / f"{name}.py").write_text(source)
    sys.path.insert(0, str(directory))
    sys.modules.pop(name, None)
    return __import__(name)
