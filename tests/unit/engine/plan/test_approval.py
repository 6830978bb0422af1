"""Manual gates (Codeship's ``type: manual``): the planner pauses, resumes, rejects, times out."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from shipway.cli.approve import decision_patch
from shipway.cli.common import CommandError
from shipway.compiler.crd import build_policy
from shipway.compiler.errors import InvalidSpecError
from shipway.controller.snapshot import PipelineSnapshot, approvals_written_at
from shipway.engine.plan.planner import Plan, PlanInput, plan
from shipway.engine.settings import Settings
from shipway.models import PipelinePhase, PipelineStatus
from shipway.models.approval import APPROVAL_RULES, CREATE_RULE
from tests.unit.builders import NOW, REF, compiled, pod, spec

GATED = spec(
    [
        {"name": "tests", "service": "a", "command": "true"},
        {
            "name": "deploy",
            "type": "manual",
            "steps": [
                {"name": "release", "service": "b", "command": "true"},
                {"name": "announce", "service": "c", "command": "true"},
            ],
        },
        {"name": "after", "service": "a", "command": "true"},
    ]
)
TESTS = pod("demo-4a49a-1-tests", "1", phase="Succeeded", exit_code=0)


def run(
    raw: dict[str, Any],
    status: PipelineStatus | None = None,
    pods: list[Any] | None = None,
    *,
    now: Any = NOW,
    ref: Any = REF,
    settings: Settings | None = None,
) -> Plan:
    return plan(
        PlanInput(
            ref, compiled(raw), status or PipelineStatus(), pods or [], now, settings or Settings()
        )
    )


def decided(decision: str, user: str = "alice", gate: str = "spec.steps[1]") -> dict[str, Any]:
    return {**GATED, "approvals": [{"gate": gate, "decision": decision, "user": user}]}


def waiting() -> Plan:
    first = run(GATED)
    return run(GATED, first.status, [TESTS])


def test_the_pipeline_pauses_at_the_gate_once_every_earlier_step_is_over() -> None:
    first = run(GATED)
    assert [c.step_id for c in first.create] == ["1"]
    assert first.status.approvals == [], "the gate is not reached while tests run"
    paused = run(GATED, first.status, [TESTS])
    assert paused.create == ()
    assert paused.status.phase == PipelinePhase.AWAITING_APPROVAL
    (gate,) = paused.status.approvals
    assert (gate.gate, gate.name, gate.phase) == ("spec.steps[1]", "deploy", "Waiting")
    assert gate.waiting_since == paused.status.conditions[0].last_transition_time
    condition = paused.status.conditions[0]
    assert (condition.status, condition.reason) == ("Unknown", "AwaitingApproval")
    assert "shipway approve demo" in (paused.status.message or "")
    assert [e.reason for e in paused.events] == ["WaitingForApproval", "StepSucceeded"]
    assert {s.name: s.phase.value for s in paused.status.steps} == {
        "tests": "Succeeded",
        "release": "Pending",
        "announce": "Pending",
        "after": "Pending",
    }
    assert paused.requeue_after is not None, "looked at again when the approval times out"


def test_waiting_is_stable_across_replans_and_a_restart() -> None:
    paused = waiting()
    later = run(GATED, paused.status, [TESTS], now=NOW + timedelta(hours=30))
    assert later.status.phase == PipelinePhase.AWAITING_APPROVAL
    assert later.status.approvals == paused.status.approvals
    assert later.create == ()
    assert later.events == ()


def test_an_approval_runs_the_gated_steps_in_order_then_the_rest() -> None:
    paused = waiting()
    ref = dataclasses.replace(REF, approvals_at="2026-11-27T12:05:00Z")
    approved = run(decided("Approved"), paused.status, [TESTS], ref=ref)
    assert [c.step_id for c in approved.create] == ["2"]
    (gate,) = approved.status.approvals
    assert (gate.phase, gate.user, gate.decided_at) == (
        "Approved",
        "alice",
        "2026-11-27T12:05:00Z",
    )
    assert approved.status.phase == PipelinePhase.RUNNING
    assert approved.events[0].reason == "Approved"
    assert "approved by alice" in approved.events[0].message
    again = run(decided("Approved"), approved.status, [TESTS], ref=ref)
    assert again.create == (), "the same approval never starts a step twice"


def test_a_rejection_ends_the_pipeline_rejected_and_skips_what_follows() -> None:
    paused = waiting()
    rejected = run(decided("Rejected", user="bob"), paused.status, [TESTS])
    assert rejected.create == ()
    assert rejected.status.phase == PipelinePhase.REJECTED
    assert rejected.status.phase.terminal
    condition = rejected.status.conditions[0]
    assert (condition.status, condition.reason) == ("False", "Rejected")
    assert {s.name: (s.phase.value, s.reason) for s in rejected.status.steps} == {
        "tests": ("Succeeded", "Completed"),
        "release": ("Skipped", "Rejected"),
        "announce": ("Skipped", "Rejected"),
        "after": ("Skipped", "Rejected"),
    }
    assert [e.reason for e in rejected.events] == ["Rejected", "PipelineRejected"]
    assert "rejected by bob" in rejected.events[0].message


def test_an_approval_that_never_comes_fails_the_pipeline_after_the_timeout() -> None:
    paused = waiting()
    settings = Settings(approval_timeout=3600)
    still = run(GATED, paused.status, [TESTS], now=NOW + timedelta(minutes=59), settings=settings)
    assert still.status.phase == PipelinePhase.AWAITING_APPROVAL
    assert still.requeue_after is not None
    assert 59 <= still.requeue_after <= 61
    late = run(GATED, paused.status, [TESTS], now=NOW + timedelta(hours=1), settings=settings)
    assert late.status.phase == PipelinePhase.FAILED
    assert late.status.conditions[0].reason == "ApprovalTimeout"
    assert late.status.approvals[0].phase == "TimedOut"
    assert {s.reason for s in late.status.steps if s.name != "tests"} == {"ApprovalTimeout"}
    assert [e.reason for e in late.events] == ["ApprovalTimeout", "PipelineFailed"]


def test_the_pipelines_approval_timeout_wins_over_the_operators() -> None:
    raw = {**GATED, "approvalTimeout": "10m"}
    first = run(raw)
    paused = run(raw, first.status, [TESTS])
    late = run(raw, paused.status, [TESTS], now=NOW + timedelta(minutes=10))
    assert late.status.conditions[0].reason == "ApprovalTimeout"
    assert "10m" in (late.status.approvals[0].message or "")


def test_time_at_a_gate_does_not_count_against_the_pipeline_timeout() -> None:
    raw = {**GATED, "timeout": "1h"}
    first = run(raw)
    paused = run(raw, first.status, [TESTS])
    much_later = NOW + timedelta(hours=5)
    approved = run({**decided("Approved"), "timeout": "1h"}, paused.status, [TESTS], now=much_later)
    assert approved.status.phase == PipelinePhase.RUNNING
    (create,) = approved.create
    assert create.active_deadline is not None
    assert create.active_deadline > 3000


def test_a_gate_filtered_out_by_its_tag_does_not_wait() -> None:
    raw = spec(
        [
            {"name": "tests", "service": "a", "command": "true"},
            {"type": "manual", "tag": "main", "steps": [{"name": "ship", "service": "b"}]},
        ],
        ci={"branch": "feature"},
    )
    first = run(raw)
    done = run(raw, first.status, [TESTS])
    assert done.status.phase == PipelinePhase.SUCCEEDED
    assert done.status.approvals == []
    assert {s.name: s.reason for s in done.status.steps}["ship"] == "FilteredOut"


def test_a_failure_before_the_gate_fails_without_waiting() -> None:
    failed = pod("demo-4a49a-1-tests", "1", phase="Failed", exit_code=1)
    first = run(GATED)
    result = run(GATED, first.status, [failed])
    assert result.status.phase == PipelinePhase.FAILED
    assert result.status.approvals == []


def test_cancel_while_waiting_cancels() -> None:
    paused = waiting()
    cancelled = run({**GATED, "cancel": True}, paused.status, [TESTS])
    assert cancelled.status.phase == PipelinePhase.CANCELLED


@pytest.mark.parametrize(
    "steps",
    [
        [{"type": "parallel", "steps": [{"type": "manual", "steps": [{"service": "a"}]}]}],
        [{"service": "a", "on_fail": [{"type": "manual", "steps": [{"service": "a"}]}]}],
    ],
)
def test_a_gate_inside_a_parallel_group_or_on_fail_is_refused(steps: list[Any]) -> None:
    with pytest.raises(InvalidSpecError) as info:
        compiled(spec(steps))
    assert "a manual group pauses the whole pipeline" in str(info.value)


def test_the_cli_patch_adds_one_decision_under_the_callers_name() -> None:
    paused = waiting()
    body = {
        "metadata": {"name": "demo", "resourceVersion": "42"},
        "spec": {"approvals": []},
        "status": paused.status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    patch, entry = decision_patch(body, "system:serviceaccount:ci:approver", "Approved")
    assert entry["gate"] == "spec.steps[1]"
    assert patch == {
        "metadata": {"resourceVersion": "42"},
        "spec": {
            "approvals": [
                {
                    "gate": "spec.steps[1]",
                    "decision": "Approved",
                    "user": "system:serviceaccount:ci:approver",
                }
            ]
        },
    }
    with pytest.raises(CommandError, match="not waiting for approval"):
        decision_patch(
            {"metadata": {"name": "demo"}, "status": {"phase": "Running"}}, "a", "Approved"
        )


def test_the_decision_time_is_the_api_servers_write_of_spec_approvals() -> None:
    managed = [
        {
            "manager": "kubectl",
            "time": "2026-11-27T11:00:00Z",
            "fieldsV1": {"f:spec": {"f:steps": {}}},
        },
        {
            "manager": "shipway",
            "time": "2026-11-27T12:05:00Z",
            "fieldsV1": {"f:spec": {"f:approvals": {}}},
        },
        {"manager": "op", "time": "2026-11-27T12:06:00Z", "fieldsV1": {"f:status": {}}},
    ]
    assert approvals_written_at(managed) == "2026-11-27T12:05:00Z"
    assert approvals_written_at(None) is None
    body = {"metadata": {"name": "demo", "managedFields": managed}, "spec": {}}
    assert PipelineSnapshot.from_body(body).ref.approvals_at == "2026-11-27T12:05:00Z"


def test_the_policy_checks_the_caller_and_refuses_decisions_at_create() -> None:
    """The identity check lives in the API server: its rules compare with request.userInfo
    and ask the authorizer for the approve verb, and a new Pipeline carries no decision."""
    docs = build_policy()
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    assert names == [
        "pipelines.shipway.dev",
        "pipelines-approvals.shipway.dev",
        "pipelines-create.shipway.dev",
    ]
    text = " ".join(rule["expression"] for rule in APPROVAL_RULES)
    assert "request.userInfo.username" in text
    assert ".check('approve').allowed()" in text
    assert "request.userInfo.groups" in text
    assert "size(object.spec.approvals) == 0" in CREATE_RULE["expression"]


def test_the_policy_refuses_decisions_on_a_pipeline_that_has_ended() -> None:
    """The phases the policy treats as over are exactly the terminal ones."""
    (rule,) = [r for r in APPROVAL_RULES if "'Waiting'" in r["expression"]]
    listed = rule["expression"].split("in [", 1)[1].split("]", 1)[0]
    assert {p.strip(" '") for p in listed.split(",")} == {
        p.value for p in PipelinePhase if p.terminal
    }


def test_steps_after_an_approval_see_ci_build_approved() -> None:
    from shipway.engine.cienv import ci_environment

    assert "CI_BUILD_APPROVED" not in dict(ci_environment(REF, compiled(GATED)))
    assert dict(ci_environment(REF, compiled(decided("Approved"))))["CI_BUILD_APPROVED"] == "true"
    assert "CI_BUILD_APPROVED" not in dict(ci_environment(REF, compiled(decided("Rejected"))))
