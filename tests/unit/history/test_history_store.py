"""The history store (SQLite here; PostgreSQL on the cluster) and the archiver's rounds."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipway.controller.archive import Archiver
from shipway.controller.historyconfig import HistorySettings, history_settings
from shipway.controller.snapshot import PipelineSnapshot
from shipway.history.records import RunRecord
from shipway.history.retention import Policy
from shipway.history.store import ArchivedLog, SqlStore, cursor, store_url
from tests.unit.fakekube import FakeKube

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def record(n: int, **kw: Any) -> RunRecord:
    base = RunRecord(
        uid=f"uid-{n:04d}",
        namespace="ci",
        name=f"app-{n}",
        project="app",
        branch="main" if n % 2 else "dev",
        commit="abc",
        trigger="upload",
        phase="Succeeded" if n % 3 else "Failed",
        reason="",
        message="",
        created_at=T0 + timedelta(minutes=n),
        started_at=None,
        finished_at=T0 + timedelta(minutes=n, seconds=30),
        steps=1,
        spec_json='{"steps":[]}',
        status_json=json.dumps({"phase": "Succeeded", "steps": [{"id": "1", "pod": f"p{n}"}]}),
    )
    return replace(base, **kw)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    made = SqlStore(f"sqlite:///{tmp_path / 'h' / 'history.db'}")
    yield made
    made.close()


def test_records_are_upserted_and_read_back_newest_of_a_name(store: SqlStore) -> None:
    store.save_runs([record(1), record(2)])
    store.save_runs([record(1, phase="Failed", message="boom")])
    got = store.run("ci", "app-1")
    assert got is not None
    assert (got.phase, got.message) == ("Failed", "boom")
    assert got.created_at == T0 + timedelta(minutes=1)
    assert json.loads(got.status_json)["steps"][0]["pod"] == "p1"
    # a name used again: the newest run of it
    store.save_runs([record(9, name="app-1", uid="uid-new")])
    again = store.run("ci", "app-1")
    assert again is not None
    assert again.uid == "uid-new"
    assert store.run("ci", "nope") is None


def test_pages_are_newest_first_filtered_and_continue_after_a_cursor(store: SqlStore) -> None:
    store.save_runs([record(n) for n in range(1, 31)])
    first = store.page("ci", limit=10)
    assert [r.name for r in first] == [f"app-{n}" for n in range(30, 20, -1)]
    second = store.page("ci", limit=10, before=cursor(first[-1]))
    assert [r.name for r in second] == [f"app-{n}" for n in range(20, 10, -1)]
    main_failed = store.page("ci", branch="main", phase="Failed")
    assert [r.name for r in main_failed] == ["app-27", "app-21", "app-15", "app-9", "app-3"]
    assert store.page("other") == []
    assert len(store.page(None, project="app", limit=100)) == 30


def test_a_pods_logs_are_stored_once(store: SqlStore) -> None:
    logs = [ArchivedLog("uid-1", "p1", "pod-uid-1", c, f"log of {c}\n", 11) for c in ("main", "db")]
    store.save_logs(logs)
    store.save_logs([replace(logs[0], text="a second copy")])
    assert store.archived(["pod-uid-1", "pod-uid-2"]) == {"pod-uid-1"}
    got = {item.container: item.text for item in store.logs("uid-1")}
    assert got == {"main": "log of main\n", "db": "log of db\n"}


def test_expiry_drops_old_runs_and_the_oldest_beyond_the_size_cap(store: SqlStore) -> None:
    store.save_runs([record(n) for n in range(1, 11)])
    for n in range(1, 11):
        text = base64.b64encode(random.Random(n).randbytes(4000 * n)).decode()  # incompressible
        store.save_logs([ArchivedLog(f"uid-{n:04d}", f"p{n}", f"pu{n}", "main", text, len(text))])
    assert store.expire(T0 + timedelta(minutes=3), None) == 2  # runs 1 and 2
    assert store.run("ci", "app-2") is None
    assert store.logs("uid-0002") == []
    assert store.expire(None, 10**9) == 0
    sizes = sum(len(item.text) for n in range(3, 11) for item in store.logs(f"uid-{n:04d}"))
    assert store.expire(None, sizes // 2) > 0
    assert store.run("ci", "app-3") is None
    assert store.run("ci", "app-10") is not None


def test_the_store_url_setting() -> None:
    assert store_url("off") is None
    assert store_url("postgres://u@db/h") == "postgresql+psycopg://u@db/h"
    assert (store_url(None) or "").endswith("shipway/history.db")
    settings = history_settings(
        {"SHIPWAY_HISTORY": "sqlite:///x.db", "SHIPWAY_RETAIN_SUCCEEDED": "3"}, ValueError
    )
    assert settings.policy.succeeded == 3
    assert settings.url == "sqlite:///x.db"
    with pytest.raises(ValueError, match="SHIPWAY_RETAIN_MAX_AGE"):
        history_settings({"SHIPWAY_RETAIN_MAX_AGE": "7 days"}, ValueError)


# -- the archiver against the fake API server ----------------------------------------------


def finished_pod(name: str, uid: str, owner: str = "uid-1") -> Any:
    from shipway.engine.observe import ContainerView, PodView

    return PodView(
        name=name,
        uid=uid,
        step_id="1",
        attempt=0,
        phase="Succeeded",
        created_at=None,
        node_name="n",
        deletion_requested_at=None,
        reason=None,
        message=None,
        disruption=None,
        active_deadline=None,
        started=True,
        main=ContainerView("step", "terminated", exit_code=0),
        sidecars=(ContainerView("db", "terminated"),),
        owner_uid=owner,
    )


def snap(phase: str = "Succeeded", name: str = "demo", uid: str = "uid-1") -> PipelineSnapshot:
    body = {
        "metadata": {
            "name": name,
            "namespace": "ci",
            "uid": uid,
            "creationTimestamp": "2026-12-06T09:00:00Z",
        },
        "spec": {"steps": [], "services": {"a": {"envFrom": [{"secretRef": {"name": "env"}}]}}},
        "status": {"phase": phase, "finishedAt": "2026-12-06T09:01:00Z"},
    }
    return PipelineSnapshot.from_body(body)


class CountingStore(SqlStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.run_batches: list[int] = []
        self.down = False

    def save_runs(self, records: Any) -> None:
        if self.down:
            raise ConnectionError("the store is down")
        self.run_batches.append(len(records))
        super().save_runs(records)

    def save_logs(self, pod_logs: Any) -> None:
        if self.down:
            raise ConnectionError("the store is down")
        super().save_logs(pod_logs)


def test_the_archiver_batches_records_archives_each_log_once_masked(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.pods["p1"] = {}
    kube.logs[("p1", "step")] = b"token is s3cr3t-token\n"
    kube.logs[("p1", "db")] = b"db ready\n"
    kube.secrets[("ci", "env")] = {"data": {"T": base64.b64encode(b"s3cr3t-token").decode()}}
    url = f"sqlite:///{tmp_path / 'history.db'}"
    stores: list[CountingStore] = []

    def opener(u: str) -> CountingStore:
        stores.append(CountingStore(u))
        return stores[-1]

    archiver = Archiver(HistorySettings(url=url), kube, opener)
    pod = finished_pod("p1", "pod-uid-1")

    async def scenario() -> None:
        for phase in ("Pending", "Running", "Running", "Succeeded"):  # four events, one write
            archiver.note(snap(phase))
        archiver.note_pods(snap(), [pod])
        await archiver.round({}, lambda key: [pod])
        archiver.note_pods(snap(), [pod])  # seen again: already archived
        await archiver.round({}, lambda key: [pod])
        await archiver.stop()

    asyncio.run(scenario())
    assert stores[0].run_batches == [1]
    assert sorted(kube.log_reads) == [("p1", "db"), ("p1", "step")]
    reader = SqlStore(url)
    texts = {item.container: item.text for item in reader.logs("uid-1")}
    assert texts == {"step": "token is ***\n", "db": "db ready\n"}
    got = reader.run("ci", "demo")
    assert got is not None
    assert got.phase == "Succeeded"


def test_a_step_without_linked_services_costs_exactly_one_log_read(tmp_path: Path) -> None:
    """The API budget (docs/history.md): one GET pods/log per container, so a step with no
    linked services is one read, and each linked service adds one."""
    from dataclasses import replace

    kube = FakeKube()
    kube.pods["p1"] = {}
    kube.logs[("p1", "step")] = b"done\n"
    archiver = Archiver(HistorySettings(url=f"sqlite:///{tmp_path / 'h.db'}"), kube)
    pod = replace(finished_pod("p1", "pod-uid-1"), sidecars=())

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), [pod])
        await archiver.round({}, lambda key: [pod])
        await archiver.round({}, lambda key: [pod])
        await archiver.stop()

    asyncio.run(scenario())
    assert kube.log_reads == [("p1", "step")]


def test_a_restarted_archiver_skips_pods_already_in_the_store(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.pods["p1"] = {}
    url = f"sqlite:///{tmp_path / 'history.db'}"
    SqlStore(url).save_logs([ArchivedLog("uid-1", "p1", "pod-uid-1", "step", "done\n", 5)])
    archiver = Archiver(HistorySettings(url=url), kube)
    pod = finished_pod("p1", "pod-uid-1")

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), [pod])
        await archiver.round({}, lambda key: [pod])
        await archiver.stop()

    asyncio.run(scenario())
    assert kube.log_reads == []
    assert archiver.archived(snap(), [pod])


def test_while_the_store_is_down_nothing_is_pruned_and_everything_waits(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.pods["p1"] = {}
    url = f"sqlite:///{tmp_path / 'history.db'}"
    stores: list[CountingStore] = []

    def opener(u: str) -> CountingStore:
        stores.append(CountingStore(u))
        return stores[-1]

    policy = Policy(succeeded=0, failed=0)
    archiver = Archiver(HistorySettings(url=url, policy=policy, prune_seconds=0), kube, opener)
    old, new = snap(name="old", uid="uid-1"), snap(name="new", uid="uid-2")
    pods = {("ci", "old"): [finished_pod("p1", "pod-uid-1")], ("ci", "new"): []}
    pipelines = {("ci", "old"): old, ("ci", "new"): new}

    async def scenario() -> None:
        archiver.note(old)
        archiver.note(new)
        archiver.note_pods(old, pods[("ci", "old")])
        await archiver.round({}, lambda key: [])  # opens the store
        stores[0].down = True
        archiver.note(old)
        with pytest.raises(ConnectionError):
            await archiver.round(pipelines, lambda key: pods[key])
        assert kube.deleted_pipelines == []
        stores[0].down = False
        await archiver.round(pipelines, lambda key: pods[key])  # records, then logs
        await archiver.round(pipelines, lambda key: pods[key])
        await archiver.stop()

    asyncio.run(scenario())
    assert sorted(kube.deleted_pipelines) == ["new", "old"]


def test_a_log_that_cannot_be_read_waits_alone(tmp_path: Path) -> None:
    from shipway.controller.kube import KubeError

    kube = FakeKube()
    kube.pods["p1"] = kube.pods["p2"] = {}
    kube.logs[("p2", "step")] = b"fine\n"
    kube.reject["p1"] = KubeError(403, "Forbidden", "pods/log is forbidden")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    archiver = Archiver(HistorySettings(url=url), kube)
    pods = [finished_pod("p1", "pod-uid-1"), finished_pod("p2", "pod-uid-2")]

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), pods)
        await archiver.round({}, lambda key: pods)  # no exception: the round goes on
        assert list(archiver.pending) == ["pod-uid-1"]
        assert not archiver.archived(snap(), pods)
        del kube.reject["p1"]
        await archiver.round({}, lambda key: pods)
        assert archiver.archived(snap(), pods)
        await archiver.stop()

    asyncio.run(scenario())
    assert {item.pod for item in SqlStore(url).logs("uid-1")} == {"p1", "p2"}


def test_a_deleted_pipeline_is_forgotten_once_written_and_read(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.pods["p1"] = {}
    archiver = Archiver(HistorySettings(url=f"sqlite:///{tmp_path / 'h.db'}"), kube)
    pod = finished_pod("p1", "pod-uid-1")

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), [pod])
        archiver.note(snap())  # the DELETED event: its last state, then forgotten
        archiver.forget("uid-1")
        assert "uid-1" in archiver.runs
        await archiver.round({}, lambda key: [pod])  # the record, then the logs
        await archiver.round({}, lambda key: [pod])
        assert archiver.runs == {}
        assert archiver.gone == set()
        await archiver.stop()

    asyncio.run(scenario())
    assert kube.log_reads == [("p1", "step"), ("p1", "db")]
