import pytest

from poptune.engine.resources import ResourcePool
from poptune.exceptions import ResourceError


def test_fractional_gpus_share_a_device():
    pool = ResourcePool(cpu=4, gpu=2)
    ids = [pool.allocate(str(i), {"cpu": 1, "gpu": 0.5}) for i in range(4)]
    assert ids == [[0], [0], [1], [1]]
    assert pool.allocate("x", {"cpu": 0, "gpu": 0.5}) is None
    pool.release("1")
    assert pool.allocate("y", {"cpu": 0, "gpu": 0.5}) == [0]


def test_whole_gpus_and_cpus():
    pool = ResourcePool(cpu=2, gpu=2)
    assert pool.allocate("a", {"cpu": 1, "gpu": 2}) == [0, 1]
    assert pool.allocate("b", {"cpu": 1, "gpu": 1}) is None
    assert pool.allocate("c", {"cpu": 1, "gpu": 0}) == []
    assert pool.allocate("d", {"cpu": 1, "gpu": 0}) is None


def test_max_concurrent():
    assert ResourcePool(cpu=2, gpu=0).max_concurrent({"cpu": 1, "gpu": 0}) == 2
    assert ResourcePool(cpu=8, gpu=1).max_concurrent({"cpu": 1, "gpu": 0.25}) == 4


def test_impossible_requests_name_the_resource():
    pool = ResourcePool(cpu=2, gpu=0)
    with pytest.raises(ResourceError, match=r"0.25 GPU\(s\) per trial, but 0 GPU"):
        pool.check_fits_ever({"cpu": 1, "gpu": 0.25})
    with pytest.raises(ResourceError, match="3 CPUs per trial"):
        pool.check_fits_ever({"cpu": 3, "gpu": 0})
    with pytest.raises(ResourceError, match="custom resources"):
        pool.check_fits_ever({"cpu": 1, "gpu": 0, "tpu": 1})
