"""PBT quality bench: how good are the results, not how fast (issue 11, item 3).

    python bench/workloads/pbt_quality.py --framework poptune|ray --toy triangle|fig2|convnet
                                          [--seeds N] [--methods pbt,pb2,...] [--cap N]
    python bench/workloads/pbt_quality.py --plot FILE [FILE ...] [--img-dir bench/img]

Three problems, each solved by several schedulers, each method over ``--seeds`` seeded runs;
medians over seeds, never single runs.

* ``triangle``: Ray's ``pbt_function`` toy (the best ``lr`` is a triangle wave of the
  accuracy; training stalls without a schedule), made deterministic: its noise is drawn from
  a generator seeded by (run seed, step, state). Population 4, 2 trials at a time, stop at
  ``done`` (accuracy > 200) or 1,000 iterations, checkpoint every 5, perturb every 5.
* ``fig2``: the PBT paper's Figure 2 toy (Jaderberg et al. 2017): maximise
  Q(θ) = 1.2 − (θ0² + θ1²) by gradient ascent (step 0.01) on the surrogate
  Q̂(θ|h) = 1.2 − (h0 θ0² + h1 θ1²), θ from (0.9, 0.9), population 2 starting at h = (1, 0)
  and (0, 1), 100 steps, ready every 4 steps, synchronous (``synch=True``: both members are
  compared at the same step, as in the paper; the toy is symmetric, and asynchronous PBT
  compares one member's fresh score with the other's older one, so it never exploits);
  PBT (exploit = copy the better member, θ and h; explore = h + N(0, 0.1) clipped to
  [0, 1]) vs explore-only vs exploit-only vs no PBT, as the paper,
  plus PB2, ASHA and random search.
* ``convnet``: the PBT guide's ConvNet on the bundled digits (``examples/
  pbt_convnet_example.py``) at a fixed budget: 4 trials x 20 iterations, 3 seeds by default
  (small on purpose: this machine has 2 shared cores). Best accuracy and when it was reached.

poptune runs on the simulated backend (``SimulatedBackend(num_cpus=2)``, each report one
simulated second: deterministic per seed; the question is quality, not speed); Ray Tune with
``ray.init(num_cpus=2)`` and ``reuse_actors=True`` (its PBT has no seed, so its runs vary;
only its PBT and PB2 run: ASHA, random search and the paper's ablations are the baselines,
run by poptune).
Prints one JSON line (the medians), writes every run's record to
``bench/results/quality/<framework>_<toy>.json`` and redraws ``bench/img/quality_<toy>.png``
from the files there (so a poptune run and a Ray run end up in the same plot).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

API: Any = None  # the tune module in use: poptune or ray.tune
ADVANCE: Callable[[float], None] = lambda seconds: None  # noqa: E731

TOYS = {
    "triangle": {"methods": ["pbt", "pb2", "pb2_tr", "asha", "random"], "seeds": 20,
                 "cap": 1000},
    "fig2": {"methods": ["pbt", "explore_only", "exploit_only", "no_pbt", "pb2", "pb2_tr",
                         "asha", "random"], "seeds": 20, "cap": 100},
    "convnet": {"methods": ["pbt", "pb2", "asha", "random"], "seeds": 3, "cap": 20},
}
RAY_METHODS = ("pbt", "pb2")


# --------------------------------------------------------------------------- trainables
def _restore() -> dict | None:
    checkpoint = API.get_checkpoint()
    if not checkpoint:
        return None
    with checkpoint.as_directory() as d, open(os.path.join(d, "state.json")) as f:
        return json.load(f)


def _report(metrics: dict, state: dict | None) -> None:
    if state is None:
        API.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "state.json"), "w") as f:
            json.dump(state, f)
        API.report(metrics, checkpoint=API.Checkpoint.from_directory(d))


def triangle(config: dict) -> None:
    """Ray's ``pbt_function`` toy with seeded noise (see the module docstring)."""
    state = _restore()  # the step it holds was reported: go on from the next, as Ray's toy
    acc, step = (state["acc"], state["step"] + 1) if state else (0.0, 1)
    lr = config["lr"]
    while True:
        optimal = 0.01 * acc / 100 if acc < 100 else 0.01 - 0.01 * (acc - 100) / 100
        optimal = min(0.01, max(0.001, optimal))
        q_err = max(lr, optimal) / min(lr, optimal)
        rng = random.Random(f"{config['noise_seed']}|{step}|{acc!r}|{lr!r}")
        if q_err < 3:
            acc += (1.0 / q_err) * rng.random()
        elif lr > optimal:
            acc -= (q_err - 3) * rng.random()
        acc = max(0.0, acc + 2 * rng.gauss(0.0, 1.0))
        ADVANCE(1.0)
        metrics = {"mean_accuracy": acc, "done": acc > 200}
        _report(metrics, {"acc": acc, "step": step} if step % 5 == 0 else None)
        step += 1


def fig2(config: dict) -> None:
    """The PBT paper's toy: gradient ascent on Q̂(θ|h); reports the true Q(θ)."""
    state = _restore() or {"theta": [0.9, 0.9], "step": 0, "h": None}
    theta, step = state["theta"], state["step"]
    h = [config["h0"], config["h1"]] if state["h"] is None or not config.get("self_explore") \
        else state["h"]
    rng = random.Random(f"{config.get('self_explore')}|{config['h0']}|{config['h1']}")
    while True:
        step += 1
        theta = [t - 0.01 * 2 * hi * t for t, hi in zip(theta, h)]
        if config.get("self_explore") and step % 4 == 0:  # explore-only: perturb h, keep θ
            h = [min(1.0, max(0.0, hi + rng.gauss(0.0, 0.1))) for hi in h]
        ADVANCE(1.0)
        q = 1.2 - (theta[0] ** 2 + theta[1] ** 2)
        _report({"Q": q, "h0": h[0], "h1": h[1]}, {"theta": theta, "step": step, "h": h})


def convnet(config: dict) -> None:
    """The PBT guide's ``train_convnet`` (imported from examples/ or written for Ray)."""
    import importlib.util

    import torch

    torch.manual_seed(config["torch_seed"])
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location(
        "pbt_convnet_example", os.path.join(ROOT, "examples", "pbt_convnet_example.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if API.__name__ != "poptune":
        mod.tune = API  # the same function, reporting through Ray's session
    mod.train_convnet(config)


# --------------------------------------------------------------------------- experiments
def _gauss_explore(seed: int) -> Callable[[dict], dict]:
    rng = random.Random(seed)

    def explore(config: dict) -> dict:
        config = dict(config)
        for key in ("h0", "h1"):
            config[key] = min(1.0, max(0.0, config[key] + rng.gauss(0.0, 0.1)))
        return config

    return explore


def _setup(fw: str, toy: str, method: str, seed: int) -> dict:
    """Trainable, scheduler, param space, samples and stop for one run."""
    tune = API
    if fw == "poptune":
        from poptune.schedulers import ASHAScheduler, PopulationBasedTraining
        from poptune.schedulers.pb2 import PB2
        kw: dict = {"seed": seed}
    else:
        from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining
        from ray.tune.schedulers.pb2 import PB2
        kw = {}
    cap = TOYS[toy]["cap"]
    sched: Any = None
    if toy == "triangle":
        space: dict = {"lr": 0.0001, "noise_seed": seed, "checkpoint_interval": 5}
        n, metric = 4, "mean_accuracy"
        if method == "pbt":
            sched = PopulationBasedTraining(time_attr="training_iteration",
                                            perturbation_interval=5,
                                            hyperparam_mutations={"lr": tune.uniform(1e-4, 0.02)},
                                            **kw)
        elif method in ("pb2", "pb2_tr"):  # pb2_tr: poptune's trust_region=0.25
            tr = {"trust_region": 0.25} if method == "pb2_tr" else {}
            sched = PB2(time_attr="training_iteration", perturbation_interval=5,
                        hyperparam_bounds={"lr": [1e-4, 0.02]}, **kw, **tr)
        else:
            space["lr"] = tune.loguniform(1e-4, 0.02)
            if method == "asha":
                n = 8
                sched = ASHAScheduler(time_attr="training_iteration", max_t=cap,
                                      grace_period=25, reduction_factor=2)
        return {"fn": triangle, "sched": sched, "space": space, "n": n, "metric": metric,
                "stop": {"done": True, "training_iteration": cap}}
    if toy == "fig2":
        space = {"h0": tune.grid_search([1.0, 0.0]),
                 "h1": tune.sample_from(lambda spec: 1.0 - spec.config.h0)}
        n = 1  # x the 2-point grid
        pbt_kw = dict(time_attr="training_iteration", perturbation_interval=4,
                      quantile_fraction=0.5, synch=True, **kw)
        if method == "pbt":
            sched = PopulationBasedTraining(custom_explore_fn=_gauss_explore(seed), **pbt_kw)
        elif method == "exploit_only":
            sched = PopulationBasedTraining(custom_explore_fn=lambda c: c, **pbt_kw)
        elif method == "explore_only":
            space["self_explore"] = seed + 1
        elif method in ("pb2", "pb2_tr"):
            pbt_kw.pop("quantile_fraction")
            tr = {"trust_region": 0.25} if method == "pb2_tr" else {}
            sched = PB2(hyperparam_bounds={"h0": [0.0, 1.0], "h1": [0.0, 1.0]},
                        quantile_fraction=0.5, **pbt_kw, **tr)
        elif method in ("asha", "random"):
            space = {"h0": tune.uniform(0.0, 1.0), "h1": tune.uniform(0.0, 1.0)}
            n = 2
            if method == "asha":
                n = 8
                sched = ASHAScheduler(time_attr="training_iteration", max_t=cap,
                                      grace_period=10, reduction_factor=2)
        return {"fn": fig2, "sched": sched, "space": space, "n": n, "metric": "Q",
                "stop": {"training_iteration": cap}}
    # convnet: the guide's search space and PBT, at a fixed budget
    space = {"lr": tune.uniform(0.001, 1), "momentum": tune.uniform(0.001, 1),
             "checkpoint_interval": 5, "torch_seed": seed}
    n = 4
    if method == "pbt":
        sched = PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=5,
            hyperparam_mutations={"lr": tune.uniform(0.0001, 1), "momentum": [0.8, 0.9, 0.99]},
            **kw)
    elif method == "pb2":
        sched = PB2(time_attr="training_iteration", perturbation_interval=5,
                    hyperparam_bounds={"lr": [0.0001, 1], "momentum": [0.001, 1]}, **kw)
    elif method == "asha":
        n = 8
        sched = ASHAScheduler(time_attr="training_iteration", max_t=cap, grace_period=5,
                              reduction_factor=2)
    return {"fn": convnet, "sched": sched, "space": space, "n": n,
            "metric": "mean_accuracy", "stop": {"training_iteration": cap}}


def _recorder(Callback: Any, metric: str) -> Any:
    class Record(Callback):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.rows: list[tuple[str, int, float, bool]] = []

        def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: dict,
                            **info: Any) -> None:
            # "solved": the triangle toy's own goal (the result's ``done`` is also set by
            # the framework on a trial's last result, whatever stopped it)
            self.rows.append((str(trial.trial_id), int(result["training_iteration"]),
                              float(result[metric]), float(result[metric]) > 200))

    return Record()


def _curve(rows: list[tuple[str, int, float, bool]], cap: int, points: int = 50) -> list:
    """Best metric seen at or before each of ``points`` iterations up to ``cap``."""
    grid = sorted({max(1, round(cap * (i + 1) / points)) for i in range(points)})
    out = []
    for it in grid:
        seen = [m for _, i, m, _ in rows if i <= it]
        out.append([it, max(seen) if seen else None])
    return out


def run_one(fw: str, toy: str, method: str, seed: int, storage: str) -> dict:
    s = _setup(fw, toy, method, seed)
    Callback = API.Callback
    rec = _recorder(Callback, s["metric"])
    tune_kw: dict = {"metric": s["metric"], "mode": "max", "num_samples": s["n"]}
    if s["sched"] is not None:
        tune_kw["scheduler"] = s["sched"]
    if fw == "poptune":
        from poptune.backends.simulated import SimulatedBackend

        tune_kw.update(seed=seed, backend=SimulatedBackend(num_cpus=2))
    else:
        # As Ray's own pbt_function example. Without it, Ray's PBT pauses a trial at every
        # perturbation while others wait (4 trials on 2 CPUs) and a pause ends its actor
        # process, so each resume starts a new one: 370 ms per result against 10 ms with
        # reuse (triangle, 2026-12-03, load 2), a 7-minute run became a 1-minute one.
        tune_kw["reuse_actors"] = True
    t0 = time.perf_counter()
    grid = API.Tuner(
        s["fn"], param_space=s["space"],
        tune_config=API.TuneConfig(**tune_kw),
        run_config=API.RunConfig(name=f"{toy}-{method}-{seed}", storage_path=storage,
                                 stop=s["stop"], verbose=0, callbacks=[rec]),
    ).fit()
    wall = time.perf_counter() - t0
    cap = TOYS[toy]["cap"]
    rows = rec.rows
    last: dict[str, tuple[int, float, bool]] = {}
    for tid, it, m, done in rows:
        last[tid] = (it, m, done)
    out = {"method": method, "seed": seed, "errors": grid.num_errors, "wall_s": round(wall, 2),
           "trial_iterations": len(rows), "best": max((m for *_, m, _ in rows), default=None),
           "curve": _curve(rows, cap)}
    if toy == "triangle":
        done_at = [it for _, it, _, d in rows if d]
        out["solved_at"] = min(done_at) if done_at else None
        out["trials_done"] = sum(d for *_, d in last.values())
        out["median_iters_to_done"] = statistics.median(
            it if d else cap for it, _, d in last.values())
    if toy == "fig2":
        out["final"] = max(m for _, m, _ in last.values())
    if toy == "convnet":
        best = out["best"]
        out["best_at"] = min(it for _, it, m, _ in rows if m == best)
    return out


def _median(values: list) -> Any:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(toy: str, runs: list[dict]) -> dict:
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(r["method"], []).append(r)
    summary = {}
    for method, rs in by.items():
        s = {"runs": len(rs), "best": _median([r["best"] for r in rs]),
             "trial_iterations": _median([r["trial_iterations"] for r in rs]),
             "errors": sum(r["errors"] for r in rs)}
        if toy == "triangle":
            s["median_iters_to_done"] = _median([r["median_iters_to_done"] for r in rs])
            solved = _median([r["solved_at"] if r["solved_at"] is not None
                              else math.inf for r in rs])
            s["solved_at"] = "never" if solved == math.inf else solved
            s["runs_all_done"] = sum(r["trials_done"] == (8 if method == "asha" else 4)
                                     for r in rs)
        if toy == "fig2":
            s["final"] = _median([r["final"] for r in rs])
        if toy == "convnet":
            s["best_at"] = _median([r["best_at"] for r in rs])
        summary[method] = s
    return summary


# --------------------------------------------------------------------------- plots
LABELS = {"pbt": "PBT", "pb2": "PB2", "pb2_tr": "PB2, trust_region=0.25", "asha": "ASHA",
          "random": "random search",
          "explore_only": "explore only", "exploit_only": "exploit only", "no_pbt": "no PBT"}
ABLATIONS = ("explore_only", "exploit_only", "no_pbt")  # dotted (exploit-only can hide no-PBT)
YLABEL = {"triangle": "best mean_accuracy so far", "fig2": "best Q(θ) so far",
          "convnet": "best mean_accuracy so far"}


def plot(files: list[str], img_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_toy: dict[str, list[tuple[str, dict]]] = {}
    for path in files:
        with open(path) as f:
            data = json.load(f)
        by_toy.setdefault(data["toy"], []).append((data["framework"], data))
    written = []
    for toy, datas in by_toy.items():
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for fw, data in datas:
            methods: dict[str, list[dict]] = {}
            for r in data["runs"]:
                methods.setdefault(r["method"], []).append(r)
            for method, rs in methods.items():
                xs = [p[0] for p in rs[0]["curve"]]
                med, lo, hi = [], [], []
                for i in range(len(xs)):
                    vals = sorted(r["curve"][i][1] for r in rs if r["curve"][i][1] is not None)
                    if not vals:
                        med.append(math.nan), lo.append(math.nan), hi.append(math.nan)
                        continue
                    q = (statistics.quantiles(vals, n=4, method="inclusive") if len(vals) >= 5
                         else [vals[0], None, vals[-1]])  # few runs: min to max
                    med.append(statistics.median(vals)), lo.append(q[0]), hi.append(q[2])
                label = f"{'Ray ' if fw == 'ray' else ''}{LABELS.get(method, method)} ({len(rs)} runs)"
                style = "--" if fw == "ray" else ":" if method in ABLATIONS else "-"
                line, = ax.plot(xs, med, style, label=label)
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.12)
        ax.set_xlabel("training_iteration")
        ax.set_ylabel(YLABEL[toy])
        ax.set_title(f"{toy}: median over seeds (band: quartiles; min-max below 5 runs)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(img_dir, f"quality_{toy}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    global API, ADVANCE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=["poptune", "ray"], default="poptune")
    p.add_argument("--toy", action="append", choices=sorted(TOYS),
                   help="repeatable; default: triangle and fig2 (convnet takes minutes)")
    p.add_argument("--seeds", type=int, default=None, help="runs per method (default per toy)")
    p.add_argument("--methods", default=None, help="comma-separated subset")
    p.add_argument("--cap", type=int, default=None,
                   help="iterations per trial (default per toy: triangle 1000, fig2 100, "
                   "convnet 20); recorded in the output file")
    p.add_argument("--ray-seeds", type=int, default=5,
                   help="at most this many runs per method for Ray (its runs are real processes)")
    p.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results", "quality"),
                   help="every run's record goes to OUT_DIR/<framework>_<toy>.json; the plots "
                   "are redrawn from all the files there")
    p.add_argument("--plot", nargs="+", default=None, help="plot these --out files and exit")
    p.add_argument("--img-dir", default=os.path.join(ROOT, "bench", "img"))
    args = p.parse_args(argv)
    if args.plot:
        for path in plot(args.plot, args.img_dir):
            print(path)
        return
    if args.framework == "poptune":
        import poptune
        from poptune import simulation

        API, ADVANCE = poptune, simulation.advance
    else:
        import ray
        from ray import tune as ray_tune

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        API = ray_tune
    storage = tempfile.mkdtemp(prefix="pbt_quality_")
    result: dict = {"framework": args.framework, "versions": _common.versions("poptune", "ray"),
                    "toys": {}}
    for toy in args.toy or ["triangle", "fig2"]:
        methods = args.methods.split(",") if args.methods else TOYS[toy]["methods"]
        if args.framework == "ray":
            methods = [m for m in methods if m in RAY_METHODS]
        seeds = args.seeds or TOYS[toy]["seeds"]
        if args.cap:
            TOYS[toy]["cap"] = args.cap
        if args.framework == "ray":
            seeds = min(seeds, args.ray_seeds)
        runs = []
        for method in methods:
            if method not in TOYS[toy]["methods"]:
                continue
            for seed in range(seeds):
                run = run_one(args.framework, toy, method, seed, storage)
                runs.append(run)
                print(f"{toy} {args.framework} {method} seed {seed}: best {run['best']:.4g} "
                      f"({run['wall_s']} s)", file=sys.stderr, flush=True)
        summary = summarize(toy, runs)
        result["toys"][toy] = summary
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, f"{args.framework}_{toy}.json"), "w") as f:
            json.dump({"framework": args.framework, "toy": toy, "cap": TOYS[toy]["cap"],
                       "summary": summary, "runs": runs}, f)
    _common.discard(storage)
    try:
        files = sorted(os.path.join(args.out_dir, n) for n in os.listdir(args.out_dir)
                       if n.endswith(".json"))
        result["plots"] = [os.path.relpath(p, ROOT) for p in plot(files, args.img_dir)]
    except ImportError:  # matplotlib missing: the numbers are still printed
        result["plots"] = []
    _common.emit({"workload": "pbt_quality", **result})
    if args.framework == "ray":
        import ray

        ray.shutdown()  # before os._exit: it would leave Ray's agents running, orphaned
    _common.quiet_exit(0)


if __name__ == "__main__":
    main()
