"""The operator object: Pipeline events and pod changes through the work queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shipway.controller.callpool import Priority
from shipway.controller.config import OperatorConfig
from shipway.controller.kube import KubeError
from shipway.controller.runtime import Operator
from shipway.engine.objects import Key, Manifest
from shipway.engine.podstore import PodStore, pod_entry
from tests.unit.builders import WALKTHROUGH
from tests.unit.fakekube import KEY, FakeKube


class FakeWatches:
    """The pod store filled straight from the fake API server; listed once on request."""

    def __init__(self, kube: FakeKube, on_change: Callable[[Key], None]) -> None:
        self.kube = kube
        self.store = PodStore()
        self.on_change = on_change
        self.listed = asyncio.Event()
        self.listed.set()
        self.stopped = False

    async def ready(self, namespace: str) -> None:
        await self.listed.wait()
        self.sync()

    def sync(self) -> None:
        entries = []
        for name, pod in self.kube.pods.items():
            entry = pod_entry(pod)
            if entry is not None:
                entries.append(("ci", name, entry))
        self.store.replace("ci", entries)

    def stop(self) -> None:
        self.stopped = True


def pipeline(kube: FakeKube, spec: dict[str, Any] = WALKTHROUGH) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "demo",
            "namespace": "ci",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": "2026-11-27T11:59:00Z",
        },
        "spec": spec,
        "status": kube.status,
    }


def make(kube: FakeKube) -> tuple[Operator, list[FakeWatches]]:
    made: list[FakeWatches] = []

    def watches(on_change: Callable[[Key], None]) -> FakeWatches:
        made.append(FakeWatches(kube, on_change))
        return made[-1]

    return Operator(OperatorConfig(), kube, watches), made


def recorded_reconciles(operator: Operator) -> list[tuple[Any, Key]]:
    """Every reconcile the operator runs from now on, (snapshot, key), in order."""
    runs: list[tuple[Any, Key]] = []
    reconcile = operator.reconciler.reconcile

    async def recording(snap: Any, pods: Any, key: Key) -> Any:
        runs.append((snap, key))
        return await reconcile(snap, pods, key)

    operator.reconciler.reconcile = recording  # type: ignore[method-assign,assignment]
    return runs


async def settle(operator: Operator) -> None:
    while operator.queue.busy():
        await asyncio.sleep(0.01)


def test_a_pipeline_event_starts_its_first_step_once_the_pods_are_listed() -> None:
    kube = FakeKube()
    operator, watches = make(kube)

    async def scenario() -> None:
        watches[0].listed.clear()
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await asyncio.sleep(0.05)
        assert kube.pods == {}, "never planned before the namespace's pods are listed"
        watches[0].listed.set()
        await settle(operator)

    asyncio.run(scenario())
    assert list(kube.pods) == ["demo-4a49a-1-write-artifact"]
    assert kube.status["phase"] == "Running"


def test_events_during_a_reconcile_fold_into_one_more_run_on_the_latest_state() -> None:
    kube = FakeKube()
    operator, _ = make(kube)
    gate = asyncio.Event()
    create = kube.create_pod
    reads: list[int] = []
    reconcile = operator.reconciler.reconcile

    async def counting(*args: Any) -> Any:
        reads.append(len(kube.pods))
        return await reconcile(*args)

    async def slow_create(
        namespace: str, manifest: Manifest, priority: Priority = Priority.STEP
    ) -> Manifest | None:
        await gate.wait()
        return await create(namespace, manifest)

    kube.create_pod = slow_create  # type: ignore[method-assign]
    operator.reconciler.reconcile = counting  # type: ignore[method-assign,assignment]

    async def scenario() -> None:
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await asyncio.sleep(0.01)
        for _ in range(5):  # five events while the first run waits on the API server
            operator.pipeline_changed(pipeline(kube), deleted=False)
        gate.set()
        await settle(operator)

    asyncio.run(scenario())
    assert reads == [0, 1]  # the first run, then one more that sees the pod it created
    assert [w for w in kube.writes if w.startswith("create pod")] == [
        "create pod demo-4a49a-1-write-artifact"
    ]


def test_transient_api_errors_are_retried_later_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prometheus_client import REGISTRY

    def errors() -> float:
        return REGISTRY.get_sample_value("shipway_api_errors_total", {"status": "503"}) or 0.0

    kube = FakeKube()
    kube.reject["demo-4a49a-1-write-artifact"] = KubeError(
        503, "ServiceUnavailable", "etcd leader changed"
    )
    operator, _ = make(kube)
    before = errors()

    async def scenario() -> None:
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await asyncio.sleep(0.05)
        assert kube.status == {}
        assert operator.queue.scheduled(KEY)
        del kube.reject["demo-4a49a-1-write-artifact"]
        await asyncio.sleep(1.1)
        await settle(operator)

    with caplog.at_level("WARNING", logger="shipway"):
        asyncio.run(scenario())
    assert "etcd leader changed (HTTP 503); again in 1.0s" in caplog.text
    assert errors() == before + 1
    assert kube.status["phase"] == "Running"


def test_a_deleted_pipeline_is_forgotten_and_stop_ends_everything() -> None:
    kube = FakeKube()
    operator, watches = make(kube)

    async def scenario() -> None:
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await settle(operator)
        assert KEY in operator.reconciler.memory
        operator.pipeline_changed(pipeline(kube), deleted=True)
        await settle(operator)
        assert KEY not in operator.reconciler.memory
        assert KEY not in operator.pipelines
        await operator.stop(timeout=1.0)

    asyncio.run(scenario())
    assert watches[0].stopped


def test_with_history_a_finished_steps_log_is_archived_and_the_run_recorded(
    tmp_path: Any,
) -> None:
    from shipway.controller.historyconfig import HistorySettings
    from shipway.history.store import SqlStore

    kube = FakeKube()
    url = f"sqlite:///{tmp_path / 'history.db'}"
    made: list[FakeWatches] = []

    def watches(on_change: Callable[[Key], None]) -> FakeWatches:
        made.append(FakeWatches(kube, on_change))
        return made[-1]

    operator = Operator(OperatorConfig(history=HistorySettings(url=url)), kube, watches)
    assert operator.archiver is not None
    archiver = operator.archiver

    async def scenario() -> None:
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await settle(operator)
        (first,) = kube.pods
        kube.logs[(first, "demo")] = b"built\n"
        kube.finish(first, 0)
        made[0].sync()
        made[0].on_change(KEY)  # the pod watch wakes the pipeline up
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await settle(operator)
        await archiver.round(operator.pipelines, made[0].store.pods)
        await operator.stop()

    asyncio.run(scenario())
    store = SqlStore(url)
    record = store.run("ci", "demo")
    assert record is not None
    assert record.phase == "Running"
    assert [(item.container, item.text) for item in store.logs("uid-1")] == [("demo", "built\n")]


def test_the_echo_of_its_own_status_write_is_not_reconciled_again_but_a_spec_change_is() -> None:
    kube = FakeKube()
    operator, _ = make(kube)
    runs = recorded_reconciles(operator)

    async def scenario() -> None:
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await settle(operator)
        assert len(runs) == 1
        assert kube.status["phase"] == "Running"
        operator.pipeline_changed(pipeline(kube), deleted=False)  # its status write's event
        await settle(operator)
        assert len(runs) == 1, "nothing but its own status changed: no reconcile"
        edited = pipeline(kube)
        edited["metadata"]["generation"] = 2
        operator.pipeline_changed(edited, deleted=False)
        await settle(operator)
        assert len(runs) == 2, "a new generation is reconciled"
        deleting = pipeline(kube)
        deleting["metadata"] |= {"generation": 2, "deletionTimestamp": "2026-11-27T12:00:00Z"}
        operator.pipeline_changed(deleting, deleted=False)
        await settle(operator)
        assert len(runs) == 3, "a deletion is reconciled"

    asyncio.run(scenario())


def test_a_status_event_before_the_operator_has_read_the_status_is_reconciled() -> None:
    kube = FakeKube()
    operator, watches = make(kube)

    async def scenario() -> None:
        watches[0].listed.clear()  # nothing read yet: the reconcile waits for the pod list
        operator.pipeline_changed(pipeline(kube), deleted=False)
        kube.status = {"phase": "Running"}
        operator.pipeline_changed(pipeline(kube), deleted=False)
        assert operator.queue.busy()
        watches[0].listed.set()
        await settle(operator)

    asyncio.run(scenario())
    assert operator.reconciler.follows(("ci", "demo"), "uid-1")


def test_a_pipeline_a_relist_misses_is_forgotten_and_reconciled_as_gone() -> None:
    kube = FakeKube()
    operator, _ = make(kube)
    runs = recorded_reconciles(operator)

    async def scenario() -> None:
        operator.pipeline_changed(pipeline(kube), deleted=False)
        await settle(operator)
        operator.pipeline_gone(("ci", "demo"))
        operator.pipeline_gone(("ci", "never-seen"))  # nothing known: nothing queued
        await settle(operator)

    asyncio.run(scenario())
    seen = [snap for snap, _ in runs]
    assert operator.pipelines == {}
    assert seen[0] is not None
    assert seen[-1] is None
    assert len(seen) == 2
