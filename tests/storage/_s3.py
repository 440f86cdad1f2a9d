"""Shared set-up of the S3 tests: credentials and endpoint for a moto server, a fresh bucket,
and a trainable module importable by worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

from tests._net import free_port, wait_for_port

BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A moto S3 server on loopback for the module's tests; its URL."""
    port = free_port()
    proc = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, 30, poll=0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


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
