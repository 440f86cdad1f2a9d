"""``poptune.Checkpoint`` details as Ray's."""

from __future__ import annotations

from poptune import Checkpoint


def test_repr_names_the_filesystem_as_ray_does(tmp_path):
    assert repr(Checkpoint.from_directory(str(tmp_path))) == (
        f"Checkpoint(filesystem=local, path={tmp_path})")
    assert repr(Checkpoint("memory://bucket/x")) == (
        "Checkpoint(filesystem=memory, path=memory://bucket/x)")
