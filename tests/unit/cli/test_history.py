"""shipway logs/status/list --all/history reading the history store (no Kubernetes needed)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shipway.cli import common, main
from shipway.history.records import build_record
from shipway.history.store import ArchivedLog, SqlStore

from .client_builders import FakeApi, failed_run

LOGS = {"p-1": "built\n", "p-3": "lint says no\n", "p-4": "sent\n"}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("SHIPWAY_HISTORY", url)
    made = SqlStore(url)
    yield made
    made.close()


def archive(store: SqlStore, body: dict[str, Any], logs: dict[str, str]) -> None:
    body = copy.deepcopy(body)
    body["metadata"].setdefault("uid", "uid-1")
    body["metadata"].setdefault("namespace", "ci")
    store.save_runs([build_record(body)])
    containers = {"p-4": "slack"}
    for pod, text in logs.items():
        container = containers.get(pod, "app")
        store.save_logs([ArchivedLog("uid-1", pod, f"u-{pod}", container, text, len(text))])


def use(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> FakeApi:
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    return api


def test_logs_and_status_of_a_deleted_pipeline_print_as_when_it_was_live(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: SqlStore
) -> None:
    live = use(monkeypatch, FakeApi([failed_run()], dict(LOGS)))
    assert main(["logs", "demo-x1"]) == 0
    live_logs = capsys.readouterr().out
    assert main(["status", "demo-x1"]) == 0
    live_status = capsys.readouterr().out
    archive(store, failed_run(), LOGS)

    live.states = [{"metadata": {"name": "someone-else"}}]  # the Pipeline is gone
    assert main(["logs", "demo-x1"]) == 0
    assert capsys.readouterr().out == live_logs
    assert main(["status", "demo-x1"]) == 0
    assert capsys.readouterr().out == live_status
    assert main(["logs", "demo-x1", "--step", "lint", "--no-prefix"]) == 0
    assert capsys.readouterr().out == "lint says no\n"
    assert main(["logs", "nope"]) == 2
    assert "pipeline 'nope' not found in namespace 'ci'" in capsys.readouterr().err


def test_a_pod_that_is_gone_prints_from_the_archive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: SqlStore
) -> None:
    archive(store, failed_run(), {"p-1": "built, archived\n"})
    run = failed_run()
    run["metadata"]["uid"] = "uid-1"
    use(monkeypatch, FakeApi([run], {"p-3": "lint says no\n"}))
    assert main(["logs", "demo-x1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "(step: build) built, archived",
        "(step: lint) lint says no",
    ]


def test_live_logs_print_secret_values_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: SqlStore
) -> None:
    run = failed_run()
    run["spec"]["services"]["app"]["envFrom"] = [{"secretRef": {"name": "env"}}]
    api = use(monkeypatch, FakeApi([run], {"p-1": "token is hunter22!\n"}))
    api.secrets["env"] = {"data": {"T": base64.b64encode(b"hunter22").decode()}}
    assert main(["logs", "demo-x1", "--step", "build"]) == 0
    assert capsys.readouterr().out == "(step: build) token is ***!\n"


def test_history_pages_newest_first_and_list_all_adds_the_gone_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: SqlStore
) -> None:
    meta = {"name": "x", "namespace": "ci", "creationTimestamp": "2026-11-27T11:58:00Z"}
    base = build_record({**failed_run(), "metadata": meta})
    assert base.created_at is not None
    records = [
        replace(
            base,
            uid=f"uid-{n}",
            name=f"app-{n}",
            branch="main" if n % 2 else "dev",
            created_at=base.created_at + timedelta(minutes=n),
        )
        for n in range(5)
    ]
    store.save_runs(records)
    use(monkeypatch, FakeApi([failed_run()]))
    assert main(["history", "--limit", "2"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == [
        "NAME", "PROJECT", "BRANCH", "COMMIT", "PHASE", "STEPS", "DURATION", "AGE"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["app-4", "app-3"]
    more = captured.err.strip().removeprefix("shipway: more: shipway history ").split()
    assert main(["history", "--limit", "2", *more]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "app-2",
        "app-1",
    ]
    assert main(["history", "--branch", "main"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "app-3",
        "app-1",
    ]
    assert main(["history", "--before", "not-a-cursor"]) == 2
    assert "--before" in capsys.readouterr().err
    assert main(["list", "--all"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(names) == ["app-0", "app-1", "app-2", "app-3", "app-4", "demo-x1"]


def test_history_without_a_store_says_how_to_name_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPWAY_HISTORY", f"sqlite:///{tmp_path / 'none.db'}")
    use(monkeypatch, FakeApi([failed_run()]))
    assert main(["history"]) == 2
    assert "SHIPWAY_HISTORY" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


class ApiOnly(FakeApi):
    """A cluster whose history is read through the history API only (the store is the
    operator's, out of reach): ``get_path`` answers as the server does, from the store."""

    def __init__(self, store: SqlStore, *args: Any) -> None:
        super().__init__(*args)
        self.store = store
        self.paths: list[str] = []

    def get_path(self, path: str, query: Any) -> Any:
        from shipway.history import api

        self.paths.append(path)
        found = api.route(path)
        assert found is not None
        assert found.namespace == "ci"
        if found.kind == "list":
            limit = api.limit_of(query.get("limit"))
            return api.run_list(self.store.page("ci", limit=limit), limit)
        record = self.store.run("ci", found.name)
        if record is None:
            return None
        if found.kind == "get":
            return api.run_object(record, whole=True)
        return api.log_object(record, self.store.logs(query["uid"]))


def test_without_a_store_the_cli_reads_the_history_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'operator-side.db'}")
    archive(store, failed_run(), LOGS)
    monkeypatch.setenv("SHIPWAY_HISTORY", "api")
    fake = use(monkeypatch, ApiOnly(store, [{"metadata": {"name": "someone-else"}}]))
    assert main(["logs", "demo-x1", "--step", "lint", "--no-prefix"]) == 0
    assert capsys.readouterr().out == "lint says no\n"
    assert any(p.endswith("/namespaces/ci/runs/demo-x1/log") for p in fake.paths)  # type: ignore[attr-defined]
    assert main(["history"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == "demo-x1"
    assert main(["status", "demo-x1"]) == 0
    assert "lint" in capsys.readouterr().out
    # No file of a local operator and no setting: the API too.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SHIPWAY_HISTORY")
    assert main(["logs", "demo-x1", "--step", "build", "--no-prefix"]) == 0
    assert capsys.readouterr().out == "built\n"
    store.close()
