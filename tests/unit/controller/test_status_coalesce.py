"""A big pipeline writes its status on its own schedule: at most one write per
COALESCE_SECONDS while only its steps move; nothing is lost or repeated, even by a restart."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from shipway.controller.reconciler import Reconciler
from shipway.controller.reconciler.coalesce import COALESCE_SECONDS, COALESCE_STEPS, hold_for
from shipway.engine.plan.planner import Plan
from shipway.models import PipelinePhase, PipelineStatus
from tests.unit.builders import NOW
from tests.unit.fakekube import KEY, FakeKube, snapshot

STEPS = COALESCE_STEPS + 20


def big(steps: int = STEPS) -> dict[str, Any]:
    """``steps`` no-op steps, one after the other."""
    return {
        "services": {"a": {"image": "busybox:1.36"}},
        "steps": [{"name": f"s{i}", "service": "a", "command": "true"} for i in range(steps)],
    }


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _running(kube: FakeKube) -> list[str]:
    return [n for n, p in kube.pods.items() if p["status"].get("phase") == "Pending"]


async def _step(rec: Reconciler, kube: FakeKube, spec: dict[str, Any]) -> Plan | None:
    """Every running pod ends, then one reconcile (as a watch event would bring)."""
    for name in _running(kube):
        kube.finish(name, 0)
    result = await rec.reconcile(snapshot(kube, spec), kube.views(), KEY)
    await asyncio.gather(*rec.background)
    return result


def test_a_big_pipelines_step_ends_wait_for_one_write_and_their_events_for_it() -> None:
    async def scenario() -> None:
        kube, clock = FakeKube(), Clock()
        rec = Reconciler(kube, clock=clock)
        spec = big()
        await rec.reconcile(snapshot(kube, spec), kube.views(), KEY)
        assert kube.writes.count("patch status") == 1  # Running: at once
        for _ in range(3):  # three steps end within the interval: no write, no Event
            clock.tick(0.2)
            held = await _step(rec, kube, spec)
            assert held is not None
            assert held.requeue_after is not None
            assert held.requeue_after <= COALESCE_SECONDS
        assert kube.writes.count("patch status") == 1
        assert kube.events == []
        assert kube.status["progress"] == f"0/{STEPS}"
        # the decided status moved on all the same: one pod per step, in order
        assert len(kube.pods) == 4
        clock.tick(COALESCE_SECONDS)
        await rec.reconcile(snapshot(kube, spec), kube.views(), KEY)  # the requeue
        await asyncio.gather(*rec.background)
        assert kube.writes.count("patch status") == 2
        assert kube.status["progress"] == f"3/{STEPS}"
        assert [r for r, _ in kube.events] == ["StepSucceeded"] * 3

    asyncio.run(scenario())


def test_a_small_pipeline_writes_every_change() -> None:
    async def scenario() -> None:
        kube, clock = FakeKube(), Clock()
        rec = Reconciler(kube, clock=clock)
        spec = big(COALESCE_STEPS - 1)
        await rec.reconcile(snapshot(kube, spec), kube.views(), KEY)
        for _ in range(3):
            clock.tick(0.1)
            await _step(rec, kube, spec)
        assert kube.writes.count("patch status") == 4
        assert len(kube.events) == 3

    asyncio.run(scenario())


def test_a_restart_while_a_write_waits_loses_and_repeats_nothing() -> None:
    async def scenario() -> None:
        kube, clock = FakeKube(), Clock()
        spec = big()
        rec = Reconciler(kube, clock=clock)
        await rec.reconcile(snapshot(kube, spec), kube.views(), KEY)
        clock.tick(1.5)
        await _step(rec, kube, spec)  # written: s0 done
        for _ in range(2):
            clock.tick(0.1)
            await _step(rec, kube, spec)  # s1, s2 done: held
        assert kube.status["progress"] == f"1/{STEPS}"
        # the operator dies here; a new one reads the status and the pods
        fresh = Reconciler(kube, clock=clock)
        clock.tick(0.1)
        await fresh.reconcile(snapshot(kube, spec), kube.views(), KEY)
        await asyncio.gather(*fresh.background)
        assert kube.status["progress"] == f"3/{STEPS}"
        creates = [w for w in kube.writes if w.startswith("create pod")]
        assert len(creates) == len(set(creates)) == 4, "no step started twice"
        assert [r for r, _ in kube.events] == ["StepSucceeded"] * 3, "each step's Event once"
        clock.tick(COALESCE_SECONDS)
        while (result := await _step(fresh, kube, spec)) and not result.status.phase.terminal:
            clock.tick(0.4)
        assert kube.status["phase"] == PipelinePhase.SUCCEEDED
        assert kube.status["progress"] == f"{STEPS}/{STEPS}"
        assert len(kube.events) == STEPS, "one Event per step, the last one telling the end"
        assert kube.writes.count("patch status") < STEPS // 2

    asyncio.run(scenario())


def _plan(**kw: Any) -> Plan:
    return Plan(status=PipelineStatus(phase=PipelinePhase.RUNNING), **kw)


def test_only_the_steps_progress_waits() -> None:
    steps = [{"id": str(i)} for i in range(COALESCE_STEPS)]
    written = {"phase": "Running", "progress": "0/100", "steps": steps}
    moved = {**written, "progress": "1/100", "steps": [{"id": "0", "phase": "S"}, *steps[1:]]}
    assert hold_for(moved, written, result=_plan(), since_write=0.3) == COALESCE_SECONDS - 0.3
    assert hold_for(moved, written, result=_plan(), since_write=COALESCE_SECONDS) is None
    assert hold_for(moved, written, result=_plan(), since_write=None) is None
    assert hold_for({**moved, "message": "quota"}, written, result=_plan(), since_write=0.3) is None
    assert hold_for({**moved, "phase": "Failed"}, written, result=_plan(), since_write=0.3) is None
    assert hold_for(moved, written, result=_plan(stop=("p",)), since_write=0.3) is None
    assert hold_for(moved, written, result=_plan(delete=("p",)), since_write=0.3) is None
    small = {**moved, "steps": moved["steps"][:-1]}
    assert hold_for(small, written, result=_plan(), since_write=0.3) is None
