from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _syne_folder(tmp_path, monkeypatch):
    """Experiments go to a tmp dir (Syne Tune's own SYNETUNE_FOLDER), quietly."""
    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path / "syne-tune"))
    monkeypatch.setenv("POPTUNE_SYNE_VERBOSE", "0")
    monkeypatch.setenv("POPTUNE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "syne-tune"
