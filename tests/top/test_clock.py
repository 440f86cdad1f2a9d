"""The experiment clock: real time read at call time, simulated time moved by hand, and the
process-wide (and per-thread) current clock."""

from __future__ import annotations

import math
import threading
import time

import pytest

from poptune.clock import (
    Clock,
    RealClock,
    SimulatedClock,
    current,
    set_current,
    set_thread_clock,
    use,
)
from poptune.exceptions import TuneConfigError


def test_real_clock_reads_time_when_asked(monkeypatch):
    clock = RealClock()  # made before the patch: it must not have bound the functions
    monkeypatch.setattr(time, "time", lambda: 123.0)
    monkeypatch.setattr(time, "monotonic", lambda: 7.0)
    assert (clock.time(), clock.monotonic()) == (123.0, 7.0)


def test_simulated_clock_moves_only_when_told():
    clock = SimulatedClock(start=5.0, epoch=1_000.0)
    assert (clock.monotonic(), clock.time()) == (5.0, 1_005.0)
    clock.advance(2.5)
    clock.advance(0)
    assert clock.monotonic() == 7.5
    clock.advance_to(10.0)
    clock.advance_to(10.0)
    assert (clock.monotonic(), clock.time()) == (10.0, 1_010.0)


@pytest.mark.parametrize("call, name", [
    (lambda c: c.advance(-1), "`dt`"),
    (lambda c: c.advance(math.inf), "`dt`"),
    (lambda c: c.advance_to(9.0), "`t`"),
    (lambda c: c.advance_to(math.nan), "`t`"),
])
def test_simulated_clock_never_goes_backwards(call, name):
    clock = SimulatedClock(start=10.0)
    with pytest.raises(TuneConfigError, match=name):
        call(clock)
    assert clock.monotonic() == 10.0


def test_simulated_clock_rejects_a_bad_start():
    with pytest.raises(TypeError, match="`start`"):
        SimulatedClock(start="0")  # type: ignore[arg-type]
    with pytest.raises(TuneConfigError, match="`start`"):
        SimulatedClock(start=math.inf)


def test_current_is_real_by_default_and_use_installs_a_clock_for_a_block():
    assert isinstance(current(), RealClock)
    sim = SimulatedClock()
    with use(sim) as installed:
        assert installed is sim and current() is sim
    assert isinstance(current(), RealClock)
    previous = set_current(sim)
    try:
        assert current() is sim
    finally:
        set_current(previous)
    assert isinstance(current(), RealClock)
    with pytest.raises(TypeError, match="`clock`"):
        set_current(time.monotonic)  # type: ignore[arg-type]


def test_a_thread_clock_overrides_the_process_clock_in_that_thread_only():
    sim = SimulatedClock(start=3.0)
    seen: list[Clock] = []

    def body() -> None:
        set_thread_clock(sim)
        seen.append(current())
        set_thread_clock(None)
        seen.append(current())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen[0] is sim and isinstance(seen[1], RealClock)
    assert isinstance(current(), RealClock)


def test_trainable_train_times_its_steps_on_the_experiment_clock():
    from poptune.trainable import Trainable

    sim = SimulatedClock(start=100.0)

    class Slow(Trainable):
        def step(self):
            sim.advance(4.0)
            return {"x": 1}

    with use(sim):
        t = Slow({})
        first, second = t.train(), t.train()
    assert (first["time_this_iter_s"], second["time_total_s"]) == (4.0, 8.0)
