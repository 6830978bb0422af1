"""Issue 18 in the pure planner: foreign pods, waits that say why, limits that end waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shipway.engine.observe import PodView
from shipway.engine.plan.failures import abort_plan
from shipway.engine.plan.planner import Plan, PlanInput, finished_plan, plan
from shipway.engine.settings import Settings
from shipway.models import PipelinePhase, PipelineStatus, StepPhase
from tests.unit.builders import NOW, REF, WALKTHROUGH, compiled, pod, spec

WRITE = "demo-4a49a-1-write-artifact"


def run(
    raw: dict[str, Any],
    status: PipelineStatus | None = None,
    pods: list[PodView] | None = None,
    **kw: Any,
) -> Plan:
    return plan(
        PlanInput(
            REF, compiled(raw), status or PipelineStatus(), pods or [], kw.pop("now", NOW), **kw
        )
    )


def step(status: PipelineStatus, name: str) -> Any:
    return next(s for s in status.steps if s.name == name)


def test_a_foreign_pod_with_the_steps_name_is_never_read_nor_stopped() -> None:
    first = run(WALKTHROUGH)
    foreign = pod(WRITE, "1", phase="Succeeded", exit_code=0, owner_uid="someone-else")
    again = run(WALKTHROUGH, first.status, [foreign])
    write = step(again.status, "write artifact")
    assert (write.phase, write.reason) == ("Failed", "PodDeleted"), "its own pod is gone"
    assert write.exit_code is None, "the foreign pod's result is not the step's"
    cancelled = run({**WALKTHROUGH, "cancel": True}, first.status, [pod(WRITE, "1", owner_uid="x")])
    assert (cancelled.stop, cancelled.delete) == ((), ())
    done = finished_plan(cancelled.status, [pod("stray", "1", owner_uid="x")], REF.uid)
    assert (done.stop, done.delete) == ((), ())


def test_an_unschedulable_pod_says_why_then_fails_after_the_grace() -> None:
    first = run(WALKTHROUGH)
    why = "0/3 nodes are available: 3 Insufficient memory."
    stuck = pod(WRITE, "1", phase="Pending", node=None, created=-30, unschedulable=why)
    waiting = run(WALKTHROUGH, first.status, [stuck], settings=Settings(unschedulable_grace=60))
    write = step(waiting.status, "write artifact")
    assert (write.phase, write.reason, write.message) == ("Running", "Unschedulable", why)
    assert waiting.requeue_after == 30
    late = run(
        WALKTHROUGH,
        waiting.status,
        [stuck],
        settings=Settings(unschedulable_grace=60),
        now=NOW + timedelta(seconds=31),
    )
    write = step(late.status, "write artifact")
    assert (write.phase, write.reason) == ("Failed", "Unschedulable")
    assert write.message.startswith("no node could run the step's pod for 1m: 0/3 nodes")
    assert late.delete == (WRITE,), "a pod that never got a node is deleted"
    assert late.status.phase == PipelinePhase.FAILED


def test_a_pod_waiting_for_its_claims_volume_is_not_shown_unschedulable_at_first() -> None:
    """An Immediate StorageClass: the pod is made with its claim and the scheduler turns it
    away until the provisioner has bound it; for the first 30 s that is ordinary waiting."""
    first = run(WALKTHROUGH)
    why = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    binding = pod(WRITE, "1", phase="Pending", node=None, created=-2, unschedulable=why)
    settings = Settings(unschedulable_grace=600)
    waiting = run(WALKTHROUGH, first.status, [binding], settings=settings)
    write = step(waiting.status, "write artifact")
    assert (write.phase, write.reason, write.message) == ("Running", None, None)
    assert waiting.requeue_after == 28, "looked at again when the wait would be shown"
    assert waiting.delete == ()
    later = run(
        WALKTHROUGH, waiting.status, [binding], settings=settings, now=NOW + timedelta(seconds=29)
    )
    write = step(later.status, "write artifact")
    assert (write.phase, write.reason, write.message) == ("Running", "Unschedulable", why)
    assert later.requeue_after == 600 - 31
    other = "0/1 nodes are available: 1 Insufficient memory."
    stuck = pod(WRITE, "1", phase="Pending", node=None, created=-2, unschedulable=other)
    shown = step(
        run(WALKTHROUGH, first.status, [stuck], settings=settings).status, "write artifact"
    )
    assert (shown.reason, shown.message) == ("Unschedulable", other), "any other reason at once"


def test_a_pipeline_without_a_timeout_gets_the_operators_default() -> None:
    first = run(WALKTHROUGH, settings=Settings(default_timeout=3600))
    assert first.create[0].active_deadline == 3600
    late = run(
        WALKTHROUGH,
        first.status,
        [pod(WRITE, "1")],
        settings=Settings(default_timeout=3600),
        now=NOW + timedelta(hours=1, seconds=1),
    )
    assert late.status.phase == PipelinePhase.FAILED
    assert late.status.message == (
        "the pipeline ran longer than the operator's default timeout (1h)"
    )
    assert late.stop == (WRITE,)
    unlimited = run(WALKTHROUGH, settings=Settings(default_timeout=None))
    assert unlimited.create[0].active_deadline is None
    own = run({**WALKTHROUGH, "timeout": "10m"}, settings=Settings(default_timeout=3600))
    assert own.create[0].active_deadline == 600, "the pipeline's own timeout wins"


def test_a_pipeline_runs_at_most_the_allowed_pods_at_once() -> None:
    raw = spec(
        [
            {
                "type": "parallel",
                "steps": [{"service": "a", "command": f"echo {i}"} for i in range(5)],
            }
        ]
    )
    limited = Settings(max_running_pods=2)
    first = run(raw, settings=limited)
    assert len(first.create) == 2
    waiting = [s for s in first.status.steps if s.reason == "Throttled"]
    assert len(waiting) == 3
    assert all(s.phase == StepPhase.PENDING for s in waiting)
    assert waiting[0].message == "waiting: 2 pods of this pipeline run at once"
    assert first.status.phase == PipelinePhase.RUNNING
    done = pod(first.create[0].name, first.create[0].step_id, phase="Succeeded", exit_code=0)
    running = pod(first.create[1].name, first.create[1].step_id)
    second = run(raw, first.status, [done, running], settings=limited)
    assert len(second.create) == 1, "one finished, one more starts"
    assert second.status.phase == PipelinePhase.RUNNING
    assert len(run(raw, settings=Settings(max_running_pods=None)).create) == 5


def test_a_pod_refused_by_a_quota_waits_and_says_so() -> None:
    message = 'pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1'
    held = run(WALKTHROUGH, waiting={WRITE: message})
    assert held.create == ()
    write = step(held.status, "write artifact")
    assert (write.phase, write.reason, write.message) == (
        "Pending",
        "ExceededResourceQuota",
        message,
    )
    assert held.status.phase == PipelinePhase.PENDING
    condition = held.status.conditions[0]
    assert (condition.status, condition.reason) == ("Unknown", "ExceededResourceQuota")
    assert condition.message == f"waiting for quota: {message}"
    assert held.requeue_after == 10
    later = run(WALKTHROUGH, held.status)
    assert [c.name for c in later.create] == [WRITE], "tried again once the quota allows"
    assert later.status.conditions[0].reason == "Running"


def test_abort_stops_the_pods_and_fails_the_pipeline_saying_why() -> None:
    raw = spec(
        [
            {
                "type": "parallel",
                "steps": [{"service": "a", "command": f"echo {i}"} for i in range(2)],
            }
        ]
    )
    first = run(raw)
    names = [c.name for c in first.create]
    live = [pod(names[0], "1")]  # the second pod is not there (yet)
    result = abort_plan(
        REF, first.status, live, reason="ClaimRejected", message="the claim was refused", now=NOW
    )
    assert result.stop == (names[0],)
    assert result.status.phase == PipelinePhase.FAILED
    assert result.status.message == "the claim was refused"
    assert result.status.conditions[0].reason == "ClaimRejected"
    assert [s.phase for s in result.status.steps] == ["Failed", "Skipped"]
    assert result.events[-1].reason == "PipelineFailed"
    assert "the claim was refused" in result.events[-1].message
    compact = abort_plan(
        REF,
        first.status,
        live,
        reason="StatusTooLarge",
        message="too big",
        now=NOW,
        keep_steps=False,
    )
    assert compact.status.steps == []
    assert compact.stop == (names[0],), "pods no status records are stopped too"
    assert compact.events[-1].message == "too big"
    again = abort_plan(
        REF, compact.status, live, reason="StatusTooLarge", message="too big", now=NOW
    )
    assert again.status == compact.status, "a finished pipeline stays as it is"
