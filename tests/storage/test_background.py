"""The background I/O thread: batches in order, and no hang when a Ctrl-C lands mid hand-over."""

from __future__ import annotations

import threading

from poptune.storage.background import BackgroundIO


def test_tasks_run_in_submission_order_across_batches() -> None:
    io = BackgroundIO(batch_size=3)  # a full batch is handed over without release()
    out: list[int] = []
    for i in range(10):
        io.submit(out.append, i)
    io.drain()
    assert out == list(range(10))
    io.close()


def test_a_lost_wake_up_does_not_hang_drain() -> None:
    """A KeyboardInterrupt between handing a batch over and waking the thread (the main
    thread takes signals at any bytecode) must not leave drain() waiting forever: it hung a
    Ctrl-C'd driver with queue.Queue.join()."""
    io = BackgroundIO()
    out: list[int] = []
    with io._cond:  # what release() does, minus the notify an interrupt skipped
        io._batches.append([(out.append, (1,))])
        io._handed += 1
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (io.drain(), done.set()), daemon=True)
    waiter.start()
    waiter.join(timeout=30)
    assert done.is_set() and out == [1]
    io.close()


def test_drain_returns_when_the_thread_is_gone() -> None:
    io = BackgroundIO()
    io.close()
    io.submit(print, "never run")
    io.drain()  # the thread has ended: nothing can finish the batch, and drain says so by returning
