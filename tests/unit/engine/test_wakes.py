"""Which pod changes wake a pipeline: every field of a pod's view, and the settled pods."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from typing import Any

import pytest

from shipway.engine.observe import ContainerView, PodView
from shipway.engine.wakes import MAY_CHANGE, quiet_change, settled_pods
from shipway.models import PipelinePhase, PipelineStatus, StepPhase, StepStatus
from tests.unit.builders import NOW, at

CREATED = PodView(
    name="demo-4a49a-1-s01",
    uid="uid-1",
    step_id="1",
    attempt=0,
    phase="Pending",
    created_at=at(0),
    node_name=None,
    deletion_requested_at=None,
    reason=None,
    message=None,
    disruption=None,
    active_deadline=None,
    started=False,
    main=None,
    owner_uid="uid-pipeline",
    seal="seal",
)
"""A step pod as its create returns it: no node, no status yet."""
BOUND = replace(CREATED, node_name="node-1")
CREATING = replace(
    BOUND,
    started=True,
    start_time=at(1),
    main=ContainerView("main", "waiting", reason="ContainerCreating"),
)
RUNNING = replace(
    CREATING,
    phase="Running",
    main=ContainerView("main", "running", started_at=at(2), started=True),
)

OTHER_VALUES: dict[str, Any] = {
    "name": "demo-4a49a-1-s01-other",
    "uid": "uid-2",
    "step_id": "2",
    "attempt": 1,
    "created_at": at(5),
    "deletion_requested_at": NOW + timedelta(seconds=3),
    "reason": "Evicted",
    "message": "the node was low on memory",
    "disruption": "EvictionByEvictionAPI",
    "active_deadline": 30,
    "sidecars": (ContainerView("db", "running"),),
    "start_time": at(9),
    "owner_uid": "uid-someone-else",
    "unschedulable": "0/3 nodes are available",
    "seal": "forged",
    "probed": ("db",),
}
"""A different value for every field a quiet change must leave alone (but ``start_time``,
which may change)."""


def test_every_field_of_a_pod_view_is_decided_on() -> None:
    """A new PodView field must be either allowed to change quietly or listed here."""
    names = {f.name for f in fields(PodView)}
    assert names - MAY_CHANGE <= OTHER_VALUES.keys()
    assert names >= MAY_CHANGE


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (CREATED, BOUND),
        (BOUND, CREATING),
        (CREATING, RUNNING),
        (CREATED, RUNNING),
        (BOUND, RUNNING),
    ],
)
def test_binding_and_starting_are_quiet(old: PodView, new: PodView) -> None:
    assert quiet_change(old, new)


@pytest.mark.parametrize("field", sorted(OTHER_VALUES.keys() - MAY_CHANGE))
def test_a_change_of_any_other_field_wakes(field: str) -> None:
    for old in (CREATED, BOUND, RUNNING):
        assert not quiet_change(old, replace(old, **{field: OTHER_VALUES[field]})), field
        assert not quiet_change(replace(old, **{field: OTHER_VALUES[field]}), old), field


@pytest.mark.parametrize(
    "main",
    [
        ContainerView("main", "terminated", exit_code=0, finished_at=at(3)),
        ContainerView("main", "terminated", exit_code=1, finished_at=at(3)),
        ContainerView("main", "waiting", reason="InvalidImageName", message="bad"),
        ContainerView("main", "waiting", reason="ErrImagePull", message="not found"),
        ContainerView("main", "waiting", reason="ImagePullBackOff"),
        ContainerView("main", "waiting", reason="CreateContainerConfigError"),
        ContainerView("main", "waiting", reason="ContainerCreating", message="pull QPS exceeded"),
    ],
)
def test_a_container_that_ends_or_is_stuck_wakes(main: ContainerView) -> None:
    """The step ends, or its outcome says why it waits (a failure after a grace period)."""
    for old in (BOUND, CREATING, RUNNING):
        assert not quiet_change(old, replace(old, main=main))
        assert not quiet_change(replace(old, main=main), old)


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Unknown"])
def test_a_phase_other_than_pending_or_running_wakes(phase: str) -> None:
    assert not quiet_change(RUNNING, replace(RUNNING, phase=phase))


def test_a_pod_leaving_the_unschedulable_state_wakes() -> None:
    """Its step says ``Unschedulable`` until the pod is bound: that message must go."""
    waiting = replace(CREATED, unschedulable="0/3 nodes are available")
    assert not quiet_change(waiting, BOUND)


def test_a_step_that_stops_waiting_for_a_health_check_wakes() -> None:
    """While a probed sidecar has not started, the step says it waits for that service."""
    db = ContainerView("db", "running", started=False)
    waiting = replace(BOUND, sidecars=(db,), probed=("db",))
    healthy = replace(waiting, sidecars=(replace(db, started=True),))
    assert not quiet_change(waiting, healthy)
    started = replace(healthy, phase="Running", main=RUNNING.main, started=True)
    assert quiet_change(healthy, started)
    # the step's container starts only once the check passed: from waiting to running wakes
    assert not quiet_change(waiting, replace(waiting, phase="Running", main=RUNNING.main))


def _status(phase: PipelinePhase, *steps: tuple[str, StepPhase, str | None]) -> PipelineStatus:
    entries = [
        StepStatus(id=i, name=f"s{i}", service="noop", phase=p, pod=pod) for i, p, pod in steps
    ]
    return PipelineStatus(phase=phase, steps=entries)


def test_the_pods_of_running_steps_are_settled() -> None:
    status = _status(
        PipelinePhase.RUNNING,
        ("1", StepPhase.SUCCEEDED, "p1"),
        ("2", StepPhase.RUNNING, "p2"),
        ("3", StepPhase.RUNNING, None),  # a retry waits for its pod
        ("4", StepPhase.PENDING, None),
    )
    assert settled_pods(status, pinned=False) == {"p2"}


def test_nothing_is_settled_in_a_pipeline_not_running() -> None:
    for phase in PipelinePhase:
        if phase != PipelinePhase.RUNNING:
            status = _status(phase, ("2", StepPhase.RUNNING, "p2"))
            assert settled_pods(status, pinned=False) == frozenset(), phase


def test_a_pinned_pipeline_settles_only_once_it_knows_its_node() -> None:
    """Its first pod's binding names the node every later pod is pinned to."""
    status = _status(PipelinePhase.RUNNING, ("1", StepPhase.RUNNING, "p1"))
    assert settled_pods(status, pinned=True) == frozenset()
    pinned = status.model_copy(update={"node_name": "node-1"})
    assert settled_pods(pinned, pinned=True) == {"p1"}


@pytest.mark.parametrize("field", ["deletion_requested_at", "reason", "disruption"])
def test_a_pod_being_deleted_or_evicted_wakes_on_every_change(field: str) -> None:
    """Its outcome is a failure that records when the container started, for one."""
    for old, new in ((CREATED, BOUND), (BOUND, CREATING), (CREATING, RUNNING)):
        marked = {field: OTHER_VALUES[field]}
        assert not quiet_change(replace(old, **marked), replace(new, **marked)), field
