"""Pod changes that wake no reconcile: the store keeps them, and the plan they would have
made is the plan without them (the real planner, driven through whole pipelines)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from shipway.compiler.pipeline import compile_pipeline
from shipway.controller.kube import KubeError
from shipway.controller.reconciler import Reconciler
from shipway.engine.observe import PodView, pod_view
from shipway.engine.plan.planner import Plan, PlanInput, plan
from shipway.engine.podstore import PodStore, pod_entry
from shipway.models import PipelinePhase
from tests.unit.builders import NOW, WALKTHROUGH, at
from tests.unit.fakekube import KEY, FakeKube, snapshot

Pod = dict[str, Any]


def _main(pod: Pod) -> str:
    return str(pod["spec"]["containers"][0]["name"])


def unschedulable(pod: Pod, t: float) -> None:
    pod["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        ],
    }


def bound(pod: Pod, t: float) -> None:
    pod["spec"]["nodeName"] = "node-1"
    pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}


def creating(pod: Pod, t: float, message: str | None = None) -> None:
    waiting = {"reason": "ContainerCreating", **({"message": message} if message else {})}
    pod["status"] = {
        "phase": "Pending",
        "startTime": at(t),
        "containerStatuses": [{"name": _main(pod), "state": {"waiting": waiting}}],
    }


def throttled(pod: Pod, t: float) -> None:
    start = pod["status"]["startTime"]
    creating(pod, t, "pull QPS exceeded")
    pod["status"]["startTime"] = start


def running(pod: Pod, t: float) -> None:
    pod["status"] = {
        "phase": "Running",
        "startTime": pod["status"].get("startTime") or at(t),
        "containerStatuses": [
            {"name": _main(pod), "started": True, "state": {"running": {"startedAt": at(t)}}}
        ],
    }


def ended(pod: Pod, t: float) -> None:
    start = pod["status"].get("startTime")
    terminated = {"exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": at(t)}
    pod["status"] = {
        "phase": "Succeeded",
        "startTime": start,
        "containerStatuses": [{"name": _main(pod), "state": {"terminated": terminated}}],
    }


Change = Callable[[Pod, float], None]
PLAIN: list[tuple[str, Change | None]] = [
    ("created", None),
    ("bound", bound),
    ("creating", creating),
    ("running", running),
    ("ended", ended),
]
TROUBLED: list[tuple[str, Change | None]] = [
    ("created", None),
    ("unschedulable", unschedulable),
    ("bound", bound),
    ("creating", creating),
    ("throttled", throttled),
    ("running", running),
    ("ended", ended),
]

SERIAL = {
    "services": {"noop": {"image": "busybox:1.36"}},
    "steps": [{"name": f"s{i:02d}", "service": "noop", "command": "true"} for i in range(1, 6)],
}
PARALLEL = {
    "services": {"noop": {"image": "busybox:1.36"}},
    "steps": [
        {"name": "first", "service": "noop", "command": "true"},
        {
            "type": "parallel",
            "steps": [{"name": f"p{i}", "service": "noop", "command": "true"} for i in range(3)],
        },
        {"name": "last", "service": "noop", "command": "true"},
    ],
}


class Harness:
    """A pipeline's pods moved through the kubelet's states one watch event at a time, each
    event put in a pod store that asks the reconciler whether it wakes the pipeline."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.kube = FakeKube()
        self.now = NOW
        self.reconciler = Reconciler(self.kube, clock=lambda: self.now)
        self.store = PodStore()
        self.store.quiet = self.reconciler.quiet
        self.woke: Counter[str] = Counter()
        self.quiet: Counter[str] = Counter()
        self.compared = 0

    def reconcile(self, generation: int = 1) -> None:
        snap = snapshot(self.kube, self.spec)
        snap = dataclasses.replace(snap, generation=generation)
        asyncio.run(self.reconciler.reconcile(snap, self.store.pods(KEY), KEY))

    def plan_with(self, pods: list[PodView]) -> Plan:
        memory = self.reconciler.memory[KEY]
        assert memory.last is not None
        snap = snapshot(self.kube, self.spec)
        compiled = compile_pipeline(self.spec)
        inputs = PlanInput(snap.ref, compiled, memory.last, pods, self.now)
        return plan(inputs)

    def move(self, name: str, why: str, change: Change | None, t: float) -> None:
        self.now = NOW + timedelta(seconds=t)
        pod = self.kube.pods[name]
        if change is not None:
            change(pod, t)
        memory = self.reconciler.memory[KEY]
        before = {p.name: p for p in (*memory.created.values(), *self.store.pods(KEY))}
        entry = pod_entry(pod)
        assert entry is not None
        woken = self.store.put("ci", name, entry)
        assert self.store.pods(KEY).count(entry[1]) == 1  # the store has the newest view
        if woken:
            self.woke[why] += 1
            self.reconcile()
            return
        self.quiet[why] += 1
        after = {**before, name: entry[1]}
        assert self.plan_with(list(before.values())) == self.plan_with(list(after.values())), why
        self.compared += 1

    def run(self, paths: list[list[tuple[str, Change | None]]]) -> None:
        self.reconcile()
        seen: list[str] = []
        t = 1.0
        while todo := [n for n in self.kube.pods if n not in seen]:
            for name in todo:
                path = paths[len(seen) % len(paths)]
                seen.append(name)
                for why, change in path:
                    t += 1
                    self.move(name, why, change, t)
        assert self.kube.status["phase"] == PipelinePhase.SUCCEEDED


@pytest.mark.parametrize("spec", [SERIAL, PARALLEL], ids=["serial", "parallel"])
def test_only_the_pods_end_wakes_a_running_step(spec: dict[str, Any]) -> None:
    harness = Harness(spec)
    harness.run([PLAIN])
    pods = len(harness.kube.pods)
    assert harness.woke == {"ended": pods}
    assert harness.quiet == {"created": pods, "bound": pods, "creating": pods, "running": pods}
    assert harness.compared == 4 * pods


def test_what_a_step_says_while_it_waits_wakes() -> None:
    """Unschedulable, then bound (its message goes), a throttled pull, then running again."""
    harness = Harness(SERIAL)
    harness.run([TROUBLED])
    assert harness.woke == {
        "unschedulable": 5,
        "bound": 5,
        "throttled": 5,
        "running": 5,
        "ended": 5,
    }
    assert harness.quiet == {"created": 5, "creating": 5}
    assert harness.kube.status["steps"][0]["reason"] == "Completed"


def test_a_pinned_pipeline_wakes_for_its_first_binding_only() -> None:
    """A ReadWriteOnce workspace: the first pod's node is where every later pod goes."""
    harness = Harness(WALKTHROUGH)
    harness.run([PLAIN])
    assert harness.woke == {"created": 1, "bound": 1, "ended": 2}
    assert harness.quiet == {"created": 1, "bound": 1, "creating": 2, "running": 2}
    second = harness.kube.pods["demo-4a49a-2-check-artifact"]["spec"]["affinity"]
    assert "node-1" in str(second)


def test_the_next_reconcile_plans_from_the_views_it_slept_through() -> None:
    """Level-triggered: a cancel after a quiet start stops the started pod (a pod not
    started would be deleted instead), since the store kept its newest view."""
    harness = Harness(SERIAL)
    harness.reconcile()
    (name,) = harness.kube.pods
    for why, change in PLAIN[:4]:
        harness.move(name, why, change, 2.0)
    assert not harness.woke
    harness.spec = {**SERIAL, "cancel": True}
    harness.reconcile(generation=2)
    assert f"stop {name}" in harness.kube.writes
    assert f"delete {name}" not in harness.kube.writes


def test_a_failed_reconcile_settles_nothing() -> None:
    harness = Harness(SERIAL)
    harness.reconcile()
    (name,) = harness.kube.pods
    memory = harness.reconciler.memory[KEY]
    assert memory.settled == {name}
    harness.kube.reject["demo-4a49a-2-s02"] = KubeError(503, "Unavailable", "etcd leader changed")
    with pytest.raises(KubeError):
        harness.move(name, "ended", ended, 3.0)
    assert memory.settled == frozenset()
    view = pod_view(harness.kube.pods[name])
    assert view is not None
    assert not harness.reconciler.quiet(KEY, view, view)


def test_a_pod_seen_while_its_status_is_written_wakes_nobody() -> None:
    """The watch shows a pod just made while the reconcile that made it still writes the
    status: that sighting is quiet too (each one used to cost a second reconcile)."""
    harness = Harness(SERIAL)
    written = harness.kube.patch_status
    sightings: list[tuple[str, bool]] = []

    async def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
        for pod_name, pod in list(harness.kube.pods.items()):
            if not any(p.name == pod_name for p in harness.store.pods(KEY)):
                entry = pod_entry(pod)
                assert entry is not None
                sightings.append((pod_name, bool(harness.store.put("ci", pod_name, entry))))
        await written(namespace, name, status)

    harness.kube.patch_status = patch_status  # type: ignore[method-assign]
    harness.reconcile()
    while len(sightings) < 5:
        (name,) = [n for n, _ in sightings[-1:]]
        harness.move(name, "ended", ended, float(len(sightings)))
    assert [woke for _, woke in sightings] == [False] * 5
    assert harness.woke == {"ended": 4}


def test_a_failed_status_write_settles_nothing() -> None:
    harness = Harness(SERIAL)

    async def patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
        raise KubeError(503, "Unavailable", "etcd leader changed")

    harness.kube.patch_status = patch_status  # type: ignore[method-assign]
    with pytest.raises(KubeError):
        harness.reconcile()
    (name,) = harness.kube.pods
    assert harness.reconciler.memory[KEY].settled == frozenset()
    view = pod_view(harness.kube.pods[name])
    assert view is not None
    assert not harness.reconciler.quiet(KEY, view, view)
