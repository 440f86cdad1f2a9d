"""Starlette's ``TestClient`` for the dashboard tests, imported once: the modules that use it
are skipped when the ``dashboard`` extra (Starlette) or httpx is missing."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the `dashboard` extra")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (dev extra)")

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

#: the base URL a loopback request comes from (the Host check lets it through)
LOCAL = "http://127.0.0.1"

__all__ = ["LOCAL", "TestClient"]
