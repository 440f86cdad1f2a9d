"""A trial's launch message: what a worker receives is what the driver sent."""

from __future__ import annotations

import dataclasses
import pickle

import cloudpickle

from poptune.backends._base import LaunchSpec


def _spec() -> LaunchSpec:
    # every field away from its default, so a value put in the wrong place shows
    return LaunchSpec(
        trial_id="t_00001", trial_name="f_t_00001", trial_dir="/r/exp/f_t_00001",
        experiment_name="exp", experiment_dir="/r/exp", config_blob=b"\x80\x05cfg",
        resources={"cpu": 2.0, "gpu": 0.5}, restore_path="/r/exp/f_t_00001/checkpoint_000001",
        start_iteration=7, time_total_offset=12.5, next_checkpoint_index=3,
        checkpoint_frequency=2, checkpoint_at_end=True, chdir=False,
        env={"CUDA_VISIBLE_DEVICES": "0"}, storage_trial_dir="s3://bucket/exp/f_t_00001",
        answered=False, reuse_actors=True, timesteps_total=40, episodes_total=3.0,
        log_to_file=("out.txt", "err.txt"),
    )


def test_a_launch_spec_round_trips_through_pickle_and_cloudpickle_with_every_field() -> None:
    spec = _spec()
    assert pickle.loads(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)) == spec
    assert cloudpickle.loads(cloudpickle.dumps(spec)) == spec  # the Ray and Dask agents


def test_a_launch_spec_is_pickled_without_its_field_names() -> None:
    spec = _spec()
    data = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    for f in dataclasses.fields(LaunchSpec):
        if f.name not in ("env", "resources"):  # these names are not values of the spec
            assert f.name.encode() not in data, f.name
