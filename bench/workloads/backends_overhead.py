"""Backends workload: overhead (200 trials x 10 reports) and the PBT toy on poptune's local,
Ray and Dask backends, each on a local multi-node cluster on loopback, plus Ray Tune itself
(overhead workload) on the same Ray cluster.

    python bench/workloads/backends_overhead.py [--engines local,ray,dask]
                                                [--workloads overhead,pbt_function]
                                                [--trials 200] [--no-raytune]
    python bench/workloads/backends_overhead.py --inner-raytune --address HOST:PORT   # one run

Clusters (started here, stopped afterwards, each process ended by its pid):

* Ray: ``ray start --head --num-cpus=1 --node-ip-address=127.0.0.1`` plus one worker node
  ``ray start --address=127.0.0.1:PORT --num-cpus=1`` (2 CPUs in all), ``RAY_AUTH_MODE=disabled``,
  in a private ``--temp-dir`` with free ports, so that another Ray cluster on the machine is
  neither used nor disturbed. ``ray stop`` is NOT used: it kills every Ray cluster on the
  machine; instead the processes whose command line names this cluster's temp dir are ended.
* Dask: ``dask scheduler`` plus 2 ``dask worker --nthreads 1`` processes on 127.0.0.1.
* local: poptune's own worker processes (no cluster).

Each (engine, workload) runs in its own subprocess, as bench/run.py does, and is the unchanged
workload script (``overhead.py --framework poptune``, ``pbt_function.py --framework poptune``)
moved to the cluster by the environment only: ``POPTUNE_BACKEND`` and ``POPTUNE_ADDRESS``. Ray
Tune runs ``overhead.py``'s Ray script, with ``ray.init(address=...)`` instead of
``ray.init(num_cpus=2)`` (``--inner-raytune``).

Per-result overhead = (fit wall - trial compute) / results, fit wall = ``Tuner.fit()`` +
``get_best_result()`` in the workload (cluster connection excluded), trial compute = the time
the trainable's own code takes, divided by the 2 trials running at once: 0 for the no-op
overhead workload; for the PBT toy, its step (including the checkpoint every 5 steps) timed
in-process here without any framework. The wall from subprocess start to the JSON line is also
recorded (``wall_s``). Prints one JSON line with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load():
    return [float(x) for x in os.getloadavg()]


# ---------------------------------------------------------------- clusters
class RayCluster:
    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="pbtb_ray_", dir="/tmp")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

    def _ray_start(self, args: list[str]) -> None:
        proc = subprocess.run([os.path.join(BIN, "ray"), "start", *args], env=self.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
        if proc.returncode:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{proc.stderr[-2000:]}")

    def start(self) -> None:
        ray = os.path.join(BIN, "ray")
        common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
        self._ray_start(["--head", f"--port={self.port}", *common,
                        f"--temp-dir={self.temp_dir}", "--include-dashboard=false",
                        f"--dashboard-agent-listen-port={free_port()}",
                        f"--dashboard-agent-grpc-port={free_port()}",
                        f"--metrics-export-port={free_port()}",
                        f"--runtime-env-agent-port={free_port()}"])
        self._ray_start([f"--address={self.address}", *common,
                        f"--dashboard-agent-listen-port={free_port()}",
                        f"--dashboard-agent-grpc-port={free_port()}",
                        f"--metrics-export-port={free_port()}",
                        f"--runtime-env-agent-port={free_port()}"])
        # wait for both nodes
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run([ray, "status", f"--address={self.address}"], env=self.env,
                                 capture_output=True, text=True, timeout=60, check=False).stdout
            if "2.0/2.0 CPU" in out or "0.0/2.0 CPU" in out:
                return
            time.sleep(1)
        raise RuntimeError(f"Ray cluster did not show 2 CPUs:\n{out}")

    def stop(self) -> None:
        import psutil

        mine = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
            except (psutil.Error, TypeError):
                continue
            ours = (self.temp_dir in cmd or f"--gcs-address={self.address}" in cmd
                    or f"--gcs_server_address={self.address}" in cmd)
            if ours and p.pid != os.getpid():
                mine.append(p)
        # Ray renames its agents' command lines (``ray::DashboardAgent``): take descendants too
        for p in list(mine):
            try:
                mine.extend(c for c in p.children(recursive=True) if c not in mine)
            except psutil.Error:
                pass
        for p in mine:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(mine, timeout=10)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.n_stopped = len(mine)

    def backend_env(self) -> dict:
        return {**self.env, "POPTUNE_BACKEND": "ray", "POPTUNE_ADDRESS": self.address}


class DaskCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.log_dir = tempfile.mkdtemp(prefix="pbtb_dask_")

    def _spawn(self, args, name) -> None:
        with open(os.path.join(self.log_dir, name + ".log"), "w") as log:
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def start(self) -> None:
        dask = os.path.join(BIN, "dask")
        self._spawn([dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                     "--no-dashboard"], "scheduler")
        for i in range(2):
            self._spawn([dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                         "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"],
                        f"worker{i}")
        from distributed import Client

        deadline = time.time() + 60
        while True:
            try:
                with Client(self.address, timeout=10) as c:
                    c.wait_for_workers(2, timeout=60)
                return
            except Exception:  # scheduler not up yet
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def backend_env(self) -> dict:
        return {**os.environ, "POPTUNE_BACKEND": "dask", "POPTUNE_ADDRESS": self.address}


class NoCluster:
    address = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def backend_env(self) -> dict:
        return {**os.environ, "POPTUNE_BACKEND": "local"}


# ---------------------------------------------------------------- one run
def run_child(cmd: list[str], env: dict, timeout: float) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    rec = None
    try:
        for line in proc.stdout:
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("bench"):
                    rec = obj
                    rec["wall_s"] = time.perf_counter() - t0
                    break
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    err = proc.stderr.read()
    if rec is None:
        return {"failed": True, "rc": proc.returncode, "stderr_tail": err[-2000:]}
    return rec


def pbt_step_compute_s(n_steps: int = 2000) -> float:
    """Seconds per step of the PBT toy's own code, with no framework (report is a no-op)."""
    import importlib.util

    path = os.path.join(ROOT, "examples", "pbt_function.py")
    spec = importlib.util.spec_from_file_location("_pbt_toy_timing", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Stop(Exception):
        pass

    class FakeTune:
        n = 0

        @staticmethod
        def get_checkpoint():
            return None

        @staticmethod
        def report(metrics, checkpoint=None):
            FakeTune.n += 1
            if FakeTune.n >= n_steps:
                raise Stop

    class FakeCheckpoint:
        @staticmethod
        def from_directory(d):
            return d

    mod.tune, mod.Checkpoint = FakeTune, FakeCheckpoint
    t = time.perf_counter()
    try:
        mod.pbt_function({"lr": 0.005, "checkpoint_interval": 5})
    except Stop:
        pass
    return (time.perf_counter() - t) / n_steps


def inner_raytune(args) -> None:
    """overhead.py's Ray Tune script on an existing cluster: ray.init(address=...)."""
    t0 = time.perf_counter()
    import ray
    from ray import tune

    t_import = time.perf_counter() - t0
    reports = args.reports

    def trainable(config):
        x = config["x"]
        for i in range(reports):
            tune.report({"score": x + i})

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t0 - t_import
    storage = tempfile.mkdtemp(prefix="bench_raytune_cluster_")
    try:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space={"x": tune.uniform(0, 1)},
            tune_config=tune.TuneConfig(num_samples=args.trials, metric="score", mode="max",
                                        max_concurrent_trials=2),
            run_config=tune.RunConfig(verbose=0, storage_path=storage),
        )
        t1 = time.perf_counter()
        grid = tuner.fit()
        best = grid.get_best_result()
        t_fit = time.perf_counter() - t1
        _common.emit({"workload": "overhead", "framework": "ray-tune-on-cluster",
                      "best": best.metrics["score"], "import_s": t_import,
                      "ray_init_s": t_init, "fit_s": t_fit, "n_results": len(grid),
                      "n_errors": sum(1 for r in grid if r.error is not None),
                      "versions": _common.versions("ray")})
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        ray.shutdown()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", default="local,ray,dask")
    p.add_argument("--workloads", default="overhead,pbt_function")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--reports", type=int, default=10)
    p.add_argument("--no-raytune", action="store_true", help="skip Ray Tune on the Ray cluster")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--inner-raytune", action="store_true")
    p.add_argument("--address", default=None)
    args = p.parse_args(argv)
    if args.inner_raytune:
        inner_raytune(args)
        return

    py = sys.executable
    step_s = pbt_step_compute_s()
    runs = []
    for engine in args.engines.split(","):
        cluster = {"local": NoCluster, "ray": RayCluster, "dask": DaskCluster}[engine]()
        try:
            t = time.perf_counter()
            cluster.start()
            t_start = time.perf_counter() - t
            plan = []
            if "overhead" in args.workloads:
                plan.append(("overhead", "poptune",
                             [py, os.path.join(HERE, "overhead.py"), "--framework", "poptune",
                              "--trials", str(args.trials), "--reports", str(args.reports)],
                             cluster.backend_env()))
            if "pbt_function" in args.workloads:
                plan.append(("pbt_function", "poptune",
                             [py, os.path.join(HERE, "pbt_function.py"), "--framework",
                              "poptune"], cluster.backend_env()))
            if engine == "ray" and not args.no_raytune and "overhead" in args.workloads:
                plan.append(("overhead", "ray-tune",
                             [py, os.path.abspath(__file__), "--inner-raytune", "--address",
                              cluster.address, "--trials", str(args.trials),
                              "--reports", str(args.reports)],
                             {k: v for k, v in cluster.backend_env().items()
                              if not k.startswith("POPTUNE_")}))
            for workload, framework, cmd, env in plan:
                before = load()
                rec = run_child(cmd, env, args.timeout)
                if workload == "overhead":
                    n_results = args.trials * args.reports
                    compute = 0.0
                else:
                    n_results = rec.get("n_results") or 0
                    compute = n_results * step_s / 2
                fit = rec.get("fit_s")
                runs.append({
                    "engine": engine, "workload": workload, "framework": framework,
                    "cluster_address": cluster.address, "cluster_start_s": t_start,
                    "load_before": before, "wall_s": rec.get("wall_s"), "fit_s": fit,
                    "results": n_results, "trial_compute_s": compute,
                    "per_result_overhead_ms": ((fit - compute) / n_results * 1e3
                                               if fit and n_results else None),
                    "record": rec})
                print(json.dumps(runs[-1])[:400], file=sys.stderr, flush=True)
        finally:
            cluster.stop()
    ratio = None
    by = {(r["engine"], r["workload"], r["framework"]): r for r in runs}
    a = by.get(("ray", "overhead", "poptune"))
    b = by.get(("ray", "overhead", "ray-tune"))
    if a and b and a["per_result_overhead_ms"] and b["per_result_overhead_ms"]:
        ratio = a["per_result_overhead_ms"] / b["per_result_overhead_ms"]
    _common.emit({"workload": "backends_overhead", "pbt_step_compute_us": step_s * 1e6,
                  "ratio_ray_backend_to_ray_tune_per_result": ratio, "runs": runs,
                  "versions": _common.versions("poptune", "ray", "dask", "distributed")})


if __name__ == "__main__":
    main()
