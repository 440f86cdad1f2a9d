"""The toy tune function of the Syne Tune tuner tests: five epochs of 10 simulated seconds."""

from __future__ import annotations

from poptune.syne_tune import Reporter
from poptune.syne_tune.config_space import loguniform, randint

SPACE = {"lr": loguniform(1e-3, 1.0), "width": randint(1, 4), "epochs": 5}


def objective(lr, width, epochs):
    from poptune import simulation

    report = Reporter()
    for epoch in range(1, epochs + 1):
        simulation.advance(10.0)
        report(epoch=epoch, loss=lr / epoch + width * 0.01)
