"""The API call pool: the most urgent call first, first come first served within a level."""

from __future__ import annotations

import contextvars
import functools
import threading
from concurrent.futures import Future

import pytest

from shipway.controller.callpool import GROUP, CallPool, FairQueue, Priority


def test_queued_calls_run_by_priority_then_arrival() -> None:
    pool = CallPool(1, "test")
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(Priority.STEP, gate.wait)  # holds the one thread
    futures = [
        pool.submit(priority, functools.partial(order.append, name))
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


def test_namespaces_take_turns_and_each_keeps_its_own_priorities() -> None:
    queue = FairQueue()
    for i in range(4):  # the big pipeline's burst first
        queue.put("big", Priority.STEP, f"big-step-{i}")
    queue.put("big", Priority.STATUS, "big-status")
    queue.put("small", Priority.START, "small-start")
    queue.put("small", Priority.STEP, "small-step")
    served = [queue.get() for _ in range(len(queue))]
    assert served == [
        "big-step-0", "small-step", "big-step-1", "small-start",
        "big-step-2", "big-step-3", "big-status",
    ]  # fmt: skip
    with pytest.raises(IndexError):
        queue.get()


def test_a_neighbours_first_pod_does_not_wait_behind_a_big_pipelines_burst() -> None:
    """The calls are grouped by the namespace of the work that makes them (``GROUP``)."""
    pool = CallPool(1, "test")
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(Priority.STEP, gate.wait)

    def submit(namespace: str, priority: Priority, name: str) -> Future[None]:
        def inside() -> Future[None]:
            GROUP.set(namespace)
            return pool.submit(priority, lambda: order.append(name))

        return contextvars.copy_context().run(inside)

    futures = [submit("tenant", Priority.STEP, f"big-{i}") for i in range(20)]
    futures.append(submit("neighbour", Priority.START, "small"))
    gate.set()
    blocker.result(timeout=5)
    for future in futures:
        future.result(timeout=5)
    assert order.index("small") == 1, order
    assert GROUP.get() is None, "the namespace was set in a copy of the context only"
    pool.shutdown()
