"""A plan reuses the recorded entries of the steps it did not change, and the status write
reuses their JSON: the same status as built from scratch, at a fraction of the cost."""

from __future__ import annotations

from shipway.controller.snapshot import dump_status
from shipway.engine.observe import PodView
from shipway.engine.plan.planner import PlanInput, plan
from shipway.models import PipelineStatus, StepPhase
from tests.unit.builders import NOW, REF, compiled, pod, spec

SERIAL = spec([{"name": f"s{i}", "service": "a", "command": "true"} for i in range(1, 6)])


def _plan(status: PipelineStatus, pods: list[PodView]) -> PipelineStatus:
    return plan(PlanInput(REF, compiled(SERIAL), status, pods, NOW)).status


def _fresh(status: PipelineStatus) -> PipelineStatus:
    """The same status as new objects (what a restarted operator reads)."""
    return PipelineStatus.model_validate_json(status.model_dump_json(by_alias=True))


def test_unchanged_steps_keep_their_recorded_entry_and_changed_ones_get_new() -> None:
    first = _plan(PipelineStatus(), [])
    running = pod(first.steps[0].pod or "", "1")
    again = _plan(first, [running])
    assert [a is b for a, b in zip(again.steps, first.steps, strict=True)] == [True] * 5
    done = pod(first.steps[0].pod or "", "1", phase="Succeeded", exit_code=0)
    second = _plan(first, [done])
    assert second.steps[0] is not first.steps[0]
    assert second.steps[0].phase == StepPhase.SUCCEEDED
    assert second.steps[1] is not first.steps[1]
    assert second.steps[1].phase == StepPhase.RUNNING
    assert all(a is b for a, b in zip(second.steps[2:], first.steps[2:], strict=True))


def test_reuse_changes_nothing_in_what_is_decided() -> None:
    """Planned from the recorded objects or from fresh copies of them: the same status."""
    status, pods = PipelineStatus(), list[PodView]()
    for index in range(5):
        decided = _plan(status, pods)
        assert decided == _plan(_fresh(status), pods)
        name = decided.steps[index].pod or ""
        pods = [*pods, pod(name, str(index + 1), phase="Succeeded", exit_code=0)]
        status = decided
    assert _plan(status, pods).steps[-1].phase == StepPhase.SUCCEEDED


def test_a_changed_step_spec_is_not_taken_for_its_recorded_entry() -> None:
    first = _plan(PipelineStatus(), [])
    raw = spec([{"name": f"t{i}", "service": "a", "command": "true"} for i in range(1, 6)])
    other = plan(PlanInput(REF, compiled(raw), first, [], NOW)).status
    assert [s.name for s in other.steps] == ["t1", "t2", "t3", "t4", "t5"]
    assert not any(a is b for a, b in zip(other.steps, first.steps, strict=True))


def test_the_dump_reusing_earlier_entries_is_the_full_dump() -> None:
    first = _plan(PipelineStatus(), [])
    done = pod(first.steps[0].pod or "", "1", phase="Succeeded", exit_code=0)
    second = _plan(first, [done])
    reused = dump_status(second, reuse=(first, dump_status(first)))
    assert reused == dump_status(second)
    assert "attempt" not in reused["steps"][0]
    assert "attempts" not in reused["steps"][0]
    # a dump of another shape is never borrowed from
    assert dump_status(second, reuse=(first, {"steps": []})) == dump_status(second)
