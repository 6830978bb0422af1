"""The work queue: one run per key at a time, events folded, delays, backoff after failures."""

from __future__ import annotations

import asyncio

import pytest

from shipway.controller.workqueue import BACKOFF_CAP, WorkQueue, backoff


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    assert [backoff(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff(100) == BACKOFF_CAP


def test_adds_during_a_run_fold_into_one_more_run() -> None:
    runs: list[str] = []
    gate = asyncio.Event()

    async def work(key: str) -> float | None:
        runs.append(key)
        if len(runs) == 1:
            await gate.wait()
        return None

    async def scenario() -> WorkQueue[str]:
        queue: WorkQueue[str] = WorkQueue(work)
        queue.add("a")
        await asyncio.sleep(0)
        for _ in range(5):
            queue.add("a")
        queue.add("b")  # another key runs at once, beside "a"
        await asyncio.sleep(0.01)
        assert runs == ["a", "b"]
        gate.set()
        while queue.busy():
            await asyncio.sleep(0.01)
        return queue

    queue = asyncio.run(scenario())
    assert runs == ["a", "b", "a"]
    assert not queue._entries, "finished keys leave nothing behind"


def test_the_answer_of_a_run_schedules_the_next_and_a_new_delay_replaces_it() -> None:
    runs: list[float] = []

    async def work(key: str) -> float | None:
        runs.append(asyncio.get_running_loop().time())
        return 0.1 if len(runs) == 1 else None

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(work)
        queue.add("a")
        await asyncio.sleep(0.05)
        assert queue.scheduled("a")
        queue.add_after("a", 10.0)  # replaces the 0.1 s run
        await asyncio.sleep(0.2)
        assert len(runs) == 1
        queue.add_after("a", 0.05)
        await asyncio.sleep(0.15)
        assert len(runs) == 2
        assert not queue.scheduled("a")

    asyncio.run(scenario())


def test_a_failed_run_is_retried_with_backoff_and_a_success_resets_it() -> None:
    calls: list[str] = []
    told: list[tuple[str, str, float]] = []

    async def work(key: str) -> float | None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("API server away")
        return None

    async def scenario() -> WorkQueue[str]:
        queue: WorkQueue[str] = WorkQueue(work, lambda k, e, d: told.append((k, str(e), d)))
        queue.add("a")
        await asyncio.sleep(0.01)
        assert queue.failures("a") == 1
        assert queue.scheduled("a")
        await asyncio.sleep(1.1)  # the first retry comes after 1 s
        return queue

    queue = asyncio.run(scenario())
    assert calls == ["a", "a"]
    assert told == [("a", "API server away", 1.0)]
    assert queue.failures("a") == 0


def test_forget_cancels_the_scheduled_run() -> None:
    calls: list[str] = []

    async def work(key: str) -> float | None:
        calls.append(key)
        return 0.05

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(work)
        queue.add("a")
        await asyncio.sleep(0.01)
        queue.forget("a")
        await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert calls == ["a"]


@pytest.mark.parametrize("stuck", [False, True])
def test_close_waits_for_runs_in_progress_then_cancels_them(stuck: bool) -> None:
    ended: list[str] = []

    async def work(key: str) -> float | None:
        await asyncio.sleep(100 if stuck else 0.05)
        ended.append(key)
        return 30.0

    async def scenario() -> float:
        queue: WorkQueue[str] = WorkQueue(work)
        queue.add("a")
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await queue.close(timeout=0.2)
        queue.add("b")  # closed: ignored
        assert not queue.busy()
        return loop.time() - start

    took = asyncio.run(scenario())
    assert ended == ([] if stuck else ["a"])
    assert took < 2


def _turn_taking(group: bool) -> list[str]:
    """Namespace a's key is due again as soon as each run ends (a big pipeline whose pods
    keep changing); namespace b's key is added during a's first run and takes 50 ms."""
    events: list[str] = []
    a_runs = 0

    async def work(key: tuple[str, str]) -> float | None:
        nonlocal a_runs
        events.append(f"{key[0]} starts")
        if key[0] == "a":
            a_runs += 1
            if a_runs == 1:
                queue.add(("b", "small"))
            if a_runs < 3:
                queue.add(key)  # due again at once
            await asyncio.sleep(0.01)
        else:
            await asyncio.sleep(0.05)
        events.append(f"{key[0]} ends")
        return None

    queue: WorkQueue[tuple[str, str]] = WorkQueue(
        work, group=(lambda key: key[0]) if group else None, yield_after=0.005
    )

    async def scenario() -> None:
        queue.add(("a", "big"))
        await asyncio.sleep(0.01)
        while queue.busy():
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    return events


def test_namespaces_take_turns_instead_of_one_running_back_to_back() -> None:
    assert _turn_taking(group=True) == [
        "a starts",
        "b starts",
        "a ends",
        "b ends",  # a, due again, waited for b's run that started during its own
        "a starts",
        "a ends",
        "a starts",
        "a ends",
    ]
    unfair = _turn_taking(group=False)
    assert unfair.index("a starts", 1) < unfair.index("b ends"), "without groups: back to back"


def test_keys_of_one_namespace_never_wait_for_each_other() -> None:
    starts: list[str] = []

    async def work(key: tuple[str, str]) -> float | None:
        starts.append(key[1])
        if key[1] == "one" and starts.count("one") == 1:
            queue.add(key)
            queue.add(("a", "two"))
            await asyncio.sleep(0.05)
        return None

    queue: WorkQueue[tuple[str, str]] = WorkQueue(work, group=lambda key: key[0])

    async def scenario() -> float:
        began = asyncio.get_running_loop().time()
        queue.add(("a", "one"))
        while queue.busy():
            await asyncio.sleep(0.005)
        return asyncio.get_running_loop().time() - began

    assert asyncio.run(scenario()) < 0.2
    assert starts == ["one", "two", "one"]


def _short_beside_long(yield_after: float) -> list[str]:
    """Namespace b's small key starts namespace a's big one during its first run (0.01 s),
    and is due again at once after each run, as its pods move on; a's run takes 0.2 s."""
    events: list[str] = []
    small_runs = 0

    async def work(key: tuple[str, str]) -> float | None:
        nonlocal small_runs
        if key[0] == "a":
            events.append("a starts")
            await asyncio.sleep(0.2)
            events.append("a ends")
        else:
            small_runs += 1
            events.append("b runs")
            if small_runs == 1:
                queue.add(("a", "big"))
            if small_runs < 3:
                queue.add(key)
            await asyncio.sleep(0.01)
        return None

    queue: WorkQueue[tuple[str, str]] = WorkQueue(
        work, group=lambda key: key[0], yield_after=yield_after
    )

    async def scenario() -> None:
        queue.add(("b", "small"))
        while queue.busy():
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    return events


def test_a_short_run_never_waits_for_another_namespaces_long_one() -> None:
    assert _short_beside_long(yield_after=0.05) == [
        "b runs",
        "a starts",
        "b runs",
        "b runs",
        "a ends",
    ]
    everyone_yields = _short_beside_long(yield_after=0.0)
    assert everyone_yields == ["b runs", "a starts", "a ends", "b runs", "b runs"]
