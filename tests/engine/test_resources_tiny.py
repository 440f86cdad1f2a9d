"""Tiny amounts of a resource: the pool's epsilon absorbs float sums where it HAS some of a
resource, but any positive amount of a resource it has none of can never fit."""

import pytest

from poptune.engine.resources import ResourcePool
from poptune.exceptions import ResourceError


@pytest.mark.parametrize("gpu", [1e-10, 0.5])
def test_a_pool_without_gpus_refuses_any_positive_gpu_request_at_once(gpu):
    pool = ResourcePool(cpu=2, gpu=0)
    with pytest.raises(ResourceError, match=rf"`resources_per_trial` asks for {gpu:g} GPU\(s\) "
                                            r"per trial, but 0 GPU\(s\) are available on this "
                                            "machine; request 0 GPUs"):
        pool.check_fits_ever({"cpu": 1, "gpu": gpu})
    assert not pool.fits_total({"cpu": 1, "gpu": gpu})


def test_a_pool_with_gpus_keeps_the_epsilon_for_float_sums():
    pool = ResourcePool(cpu=2, gpu=1)
    for gpu in (1e-10, 0.1 + 0.2 + 0.7, 1 + 1e-12):  # the last two: 1 as a float sum
        pool.check_fits_ever({"cpu": 1, "gpu": gpu})
        assert pool.fits_total({"cpu": 1, "gpu": gpu})
    pool.check_fits_ever({"cpu": 1, "gpu": 0})
    with pytest.raises(ResourceError, match=r"asks for 1.001 GPU\(s\) per trial"):
        pool.check_fits_ever({"cpu": 1, "gpu": 1.001})


def test_a_tiny_custom_resource_the_pool_lacks_is_refused_and_one_it_has_is_not():
    pool = ResourcePool(cpu=2, gpu=0, custom={"accel": 2, "none": 0}, where="the Ray cluster")
    for key in ("tpu", "none"):  # not offered, or offered as 0
        with pytest.raises(ResourceError, match=rf"custom resources \{{'{key}': 1e-10\}}, which "
                                                "the Ray cluster does not offer"):
            pool.check_fits_ever({"cpu": 1, key: 1e-10})
        assert not pool.fits_total({"cpu": 1, key: 1e-10})
    pool.check_fits_ever({"cpu": 1, "accel": 1e-10})
    pool.check_fits_ever({"cpu": 1, "accel": 2 + 1e-12})
    with pytest.raises(ResourceError, match=r"custom resources \{'tpu': 1e-10\}, which this "
                                            "machine does not offer"):
        ResourcePool(cpu=2, gpu=0).check_fits_ever({"cpu": 1, "tpu": 1e-10})


def test_a_growable_pool_without_gpus_waits_for_a_tiny_gpu_request():
    """A cluster may still gain a GPU node: no error, but it does not fit now."""
    pool = ResourcePool(cpu=2, gpu=0, where="the Ray cluster", growable=True)
    pool.check_fits_ever({"cpu": 1, "gpu": 1e-10})
    assert not pool.fits_total({"cpu": 1, "gpu": 1e-10})
    pool.update(cpu=2, gpu=1)
    assert pool.fits_total({"cpu": 1, "gpu": 1e-10})
