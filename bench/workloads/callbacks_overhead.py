"""What a callback costs per trial: N one-result no-op trials, 2 at a time, with each kind of
callback a user may pass.

    .venv/bin/python bench/workloads/callbacks_overhead.py [--trials 2000] [--repeat 2]

Kinds: ``none``; ``result`` (a callback with ``on_trial_result`` only); ``complete`` (one
with ``on_trial_complete``: the runner waits for the trial files before calling it, since
it may read them); ``tbx`` (``TBXLoggerCallback``, which imports tensorboardX, and torch when
it is installed). Prints the wall time of ``fit()`` (and of the import for ``tbx``) per kind.
Results go to a fresh directory on /dev/shm when it exists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import poptune as tune


def _trainable(config):
    tune.report({"score": config["x"]})


class OnResult(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        pass


class OnComplete(tune.Callback):
    def on_trial_complete(self, iteration, trials, trial, **info):
        pass


def _callbacks(kind: str) -> list[tune.Callback]:
    if kind == "result":
        return [OnResult()]
    if kind == "complete":
        return [OnComplete()]
    if kind == "tbx":
        from poptune.logger import TBXLoggerCallback

        return [TBXLoggerCallback()]
    return []


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--kinds", default="none,result,complete,tbx")
    args = p.parse_args()
    parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    for _ in range(args.repeat):
        for kind in args.kinds.split(","):
            t0 = time.perf_counter()
            callbacks = _callbacks(kind)
            t_setup = time.perf_counter() - t0
            d = tempfile.mkdtemp(dir=parent)
            try:
                t1 = time.perf_counter()
                tune.Tuner(_trainable, param_space={"x": tune.uniform(0, 1)},
                           tune_config=tune.TuneConfig(num_samples=args.trials,
                                                       max_concurrent_trials=2),
                           run_config=tune.RunConfig(verbose=0, storage_path=d,
                                                     callbacks=callbacks)).fit()
                fit = time.perf_counter() - t1
            finally:
                shutil.rmtree(d, ignore_errors=True)
            print(f"{kind:9s} fit {fit:6.2f} s  ({fit / args.trials * 1e6:5.0f} us/trial)"
                  + (f"  import {t_setup:.2f} s" if t_setup > 0.05 else ""), flush=True)


if __name__ == "__main__":
    main()
