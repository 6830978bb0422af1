"""The API call pool: the most urgent call first, first come first served within a level."""

from __future__ import annotations

import threading

import pytest

from shipway.controller.callpool import CallPool, Priority


def test_queued_calls_run_by_priority_then_arrival() -> None:
    pool = CallPool(1, "test")
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(Priority.STEP, gate.wait)  # holds the one thread
    futures = [
        pool.submit(priority, lambda name=name: order.append(name))
        for priority, name in [
            (Priority.START, "start-1"),
            (Priority.STATUS, "status-1"),
            (Priority.STEP, "step-1"),
            (Priority.RESUME, "resume-1"),
            (Priority.STEP, "step-2"),
            (Priority.STATUS, "status-2"),
            (Priority.RESUME, "resume-2"),
        ]
    ]
    gate.set()
    blocker.result(timeout=5)
    for future in futures:
        future.result(timeout=5)
    assert order == [
        "resume-1", "resume-2", "step-1", "step-2", "status-1", "status-2", "start-1"
    ]  # fmt: skip
    pool.shutdown()


def test_results_and_errors_reach_the_caller() -> None:
    pool = CallPool(2, "test")

    def fail() -> None:
        raise ValueError("nope")

    assert pool.submit(Priority.STEP, lambda: 42).result(timeout=5) == 42
    with pytest.raises(ValueError, match="nope"):
        pool.submit(Priority.STATUS, fail).result(timeout=5)
    pool.shutdown()


def test_a_cancelled_call_never_runs() -> None:
    pool = CallPool(1, "test")
    gate = threading.Event()
    ran: list[int] = []
    blocker = pool.submit(Priority.STEP, gate.wait)
    cancelled = pool.submit(Priority.STEP, lambda: ran.append(1))
    assert cancelled.cancel()
    gate.set()
    blocker.result(timeout=5)
    pool.submit(Priority.STATUS, lambda: None).result(timeout=5)
    assert ran == []
    pool.shutdown()
