"""``ray.init`` stand-in: arguments the local engine cannot honour are said to be ignored."""

from __future__ import annotations

import pytest

import poptune as ray


def test_custom_resources_given_to_init_are_said_to_be_ignored():
    try:
        with pytest.warns(UserWarning, match=r"resources=\{'custom': 2\}` is ignored"):
            ray.init(resources={"custom": 2})
    finally:
        ray.shutdown()
