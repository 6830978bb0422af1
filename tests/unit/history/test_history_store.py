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
        self.log_batches: list[set[str]] = []
        """The pods of each save_logs call (one transaction each)."""
        self.down = False

    def save_runs(self, records: Any) -> None:
        if self.down:
            raise ConnectionError("the store is down")
        self.run_batches.append(len(records))
        super().save_runs(records)

    def save_logs(self, pod_logs: Any) -> None:
        if self.down:
            raise ConnectionError("the store is down")
        self.log_batches.append({item.pod for item in pod_logs})
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


def test_a_running_pipelines_record_is_refreshed_now_and_then_its_end_at_once(
    tmp_path: Path,
) -> None:
    """A run's first record goes with the next batch; while it runs, a newer state waits
    until its record is RECORD_EVERY old; its finished state (or its deletion) goes at once."""
    from shipway.controller.archive.archiver import RECORD_EVERY

    kube = FakeKube()
    stores: list[CountingStore] = []

    def opener(u: str) -> CountingStore:
        stores.append(CountingStore(u))
        return stores[-1]

    url = f"sqlite:///{tmp_path / 'history.db'}"
    now = [1000.0]
    archiver = Archiver(HistorySettings(url=url), kube, opener, monotonic=lambda: now[0])

    def phase_in_store(name: str) -> str | None:
        got = SqlStore(url).run("ci", name)
        return got.phase if got is not None else None

    async def scenario() -> None:
        archiver.note(snap("Running"))
        archiver.note(snap("Running", name="other", uid="uid-2"))
        await archiver.round({}, lambda key: [])
        assert stores[0].run_batches == [2]
        now[0] += 2
        archiver.note(snap("Running", name="other", uid="uid-2"))  # a step moved on
        await archiver.round({}, lambda key: [])
        assert stores[0].run_batches == [2]  # held back: written 2 s ago
        now[0] += RECORD_EVERY
        await archiver.round({}, lambda key: [])
        assert stores[0].run_batches == [2, 1]
        now[0] += 2
        archiver.note(snap("Succeeded"))  # its end: at once
        await archiver.round({}, lambda key: [])
        assert phase_in_store("demo") == "Succeeded"
        now[0] += 1
        archiver.note(snap("Running", name="other", uid="uid-2"))
        archiver.forget("uid-2")  # deleted: its last state at once, then forgotten
        await archiver.round({}, lambda key: [])
        assert archiver.runs.keys() == {"uid-1"}
        now[0] += 1
        archiver.note(snap("Succeeded"))  # nothing newer is ever lost at stop
        await archiver.stop()

    asyncio.run(scenario())
    assert stores[0].run_batches == [2, 1, 1, 1, 1]
    assert phase_in_store("other") == "Running"


def test_a_records_spec_is_derived_once_and_again_when_it_changes() -> None:
    from shipway.controller.archive import runs

    first = snap("Running")
    built = runs.records([first], {})
    spec = built.specs["uid-1"]
    assert spec.secrets == ("env",)
    record = built.records[0][0]
    assert record.spec_json == json.dumps(first.spec, separators=(",", ":"), sort_keys=True)
    again = runs.records([snap("Succeeded")], {"uid-1": spec})
    assert again.specs["uid-1"] is spec
    assert again.records[0][0].spec_json is spec.record_json
    changed = replace(first, spec_json='{"steps":[],"dockercfgSecret":"pull"}')
    other = runs.records([changed], {"uid-1": spec})
    assert other.specs["uid-1"].secrets == ("pull",)
    assert json.loads(other.records[0][0].spec_json) == {"dockercfgSecret": "pull", "steps": []}
    held = runs.records([first, snap("Failed")], {}, frozenset({"uid-1"}))
    assert [s.status_json for s in held.held] == [first.status_json]
    assert [r.phase for r, _ in held.records] == ["Failed"]


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


def test_a_log_that_cannot_be_read_waits_alone_with_backoff(tmp_path: Path) -> None:
    """A failed read is tried again after 2 s, then 4, 8 ... up to 60 s (docs/history.md),
    not at every round; the other pods go on."""
    from shipway.controller.kube import KubeError

    kube = FakeKube()
    kube.pods["p1"] = kube.pods["p2"] = {}
    kube.logs[("p2", "step")] = b"fine\n"
    kube.reject["p1"] = KubeError(403, "Forbidden", "pods/log is forbidden")
    url = f"sqlite:///{tmp_path / 'history.db'}"
    now = [100.0]
    archiver = Archiver(HistorySettings(url=url), kube, monotonic=lambda: now[0])
    pods = [finished_pod("p1", "pod-uid-1"), finished_pod("p2", "pod-uid-2")]

    def reads_of_p1() -> int:
        return sum(1 for pod, _ in kube.log_reads if pod == "p1")

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), pods)
        await archiver.round({}, lambda key: pods)  # no exception: the round goes on
        assert list(archiver.pending) == ["pod-uid-1"]
        assert not archiver.archived(snap(), pods)
        assert reads_of_p1() == 1
        for waited, expected in ((1.9, 1), (0.1, 2), (3.9, 2), (0.1, 3), (8, 4), (16, 5)):
            now[0] += waited
            await archiver.round({}, lambda key: pods)
            assert reads_of_p1() == expected, (waited, expected)
        assert archiver.pending["pod-uid-1"].not_before == now[0] + 32
        for _ in range(3):  # 32, then the 60 s ceiling
            now[0] += 60
            await archiver.round({}, lambda key: pods)
        assert archiver.pending["pod-uid-1"].not_before == now[0] + 60
        del kube.reject["p1"]
        now[0] += 60
        await archiver.round({}, lambda key: pods)
        assert archiver.archived(snap(), pods)
        await archiver.stop()

    asyncio.run(scenario())
    assert {item.pod for item in SqlStore(url).logs("uid-1")} == {"p1", "p2"}
    assert sum(1 for pod, _ in kube.log_reads if pod == "p2") == 2  # two containers, once


def test_a_rounds_pods_are_stored_in_one_transaction_and_kept_while_the_store_fails(
    tmp_path: Path,
) -> None:
    """One write per round, not per pod; logs read before the store failed are written
    later from memory, not read again (one log read per container, whatever happens)."""
    kube = FakeKube()
    names = [f"p{n}" for n in range(5)]
    for name in names:
        kube.pods[name] = {}
        kube.logs[(name, "step")] = f"log of {name}\n".encode()
    stores: list[CountingStore] = []

    def opener(u: str) -> CountingStore:
        stores.append(CountingStore(u))
        return stores[-1]

    url = f"sqlite:///{tmp_path / 'history.db'}"
    archiver = Archiver(HistorySettings(url=url), kube, opener)
    pods = [finished_pod(name, f"pod-uid-{name}") for name in names]

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), pods[:3])
        await archiver.round({}, lambda key: pods)
        assert stores[0].log_batches == [{"p0", "p1", "p2"}]
        archiver.note_pods(snap(), pods)
        stores[0].down = True
        with pytest.raises(ConnectionError):
            await archiver.round({}, lambda key: pods)
        assert not archiver.archived(snap(), pods)
        stores[0].down = False
        await archiver.round({}, lambda key: pods)
        assert archiver.archived(snap(), pods)
        await archiver.stop()

    asyncio.run(scenario())
    assert stores[0].log_batches == [{"p0", "p1", "p2"}, {"p3", "p4"}]
    assert sorted(kube.log_reads) == sorted((n, c) for n in names for c in ("step", "db"))
    texts = {(item.pod, item.container): item.text for item in SqlStore(url).logs("uid-1")}
    assert texts[("p4", "step")] == "log of p4\n"
    assert len(texts) == 10


def test_a_round_of_long_logs_is_written_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past LOG_BYTES_PER_WRITE a round writes what it has read (whole pods), so a round of
    long logs is not held in memory at once."""
    from shipway.controller.archive import archiver as archiver_module

    monkeypatch.setattr(archiver_module, "LOG_BYTES_PER_WRITE", 1000)
    kube = FakeKube()
    names = [f"p{n}" for n in range(4)]
    for name in names:
        kube.pods[name] = {}
        kube.logs[(name, "step")] = b"x" * 600 + b"\n"
    stores: list[CountingStore] = []

    def opener(u: str) -> CountingStore:
        stores.append(CountingStore(u))
        return stores[-1]

    archiver = Archiver(HistorySettings(url=f"sqlite:///{tmp_path / 'h.db'}"), kube, opener)
    pods = [finished_pod(name, f"pod-uid-{name}") for name in names]

    async def scenario() -> None:
        archiver.note(snap())
        archiver.note_pods(snap(), pods)
        await archiver.round({}, lambda key: pods)
        assert archiver.archived(snap(), pods)
        await archiver.stop()

    asyncio.run(scenario())
    assert [len(batch) for batch in stores[0].log_batches] == [2, 2]
    assert set().union(*stores[0].log_batches) == set(names)


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
