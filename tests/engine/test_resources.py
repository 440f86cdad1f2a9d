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


def test_custom_resources_a_cluster_offers_are_accounted_for():
    """A Ray cluster's ``--resources`` (a probe found them refused, naming "the local
    backend"): trials asking for them run as far as they fit."""
    pool = ResourcePool(cpu=4, gpu=0, custom={"accel": 2}, where="the Ray cluster")
    pool.check_fits_ever({"cpu": 0.5, "gpu": 0, "accel": 1})
    assert pool.max_concurrent({"cpu": 0.5, "accel": 1}) == 2
    assert pool.allocate("a", {"cpu": 0.5, "gpu": 0, "accel": 1}) == []
    assert pool.allocate("b", {"cpu": 0.5, "gpu": 0, "accel": 1}) == []
    assert pool.allocate("c", {"cpu": 0.5, "gpu": 0, "accel": 1}) is None  # both taken
    assert pool.allocate("d", {"cpu": 0.5, "gpu": 0}) == []  # others still run
    pool.release("a")
    assert pool.allocate("c", {"cpu": 0.5, "gpu": 0, "accel": 1}) == []
    with pytest.raises(ResourceError, match=r"\{'accel': 3\}, which the Ray cluster does not "
                                            r"offer; it offers \{'accel': 2\}"):
        pool.check_fits_ever({"cpu": 1, "gpu": 0, "accel": 3})
    with pytest.raises(ResourceError, match=r"\{'tpu': 1\}, which this machine does not offer; "
                                            "accepted keys are 'cpu', 'gpu' and 'memory'"):
        ResourcePool(cpu=2, gpu=0).check_fits_ever({"cpu": 1, "gpu": 0, "tpu": 1})


def test_a_cluster_without_the_resources_asked_for_is_no_error_it_may_grow():
    """Ray Tune waits for a cluster to offer what trials ask (nodes may still be joining, or
    an autoscaler adding them); a growable pool fails at once only for what no node can add:
    custom resources from a backend that offers none (Dask)."""
    pool = ResourcePool(cpu=0, gpu=0, where="the Dask cluster", growable=True)
    pool.check_fits_ever({"cpu": 4, "gpu": 2, "memory": 1e15})
    assert not pool.fits_total({"cpu": 1})
    with pytest.raises(ResourceError, match=r"\{'tpu': 1\}, which the Dask cluster does not "
                                            "offer; accepted keys are 'cpu', 'gpu' and 'memory'"):
        pool.check_fits_ever({"cpu": 1, "tpu": 1})
    ray = ResourcePool(cpu=2, gpu=0, custom={"accel": 1}, where="the Ray cluster",
                       growable=True)
    ray.check_fits_ever({"cpu": 1, "accel": 3, "tpu": 1})  # a node may bring them
    # the machine's own pool does not grow: the same request fails at once
    with pytest.raises(ResourceError, match="asks for 4 CPUs per trial, but this machine "
                                            "offers 2; request at most 2 CPUs"):
        ResourcePool(cpu=2, gpu=0).check_fits_ever({"cpu": 4})


def test_a_pool_takes_a_clusters_new_totals_and_keeps_what_trials_hold():
    pool = ResourcePool(cpu=2, gpu=1, custom={"accel": 1}, where="the Ray cluster",
                        growable=True)
    assert pool.allocate("a", {"cpu": 2, "gpu": 0.5, "accel": 1}) == [0]
    assert pool.allocate("b", {"cpu": 1}) is None
    assert not pool.update(cpu=2, gpu=1, custom={"accel": 1})  # nothing changed
    assert pool.update(cpu=6, gpu=2, memory=8e9, custom={"accel": 2, "tpu": 4})
    assert (pool.cpu_total, pool.cpu_free, pool.gpu_total) == (6.0, 4.0, 2)
    assert pool.gpu_free == [0.5, 1.0] and pool.custom_free == {"accel": 1.0, "tpu": 4.0}
    assert pool.memory_total == 8e9 and pool.zero_cpu_limit == 24
    assert pool.allocate("b", {"cpu": 1, "gpu": 1}) == [1]
    assert pool.max_concurrent({"cpu": 1, "tpu": 1}) == 4
    # a node leaves (with the second GPU, while "b" holds it): its GPU is gone for good
    assert pool.update(cpu=2, gpu=1, custom={"accel": 1})
    assert (pool.cpu_total, pool.cpu_free, pool.gpu_free) == (2.0, -1.0, [0.5])
    assert pool.allocate("c", {"cpu": 0.5}) is None  # over-committed until trials end
    pool.release("b")  # its GPU left with the node: nothing to give back there
    pool.release("a")
    assert (pool.cpu_free, pool.gpu_free, pool.custom_free) == (2.0, [1.0], {"accel": 1.0,
                                                                              "tpu": 0.0})


# --- trials asking for 0 CPUs (issue 12: up to 1,000,000 workers were asked for) -----------
def test_zero_cpu_trials_are_capped_at_four_per_cpu():
    pool = ResourcePool(cpu=2, gpu=0)
    assert pool.max_concurrent({"cpu": 0}) == 8
    assert all(pool.allocate(str(i), {"cpu": 0}) == [] for i in range(8))
    assert pool.allocate("9th", {"cpu": 0}) is None
    assert pool.allocate("one-cpu", {"cpu": 1}) == []  # the cap is on 0-CPU trials only
    pool.release("3")
    assert pool.allocate("9th", {"cpu": 0}) == []


def test_the_zero_cpu_cap_is_warned_about_naming_the_request_and_the_cap(caplog):
    from poptune.engine import resources

    resources._warned.clear()
    pool = ResourcePool(cpu=2, gpu=0)
    with caplog.at_level("WARNING", logger="poptune"):
        assert resources.worker_count(pool, {"cpu": 0}, total_samples=3) == 3
        assert caplog.text == ""  # the cap does not bind: nothing to say
        assert resources.worker_count(pool, {"cpu": 0}) == 8  # num_samples=-1: was 1,000,000
    assert "trials ask for 0 CPUs; at most 8 of them run at once (4 per CPU of the 2 here)" \
        in caplog.text


def test_an_endless_search_of_zero_cpu_trials_runs_at_most_the_cap_at_once(tmp_path):
    import poptune as tune
    from poptune.backends.simulated import SimulatedBackend
    from poptune.callbacks import Callback
    from poptune.simulation import advance

    class MostRunning(Callback):
        most = 0

        def on_step_end(self, iteration, trials, **info):
            running = sum(t.status == "RUNNING" for t in trials)
            MostRunning.most = max(MostRunning.most, running)

    def steps(config):
        for i in range(3):
            advance(1.0)
            tune.report({"i": i})

    grid = tune.Tuner(
        tune.with_resources(steps, {"cpu": 0}), param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=10,
                                    backend=SimulatedBackend(num_cpus=2)),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  callbacks=[MostRunning()]),
    ).fit()
    assert MostRunning.most == 8
    assert 8 <= len(grid) <= 8 * 5  # trials made only for free slots, 8 at a time


def test_resources_that_depend_on_the_config_are_asked_per_trial_only(tmp_path):
    """``with_resources`` given a function of the config, and a class trainable's own
    ``default_resource_request(config)``, as Ray's docs use them: never called with an empty
    config (they would raise ``KeyError``)."""
    import poptune as tune

    def steps(config):
        tune.report({"cpus": tune.get_context().get_trial_resources().required_resources["CPU"]})

    def per_config(config):
        return {"cpu": 2} if config["big"] else {"cpu": 1}

    grid = tune.Tuner(tune.with_resources(steps, per_config),
                      param_space={"big": tune.grid_search([True, False])},
                      tune_config=tune.TuneConfig(backend="simulated"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0
    assert sorted((r.config["big"], r.metrics["cpus"]) for r in grid) == [(False, 1), (True, 2)]

    class Sized(tune.Trainable):
        def step(self):
            return {"cpus": tune.get_context().get_trial_resources().required_resources["CPU"],
                    "done": True}

        @classmethod
        def default_resource_request(cls, config):
            return tune.PlacementGroupFactory([{"CPU": config["n"]}])

    grid = tune.Tuner(Sized, param_space={"n": tune.grid_search([1, 2])},
                      tune_config=tune.TuneConfig(backend="simulated"),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0
    assert sorted((r.config["n"], r.metrics["cpus"]) for r in grid) == [(1, 1), (2, 2)]


_FIXED = dict(cpu=4, gpu=1, memory=8e9, custom={"accel": 2}, where="the Ray cluster")


@pytest.mark.parametrize("resources, error", [
    ({"cpu": 4, "gpu": 1, "memory": 8e9, "accel": 2}, None),  # all of it, each at its total
    ({"cpu": 0, "gpu": 0.5, "accel": 0}, None),
    ({"cpu": 5}, "asks for 5 CPUs per trial, but the Ray cluster offers 4; request at most 4 "
                 "CPUs"),
    ({"cpu": 1, "gpu": 2}, "asks for 2 GPU(s) per trial, but 1 GPU(s) are available on the Ray "
                           "cluster; request 0 GPUs or add workers with GPUs"),
    ({"cpu": 1, "memory": 9e9}, "asks for 9e+09 bytes of memory per trial, but the Ray cluster "
                                "has 8e+09 bytes (7.5 GiB); `memory` is in bytes: request at "
                                "most 8e+09"),
    ({"cpu": 1, "tpu": 1, "accel": 3}, "asks for custom resources {'accel': 3, 'tpu': 1}, "
                                       "which the Ray cluster does not offer; it offers "
                                       "{'accel': 2}"),
    ({"cpu": 5, "gpu": 2, "tpu": 1}, "asks for 5 CPUs per trial"),  # the first that fails
])
def test_fits_total_is_false_exactly_when_check_fits_ever_refuses(resources, error):
    """One comparison for both: what never fits a pool that does not grow is an error naming
    the resource (the first of cpu, gpu, memory, custom) and does not fit in all."""
    pool = ResourcePool(**_FIXED)
    assert pool.fits_total(resources) is (error is None)
    if error is None:
        pool.check_fits_ever(resources)
    else:
        with pytest.raises(ResourceError) as info:
            pool.check_fits_ever(resources, what="resources_per_trial")
        assert str(info.value).startswith(f"`resources_per_trial` {error}")


def test_a_gpu_machine_error_says_how_to_fix_its_detection():
    with pytest.raises(ResourceError, match=r"asks for 1 GPU\(s\) per trial, but 0 GPU\(s\) are "
                                            "available on this machine; request 0 GPUs or run "
                                            "on a machine with GPUs, or set POPTUNE_NUM_GPUS"):
        ResourcePool(cpu=2, gpu=0).check_fits_ever({"cpu": 1, "gpu": 1})


# --- a cluster's nodes: a trial runs where one node has all it asks for -------------------
def nodes_pool(*nodes):
    """A Ray-like growable pool of ``nodes`` (dicts as ``cluster_offer`` takes them; named
    ``n0``, ``n1``, ... unless they say)."""
    return ResourcePool(**nodes_offer(*nodes), growable=True)


def nodes_offer(*nodes):
    """What a Ray backend's ``total_resources()`` returns for ``nodes`` (see above)."""
    from poptune.engine.resources import cluster_offer

    return cluster_offer([{"name": f"n{i}", **n} for i, n in enumerate(nodes)],
                         "the Ray cluster")


def test_a_request_that_fits_the_total_runs_only_as_often_as_nodes_hold_it():
    """Two nodes of 3 CPUs, trials of 2 CPUs: the total (6) holds three, but one node holds
    one; the third trial waits for a node to free (its Ray actor would stay pending)."""
    pool = nodes_pool({"cpu": 3}, {"cpu": 3})
    assert pool.max_concurrent({"cpu": 2}) == 2
    assert pool.allocate("a", {"cpu": 2}) == [] and pool.allocate("b", {"cpu": 2}) == []
    assert pool.cpu_free == 2 and not pool.fits_now({"cpu": 2})
    assert pool.allocate("c", {"cpu": 2}) is None
    assert pool.allocate("d", {"cpu": 1}) == []  # what the nodes have left still serves
    pool.release("a")
    assert pool.allocate("c", {"cpu": 2}) == []  # n0 again, beside "d"
    assert [n.cpu_held for n in pool.nodes] == [3.0, 2.0]


def test_trials_go_to_the_first_node_with_everything_free_and_its_own_gpus():
    pool = nodes_pool({"cpu": 1, "gpu": 1}, {"cpu": 4, "gpu": 2})
    assert pool.gpu_free == [1.0, 1.0, 1.0]  # n0's GPU, then n1's two
    assert pool.allocate("a", {"cpu": 1, "gpu": 0.5}) == [0]  # the first node
    assert pool.allocate("b", {"cpu": 1, "gpu": 0.5}) == [1]  # n0 has no CPU left
    assert pool.allocate("c", {"cpu": 1, "gpu": 2}) is None  # n1's GPU 1 is half taken
    pool.release("b")
    assert pool.allocate("c", {"cpu": 1, "gpu": 2}) == [1, 2]  # both on n1, never n0's
    assert pool.gpu_free == [0.5, 0.0, 0.0]
    assert pool.max_concurrent({"cpu": 1, "gpu": 0.5}) == 1 + 4  # n0: one CPU; n1: 4 CPUs


def test_memory_and_custom_resources_count_per_node():
    pool = nodes_pool({"cpu": 4, "memory": 4e9, "custom": {"accel": 1}},
                      {"cpu": 4, "memory": 8e9})
    assert pool.max_concurrent({"cpu": 1, "memory": 3e9}) == 1 + 2
    assert pool.allocate("a", {"cpu": 1, "memory": 6e9}) == []  # only n1 holds it
    assert pool.allocate("b", {"cpu": 1, "memory": 3e9}) == []  # n0
    assert pool.allocate("c", {"cpu": 1, "memory": 3e9}) is None  # n0 1e9, n1 2e9 left
    assert pool.allocate("d", {"cpu": 1, "accel": 1}) == []  # n0, the node with accel
    assert pool.allocate("e", {"cpu": 1, "accel": 1}) is None
    assert pool.custom_free == {"accel": 0.0}
    pool.release("d")
    assert pool.custom_free == {"accel": 1.0} and pool.nodes[0].custom_held == {"accel": 0.0}


def test_a_request_larger_than_any_node_waits_and_names_the_closest_node():
    """3 CPUs on two nodes of 2: within the total, but no node holds it. Not an error (a
    bigger node may join); it never fits now, and the controller warns about it."""
    pool = nodes_pool({"cpu": 2, "gpu": 1}, {"cpu": 2})
    pool.check_fits_ever({"cpu": 3})
    assert pool.fits_total({"cpu": 3}) and not pool.fits_one_node({"cpu": 3})
    assert pool.allocate("a", {"cpu": 3}) is None and pool.max_concurrent({"cpu": 3}) == 0
    assert pool.fits_one_node({"cpu": 2, "gpu": 1}) and not pool.fits_one_node({"gpu": 2})
    assert str(pool.largest_node({"cpu": 1, "gpu": 1})) == "n0: 2 CPUs, 1 GPUs"
    assert pool.update(**nodes_offer({"cpu": 2, "gpu": 1}, {"cpu": 2}, {"cpu": 4}))
    assert pool.fits_one_node({"cpu": 3}) and pool.allocate("a", {"cpu": 3}) == []
    assert pool.nodes[2].cpu_held == 3.0


def test_nodes_that_come_and_go_keep_what_trials_hold_on_the_others():
    pool = nodes_pool({"cpu": 2, "gpu": 1}, {"cpu": 2, "gpu": 2})
    assert pool.allocate("a", {"cpu": 2, "gpu": 1}) == [0]  # n0
    assert pool.allocate("b", {"cpu": 1, "gpu": 0.5}) == [1]  # n1's first GPU
    # n0 leaves (with "a"'s GPU), n2 joins: n1's GPUs move to the front, still half taken
    later = nodes_offer({"name": "n1", "cpu": 2, "gpu": 2}, {"name": "n2", "cpu": 1})
    assert pool.update(**later)
    assert [n.name for n in pool.nodes] == ["n1", "n2"]
    assert pool.gpu_free == [0.5, 1.0] and pool.gpu_total == 2
    assert pool.cpu_total == 3.0 and pool.cpu_free == 3.0 - 3.0  # "a" still counted
    assert pool.allocate("c", {"cpu": 1}) is None  # over-committed until "a" ends
    pool.release("a")  # its node left: nothing of n1 or n2 is given back for it
    assert [n.cpu_held for n in pool.nodes] == [1.0, 0.0] and pool.gpu_free == [0.5, 1.0]
    assert pool.allocate("c", {"cpu": 1, "gpu": 0.5}) == [0]  # n1, beside "b"
    pool.release("b")
    pool.release("c")
    assert pool.gpu_free == [1.0, 1.0] and [n.cpu_held for n in pool.nodes] == [0.0, 0.0]
    assert not pool.update(**later)


def test_a_pool_of_one_node_decides_as_the_pool_without_nodes():
    """This machine's pool has no nodes (the fast path); a one-node cluster's pool must take
    the same decisions for the same requests, releases and all."""
    import random

    rng = random.Random(7)
    plain = ResourcePool(cpu=6, gpu=3, custom={"accel": 2})
    noded = nodes_pool({"cpu": 6, "gpu": 3, "custom": {"accel": 2}})
    shapes = [{"cpu": 1, "gpu": 0}, {"cpu": 2, "gpu": 0.5}, {"cpu": 0.5, "gpu": 1},
              {"cpu": 0, "gpu": 0}, {"cpu": 1, "gpu": 2}, {"cpu": 1, "gpu": 0, "accel": 1},
              {"cpu": 3, "gpu": 0.25}]  # as normalize_resources makes them
    held: list[str] = []
    for step in range(2000):
        if held and rng.random() < 0.45:
            key = held.pop(rng.randrange(len(held)))
            plain.release(key)
            noded.release(key)
            continue
        shape = rng.choice(shapes)
        got = plain.allocate(str(step), shape)
        assert noded.allocate(str(step), shape) == got, (step, shape)
        if got is not None:
            held.append(str(step))
        assert (noded.cpu_free, noded.gpu_free) == (plain.cpu_free, plain.gpu_free)
    for shape in shapes:
        assert noded.max_concurrent(shape) == plain.max_concurrent(shape), shape


def test_cluster_offer_adds_up_the_nodes():
    from poptune.engine.resources import cluster_offer

    offer = cluster_offer([{"name": "a", "cpu": 2, "gpu": 1, "memory": 1e9},
                           {"name": "b", "cpu": 4, "gpu": 0, "memory": 3e9,
                            "custom": {"accel": 2}}], "the Ray cluster")
    assert {k: offer[k] for k in ("cpu", "gpu", "memory", "custom", "where")} == {
        "cpu": 6.0, "gpu": 1.0, "memory": 4e9, "custom": {"accel": 2.0},
        "where": "the Ray cluster"}
    dask = cluster_offer([{"name": "h", "cpu": 2, "gpu": 0}], "the Dask cluster",
                         memory=False, custom=False)
    assert dask["memory"] is None and dask["custom"] is None  # Dask offers neither
    assert ResourcePool(**cluster_offer([], "the Dask cluster"), growable=True).nodes == []


# --- a Dask machine: a task's GPUs are all one worker's ---------------------------------------
def dask_offer(*workers):
    """What the Dask backend's ``total_resources()`` returns for ``workers`` (entries of
    ``scheduler_info()["workers"]``)."""
    from poptune.backends.dask import dask_nodes
    from poptune.engine.resources import cluster_offer

    return cluster_offer(dask_nodes(workers), "the Dask cluster", memory=False, custom=False)


def dask_pool(*workers):
    """The growable pool of a Dask cluster of ``workers`` (see :func:`dask_offer`)."""
    return ResourcePool(**dask_offer(*workers), growable=True)


def _gpu_worker(gpus, host="h"):
    return {"host": host, "nthreads": 1, "resources": {"GPU": gpus}}


def test_a_dask_request_for_more_gpus_than_one_worker_has_never_starts_and_waits():
    """Two workers of one GPU on a machine: 2 GPUs in all, but a Dask task asking for 2
    runs on no worker. It waits (a bigger worker may join), and the largest node says why;
    trials of one GPU still run two at once."""
    pool = dask_pool(_gpu_worker(1), _gpu_worker(1))
    two, one = {"cpu": 1, "gpu": 2}, {"cpu": 1, "gpu": 1}
    pool.check_fits_ever(two)  # no error: the cluster may grow
    assert pool.fits_total(two) and not pool.fits_one_node(two)
    assert pool.max_concurrent(two) == 0 and pool.allocate("a", two) is None
    assert str(pool.largest_node(two)) == (
        "h: 2 CPUs, 2 GPUs, but a Dask task runs on one worker and its largest has 1 GPUs")
    assert pool.fits_one_node(one) and pool.max_concurrent(one) == 2
    assert pool.allocate("a", one) == [0] and pool.allocate("b", one) == [1]
    # a worker of 2 GPUs joins the machine: now one worker holds the request
    assert pool.update(**dask_offer(_gpu_worker(1), _gpu_worker(1), _gpu_worker(2)))
    assert pool.nodes[0].gpu_groups == (1, 1, 2)
    assert pool.fits_one_node(two) and pool.allocate("c", two) == [2, 3]
    assert pool.gpu_free == [0.0, 0.0, 0.0, 0.0]
    # a machine whose GPUs are one worker's is one node, as before
    whole = dask_pool(_gpu_worker(2), {"host": "h", "nthreads": 2})
    assert whole.fits_one_node(two) and str(whole.largest_node(two)) == "h: 3 CPUs, 2 GPUs"


def test_whole_gpus_come_from_one_worker_and_fractions_from_any():
    """Two workers of 2 GPUs on a machine (GPUs 0-1 and 2-3): a trial of 2 GPUs after one of
    1 takes the second worker's two, never GPUs 1 and 2 of two workers; fractions fill
    any GPU, as Dask adds them up per worker."""
    pool = dask_pool({**_gpu_worker(2), "nthreads": 4}, {**_gpu_worker(2), "nthreads": 4})
    assert pool.max_concurrent({"cpu": 1, "gpu": 2}) == 2
    assert pool.max_concurrent({"cpu": 1, "gpu": 1.5}) == 2  # as many as 2-GPU trials
    assert pool.allocate("a", {"cpu": 1, "gpu": 1}) == [0]
    assert pool.allocate("b", {"cpu": 1, "gpu": 2}) == [2, 3]
    assert pool.allocate("c", {"cpu": 1, "gpu": 2}) is None  # GPU 1 alone is left
    assert pool.allocate("d", {"cpu": 1, "gpu": 0.5}) == [1]
    assert pool.allocate("e", {"cpu": 1, "gpu": 0.5}) == [1]
    pool.release("b")
    assert pool.allocate("c", {"cpu": 1, "gpu": 2}) == [2, 3]
    pool.release("a")
    assert pool.allocate("f", {"cpu": 1, "gpu": 1}) == [0]
    assert pool.gpu_free == [0.0, 0.0, 0.0, 0.0]

