"""The planner decides what runs next from spec + status + pods, and nothing else."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from shipway.engine.observe import ContainerView, PodView
from shipway.engine.plan.planner import Plan, PlanInput, Refusal, plan
from shipway.engine.settings import Settings
from shipway.models import PipelinePhase, PipelineStatus, StepPhase
from tests.unit.builders import NOW, REF, WALKTHROUGH, compiled, pod, spec


def step(status: PipelineStatus, name: str) -> Any:
    return next(s for s in status.steps if s.name == name)


def phases(status: PipelineStatus) -> dict[str, str]:
    return {s.name: s.phase.value for s in status.steps}


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


def test_walkthrough_starts_with_the_first_step_only() -> None:
    first = run(WALKTHROUGH)
    assert [c.name for c in first.create] == ["demo-4a49a-1-write-artifact"]
    assert first.ensure_claim
    assert first.status.phase == PipelinePhase.RUNNING
    assert phases(first.status) == {"write artifact": "Running", "check artifact": "Pending"}
    assert first.status.progress == "0/2"
    assert first.status.current_step == "write artifact"
    assert first.events == (), "the status write marking it Running tells the start"


def test_the_next_step_starts_when_the_previous_pod_succeeds() -> None:
    first = run(WALKTHROUGH)
    done = pod("demo-4a49a-1-write-artifact", "1", phase="Succeeded", exit_code=0)
    second = run(WALKTHROUGH, first.status, [done])
    assert [c.name for c in second.create] == ["demo-4a49a-2-check-artifact"]
    assert step(second.status, "write artifact").exit_code == 0
    assert second.status.progress == "1/2"
    assert [e.reason for e in second.events] == ["StepSucceeded"]
    assert "started 'check artifact'" in second.events[0].message
    finished = run(
        WALKTHROUGH,
        second.status,
        [done, pod("demo-4a49a-2-check-artifact", "2", phase="Succeeded", exit_code=0)],
    )
    assert finished.create == ()
    assert finished.status.phase == PipelinePhase.SUCCEEDED
    assert finished.status.conditions[0].status == "True"
    assert finished.status.finished_at is not None
    # the last step's Event tells the pipeline's result: one Event per step
    assert [e.reason for e in finished.events] == ["PipelineSucceeded"]
    assert finished.events[0].message.startswith("step 'check artifact' succeeded")
    assert finished.events[0].message.endswith("; pipeline succeeded")


def test_planning_twice_on_the_same_inputs_creates_nothing_new() -> None:
    first = run(WALKTHROUGH)
    again = run(WALKTHROUGH, first.status, [pod("demo-4a49a-1-write-artifact", "1", node=None)])
    assert again.create == ()
    assert again.status == first.status
    assert again.events == ()
    scheduled = run(WALKTHROUGH, first.status, [pod("demo-4a49a-1-write-artifact", "1")])
    assert scheduled.status == first.status.model_copy(update={"node_name": "node-1"})


def test_restart_after_create_but_before_status_write_does_not_duplicate() -> None:
    """The operator died after creating pod 1: the status is empty but the pod exists."""
    resumed = run(WALKTHROUGH, PipelineStatus(), [pod("demo-4a49a-1-write-artifact", "1")])
    assert resumed.create == ()
    assert step(resumed.status, "write artifact").pod == "demo-4a49a-1-write-artifact"


def test_restart_after_the_step_finished_unrecorded_moves_on() -> None:
    resumed = run(
        WALKTHROUGH,
        PipelineStatus(),
        [pod("demo-4a49a-1-write-artifact", "1", phase="Succeeded", exit_code=0)],
    )
    assert [c.step_id for c in resumed.create] == ["2"]


PARALLEL = spec(
    [
        {"service": "a", "name": "build", "command": "true"},
        {
            "type": "parallel",
            "name": "tests",
            "steps": [
                {"service": "b", "name": "unit", "command": "true"},
                {
                    "service": "c",
                    "name": "lint",
                    "command": "true",
                    "on_fail": [{"name": "lint-report", "command": "cat report"}],
                },
            ],
            "on_fail": [{"service": "a", "name": "notify", "command": "echo failed"}],
        },
        {"service": "a", "name": "deploy", "command": "true"},
    ]
)


def _status_after(raw: dict[str, Any], pods: list[PodView]) -> Plan:
    """Plan until nothing new starts; pods the test does not give are created running."""
    given = {p.name for p in pods}
    live = list(pods)
    result = run(raw)
    for _ in range(10):
        live += [pod(c.name, c.step_id, c.attempt) for c in result.create if c.name not in given]
        result = run(raw, result.status, live)
        if not result.create:
            break
    return result


def test_parallel_children_start_together() -> None:
    built = [pod("demo-4a49a-1-build", "1", phase="Succeeded", exit_code=0)]
    result = _status_after(PARALLEL, built)
    assert phases(result.status)["unit"] == "Running"
    assert phases(result.status)["lint"] == "Running"
    assert {step(result.status, n).group for n in ("unit", "lint")} == {"tests"}


def test_a_failure_lets_siblings_finish_skips_the_rest_and_runs_on_fail() -> None:
    pods = [
        pod("demo-4a49a-1-build", "1", phase="Succeeded", exit_code=0),
        pod("demo-4a49a-2-unit", "2"),
        pod("demo-4a49a-3-lint", "3", phase="Failed", exit_code=3),
    ]
    result = _status_after(PARALLEL, pods)
    assert phases(result.status) == {
        "build": "Succeeded",
        "unit": "Running",
        "lint": "Failed",
        "lint-report": "Running",
        "notify": "Pending",
        "deploy": "Skipped",
    }
    assert step(result.status, "lint").exit_code == 3
    assert step(result.status, "lint").message == "container exited with a 3 code"
    assert step(result.status, "deploy").reason == "PreviousStepFailed"
    assert result.status.phase == PipelinePhase.RUNNING
    pods[1] = pod("demo-4a49a-2-unit", "2", phase="Succeeded", exit_code=0)
    pods.append(pod("demo-4a49a-4-lint-report", "4", phase="Succeeded", exit_code=0))
    result = run(PARALLEL, result.status, pods)
    assert [c.name for c in result.create] == ["demo-4a49a-5-notify"]
    pods.append(pod("demo-4a49a-5-notify", "5", phase="Succeeded", exit_code=0))
    result = run(PARALLEL, result.status, pods)
    assert result.status.phase == PipelinePhase.FAILED, "on_fail never turns a failure into success"
    assert result.status.conditions[0].status == "False"
    assert result.status.progress == "4/4"
    assert "lint" in (result.status.message or "")


def test_on_fail_steps_are_skipped_when_nothing_fails() -> None:
    pods = [
        pod("demo-4a49a-1-build", "1", phase="Succeeded", exit_code=0),
        pod("demo-4a49a-2-unit", "2", phase="Succeeded", exit_code=0),
        pod("demo-4a49a-3-lint", "3", phase="Succeeded", exit_code=0),
        pod("demo-4a49a-6-deploy", "6", phase="Succeeded", exit_code=0),
    ]
    result = _status_after(PARALLEL, pods)
    assert result.status.phase == PipelinePhase.SUCCEEDED
    assert step(result.status, "notify").phase == StepPhase.SKIPPED
    assert step(result.status, "lint-report").reason == "NotNeeded"


def test_filtered_steps_are_skipped_and_fail_nothing() -> None:
    raw = spec(
        [
            {"service": "a", "name": "only-release", "command": "x", "tag": "^v"},
            {"service": "a", "name": "always", "command": "x"},
        ],
        ci={"branch": "main"},
    )
    result = run(raw)
    assert phases(result.status) == {"only-release": "Skipped", "always": "Running"}
    assert step(result.status, "only-release").reason == "FilteredOut"
    assert [c.step_id for c in result.create] == ["2"]


def test_everything_filtered_out_succeeds_without_pods() -> None:
    result = run(spec([{"service": "a", "command": "x", "tag": "never"}], ci={"branch": "main"}))
    assert result.create == ()
    assert result.status.phase == PipelinePhase.SUCCEEDED


def test_a_pod_deleted_mid_run_fails_the_step_never_succeeds() -> None:
    first = run(WALKTHROUGH)
    result = run(WALKTHROUGH, first.status, [])  # the shell confirmed the pod is gone
    assert step(result.status, "write artifact").phase == StepPhase.FAILED
    assert step(result.status, "write artifact").reason == "PodDeleted"
    assert result.status.phase == PipelinePhase.FAILED


def test_a_pod_being_deleted_that_exits_zero_is_still_a_failure() -> None:
    first = run(WALKTHROUGH)
    deleted = pod(
        "demo-4a49a-1-write-artifact", "1", phase="Succeeded", exit_code=0, deleted=True, created=-2
    )
    result = run(WALKTHROUGH, first.status, [deleted])
    assert step(result.status, "write artifact").reason == "PodDeleted"


def test_an_evicted_pod_fails_the_step() -> None:
    first = run(WALKTHROUGH)
    evicted = pod(
        "demo-4a49a-1-write-artifact",
        "1",
        phase="Failed",
        reason="Evicted",
        disruption="TerminationByKubelet",
    )
    result = run(WALKTHROUGH, first.status, [evicted])
    assert step(result.status, "write artifact").phase == StepPhase.FAILED
    assert step(result.status, "write artifact").reason == "Evicted"


def test_a_missing_image_fails_the_step_after_the_grace_period() -> None:
    first = run(WALKTHROUGH)
    stuck = pod(
        "demo-4a49a-1-write-artifact", "1", phase="Pending", waiting="ImagePullBackOff", created=-10
    )
    waiting = run(WALKTHROUGH, first.status, [stuck], settings=Settings(start_grace=60))
    assert step(waiting.status, "write artifact").phase == StepPhase.RUNNING
    assert waiting.requeue_after == 50
    later = run(
        WALKTHROUGH,
        waiting.status,
        [stuck],
        now=NOW + timedelta(seconds=55),
        settings=Settings(start_grace=60),
    )
    failed = step(later.status, "write artifact")
    assert failed.phase == StepPhase.FAILED
    assert failed.reason == "ImagePullBackOff"
    assert later.stop == ("demo-4a49a-1-write-artifact",)


def test_a_pull_throttled_by_the_kubelet_waits_past_the_grace_period() -> None:
    """25 parallel steps of an image tagged latest (pulled every time) meet the kubelet's pull
    rate limit: it pulls again by itself, so the step waits its turn instead of failing."""
    first = run(WALKTHROUGH)
    throttled = pod(
        "demo-4a49a-1-write-artifact",
        "1",
        phase="Pending",
        waiting="ErrImagePull",
        waiting_message="pull QPS exceeded",
        created=-120,
    )
    later = run(WALKTHROUGH, first.status, [throttled], settings=Settings(start_grace=60))
    waiting = step(later.status, "write artifact")
    assert waiting.phase == StepPhase.RUNNING
    assert waiting.message == "pull QPS exceeded"
    assert later.stop == ()
    assert later.requeue_after == 5


def test_a_kubelet_behind_on_its_secret_cache_gets_a_longer_grace_than_a_missing_secret() -> None:
    """Under load the kubelet may not sync its Secret cache in time (CreateContainerConfigError
    "failed to sync secret cache"): it tries again by itself, so the step is not failed at the
    start grace; a Secret that does not exist still fails it then."""
    first = run(WALKTHROUGH)

    def waiting(message: str, created: int) -> Any:
        return pod(
            "demo-4a49a-1-write-artifact",
            "1",
            phase="Pending",
            waiting="CreateContainerConfigError",
            waiting_message=message,
            created=created,
        )

    settings = Settings(start_grace=60)
    busy = "failed to sync secret cache: timed out waiting for the condition"
    behind = run(WALKTHROUGH, first.status, [waiting(busy, -120)], settings=settings)
    assert step(behind.status, "write artifact").phase == StepPhase.RUNNING
    assert behind.stop == ()
    assert behind.requeue_after == 180
    gave_up = run(WALKTHROUGH, first.status, [waiting(busy, -301)], settings=settings)
    assert step(gave_up.status, "write artifact").phase == StepPhase.FAILED
    missing = run(
        WALKTHROUGH, first.status, [waiting('secret "app-env" not found', -120)], settings=settings
    )
    failed = step(missing.status, "write artifact")
    assert failed.phase == StepPhase.FAILED
    assert failed.message == 'main: secret "app-env" not found'


def test_an_invalid_image_name_fails_at_once() -> None:
    first = run(WALKTHROUGH)
    stuck = pod(
        "demo-4a49a-1-write-artifact", "1", phase="Pending", waiting="InvalidImageName", node=None
    )
    result = run(WALKTHROUGH, first.status, [stuck])
    assert step(result.status, "write artifact").reason == "InvalidImageName"
    assert result.delete == ("demo-4a49a-1-write-artifact",), "a pod that never started is deleted"


RETRY = spec([{"service": "a", "name": "flaky", "command": "x", "retries": 2}])


def test_retries_start_a_new_pod_only_after_the_old_one_is_gone() -> None:
    first = run(RETRY)
    failing = pod("demo-4a49a-1-flaky", "1", phase="Failed", exit_code=1, deleted=True)
    blocked = run(RETRY, first.status, [failing])
    assert blocked.create == ()
    assert step(blocked.status, "flaky").reason == "WaitingForRetry"
    assert step(blocked.status, "flaky").attempts[0].exit_code == 1
    gone = run(RETRY, blocked.status, [])
    assert [c.name for c in gone.create] == ["demo-4a49a-1-r1-flaky"]
    assert [(e.reason, e.message) for e in gone.events] == [("StepStarted", "started 'flaky'")]
    second = run(
        RETRY, gone.status, [pod("demo-4a49a-1-r1-flaky", "1", 1, phase="Failed", exit_code=1)]
    )
    assert [c.name for c in second.create] == ["demo-4a49a-1-r2-flaky"]
    pods = [
        pod("demo-4a49a-1-r1-flaky", "1", 1, phase="Failed", exit_code=1),
        pod("demo-4a49a-1-r2-flaky", "1", 2, phase="Succeeded", exit_code=0),
    ]
    done = run(RETRY, second.status, pods)
    final = step(done.status, "flaky")
    assert final.phase == StepPhase.SUCCEEDED
    assert [a.attempt for a in final.attempts] == [0, 1]
    assert done.status.phase == PipelinePhase.SUCCEEDED


def test_retries_run_out() -> None:
    pods = [
        pod(f"demo-1{'-r' + str(a) if a else ''}-flaky", "1", a, phase="Failed", exit_code=2)
        for a in range(3)
    ]
    result = run(RETRY, PipelineStatus(), pods)
    assert result.create == ()
    assert step(result.status, "flaky").phase == StepPhase.FAILED
    assert len(step(result.status, "flaky").attempts) == 2


def test_cancel_stops_running_pods_and_marks_the_rest() -> None:
    first = run(WALKTHROUGH)
    running = pod("demo-4a49a-1-write-artifact", "1")
    cancelled = run({**WALKTHROUGH, "cancel": True}, first.status, [running])
    assert cancelled.status.phase == PipelinePhase.CANCELLED
    assert cancelled.stop == ("demo-4a49a-1-write-artifact",)
    assert phases(cancelled.status) == {"write artifact": "Cancelled", "check artifact": "Skipped"}
    again = run(
        {**WALKTHROUGH, "cancel": True},
        cancelled.status,
        [pod("demo-4a49a-1-write-artifact", "1", deadline=1)],
    )
    assert again.stop == (), "a pod already told to stop is not patched again"


def test_the_pipeline_timeout_fails_it_and_stops_pods() -> None:
    raw = {**WALKTHROUGH, "timeout": "10m"}
    first = run(raw)
    assert first.create[0].active_deadline == 600
    assert first.requeue_after == 600
    late = run(
        raw,
        first.status,
        [pod("demo-4a49a-1-write-artifact", "1")],
        now=NOW + timedelta(minutes=11),
    )
    assert late.status.phase == PipelinePhase.FAILED
    assert "timeout" in (late.status.message or "")
    assert step(late.status, "write artifact").reason == "PipelineTimeout"
    assert late.stop == ("demo-4a49a-1-write-artifact",)


def test_a_step_timeout_becomes_the_pods_deadline_and_fails_the_step() -> None:
    raw = spec([{"service": "a", "name": "slow", "command": "sleep 99", "timeout": "90s"}])
    first = run(raw)
    assert first.create[0].active_deadline == 90
    expired = pod("demo-4a49a-1-slow", "1", phase="Failed", reason="DeadlineExceeded")
    result = run(raw, first.status, [expired])
    assert step(result.status, "slow").reason == "DeadlineExceeded"


def test_rejected_pods_fail_their_step_instead_of_being_retried_forever() -> None:
    result = plan(
        PlanInput(
            REF,
            compiled(WALKTHROUGH),
            PipelineStatus(),
            [],
            NOW,
            rejected={
                "demo-4a49a-1-write-artifact": Refusal(
                    "PodRejected", "forbidden: violates PodSecurity"
                )
            },
        )
    )
    assert result.create == ()
    assert step(result.status, "write artifact").reason == "PodRejected"
    assert result.status.phase == PipelinePhase.FAILED


def test_a_finished_pipeline_ignores_cancel_and_stops_stray_pods() -> None:
    first = run(WALKTHROUGH)
    pods = [pod("demo-4a49a-1-write-artifact", "1", phase="Failed", exit_code=1)]
    failed = run(WALKTHROUGH, first.status, pods)
    assert failed.status.phase == PipelinePhase.FAILED
    later = run(
        {**WALKTHROUGH, "cancel": True},
        failed.status,
        [*pods, pod("demo-4a49a-2-check-artifact", "2")],
    )
    assert later.status == failed.status
    assert later.stop == ("demo-4a49a-2-check-artifact",)


def test_the_node_of_the_first_pod_is_remembered_for_read_write_once_workspaces() -> None:
    first = run(WALKTHROUGH)
    result = run(
        WALKTHROUGH, first.status, [pod("demo-4a49a-1-write-artifact", "1", node="node-7")]
    )
    assert result.status.node_name == "node-7"
    shared = run(
        {**WALKTHROUGH, "workspace": {"accessModes": ["ReadWriteMany"]}},
        first.status,
        [pod("demo-4a49a-1-write-artifact", "1", node="node-7")],
    )
    assert shared.status.node_name is None


def test_nested_serial_inside_parallel_stops_after_a_failure_elsewhere() -> None:
    raw = spec(
        [
            {
                "type": "parallel",
                "steps": [
                    {
                        "type": "serial",
                        "steps": [
                            {"service": "a", "name": "s1", "command": "x"},
                            {"service": "a", "name": "s2", "command": "x"},
                        ],
                    },
                    {"service": "b", "name": "p", "command": "x"},
                ],
            }
        ]
    )
    pods = [pod("demo-4a49a-1-s1", "1"), pod("demo-4a49a-3-p", "3", phase="Failed", exit_code=1)]
    result = run(raw, run(raw).status, pods)
    assert phases(result.status) == {"s1": "Running", "s2": "Skipped", "p": "Failed"}
    pods[0] = pod("demo-4a49a-1-s1", "1", phase="Succeeded", exit_code=0)
    result = run(raw, result.status, pods)
    assert result.create == ()
    assert result.status.phase == PipelinePhase.FAILED


def test_a_500_step_status_stays_small() -> None:
    raw = spec(
        [
            {
                "type": "parallel",
                "steps": [{"service": "a", "command": f"step {i} {j}"} for j in range(100)],
            }
            for i in range(5)
        ]
    )
    result = run(raw)
    size = len(result.status.model_dump_json(by_alias=True, exclude_none=True))
    assert len(result.status.steps) == 500
    assert size < 150_000


def test_an_api_eviction_says_so() -> None:
    first = run(WALKTHROUGH)
    evicted = pod(
        "demo-4a49a-1-write-artifact", "1", deleted=True, disruption="EvictionByEvictionAPI"
    )
    result = run(WALKTHROUGH, first.status, [evicted])
    failed = step(result.status, "write artifact")
    assert failed.reason == "PodEvicted"
    assert "EvictionByEvictionAPI" in (failed.message or "")


# -- a clean exit moves on before the kubelet reports the pod's phase ---------------------


def exited(name: str, step_id: str, code: int = 0, **kw: Any) -> PodView:
    """The kubelet's first report after the container exits: the phase is still Running."""
    return pod(name, step_id, phase="Running", exit_code=code, **kw)


def test_a_clean_exit_starts_the_next_step_without_waiting_for_the_pod_phase() -> None:
    first = run(WALKTHROUGH)
    second = run(WALKTHROUGH, first.status, [exited("demo-4a49a-1-write-artifact", "1")])
    assert [c.name for c in second.create] == ["demo-4a49a-2-check-artifact"]
    assert step(second.status, "write artifact").phase == StepPhase.SUCCEEDED
    assert step(second.status, "write artifact").exit_code == 0
    assert second.stop == ()
    assert second.delete == ()


def test_a_finished_step_whose_pod_is_still_ending_is_not_stopped() -> None:
    first = run(WALKTHROUGH)
    ending = exited("demo-4a49a-1-write-artifact", "1")
    second = run(WALKTHROUGH, first.status, [ending])
    again = run(WALKTHROUGH, second.status, [ending])
    assert again.stop == ()
    assert again.delete == ()
    assert again.create == ()


def test_a_failing_exit_waits_for_the_pod_phase() -> None:
    first = run(WALKTHROUGH)
    second = run(WALKTHROUGH, first.status, [exited("demo-4a49a-1-write-artifact", "1", code=1)])
    assert second.create == ()
    assert step(second.status, "write artifact").phase == StepPhase.RUNNING


def test_a_clean_exit_near_the_pods_deadline_waits_for_the_pod_phase() -> None:
    """A process may exit 0 on the SIGTERM of a deadline kill: DeadlineExceeded must win."""
    first = run(WALKTHROUGH)
    near = exited("demo-4a49a-1-write-artifact", "1", deadline=6)  # exited 5 s after its start
    assert run(WALKTHROUGH, first.status, [near]).create == ()
    far = exited("demo-4a49a-1-write-artifact", "1", deadline=600)
    assert [c.name for c in run(WALKTHROUGH, first.status, [far]).create] == [
        "demo-4a49a-2-check-artifact"
    ]


def test_a_clean_exit_with_sidecars_still_running_waits_for_the_pod_phase() -> None:
    first = run(WALKTHROUGH)
    main = exited("demo-4a49a-1-write-artifact", "1")
    sidecar = ContainerView(name="db", state="running")
    with_sidecar = dataclasses.replace(main, sidecars=(sidecar,))
    assert run(WALKTHROUGH, first.status, [with_sidecar]).create == ()


def test_a_clean_exit_of_a_disrupted_pod_waits_for_the_pod_phase() -> None:
    first = run(WALKTHROUGH)
    disrupted = exited("demo-4a49a-1-write-artifact", "1", disruption="EvictionByEvictionAPI")
    assert run(WALKTHROUGH, first.status, [disrupted]).create == ()


def test_a_pipeline_that_mounts_nothing_asks_for_no_claim() -> None:
    raw = {"services": {"noop": {"image": "busybox:1.36"}}, "steps": [{"service": "noop"}]}
    first = run(raw)
    assert len(first.create) == 1
    assert not first.ensure_claim


def test_terminal_pipeline_phases_are_the_four_final_ones() -> None:
    assert {p for p in PipelinePhase if p.terminal} == {
        PipelinePhase.SUCCEEDED,
        PipelinePhase.FAILED,
        PipelinePhase.CANCELLED,
        PipelinePhase.REJECTED,
    }


def test_reasons_written_to_the_status_are_plain_strings() -> None:
    """StrEnum reasons serialise as their value: a status read back compares equal."""
    done = run(spec([{"name": "one", "service": "a", "command": "true"}]))
    written = done.status.model_dump(mode="json", by_alias=True)
    assert type(written["conditions"][0]["reason"]) is str
