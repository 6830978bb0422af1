"""History on the real cluster: logs after the Pipeline is gone, masked secrets, retention,
and an operator killed while archiving.

The session's operator writes to its own SQLite store (conftest sets ``SHIPWAY_HISTORY``),
and the command line run here reads the same file, as on a developer's machine.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from shipway.history.store import SqlStore

from .pipelines import Kubectl
from .test_cli import shipway

pytestmark = pytest.mark.e2e

IMAGE = "busybox:1.36"
SECRET_VALUE = "s3cr3t-value-4711"


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def store() -> SqlStore:
    url = os.environ.get("SHIPWAY_HISTORY")
    assert url, "the session's operator sets SHIPWAY_HISTORY"
    return SqlStore(url)


def pipeline(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    meta = {"generateName": name} if name.endswith("-") else {"name": name}
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": meta,
        "spec": {"services": {"app": {"image": IMAGE}}, "steps": steps, **spec},
    }


def create(k: Kubectl, body: dict[str, Any]) -> str:
    out = k("create", "-f", "-", "-o", "jsonpath={.metadata.name}", stdin=json.dumps(body))
    return out.strip()


def wait_archived(k: Kubectl, name: str, timeout: float = 60) -> tuple[str, int]:
    """Until every pod of the pipeline has its logs in the store, and its record the phase
    it has now; its UID and pod count."""
    body = k.pipeline(name)
    uid, phase = body["metadata"]["uid"], body["status"]["phase"]
    pods = k.json("get", "pods", "-l", f"shipway.dev/pipeline={name}")["items"]
    wanted = {p["metadata"]["uid"] for p in pods}
    deadline = time.monotonic() + timeout
    with_store = store()
    try:
        while True:
            record = with_store.run(k.namespace, name)
            if with_store.archived(wanted) == wanted and record and record.phase == phase:
                break
            assert time.monotonic() < deadline, f"logs of {name} not archived in {timeout}s"
            time.sleep(0.5)
    finally:
        with_store.close()
    return uid, len(wanted)


def test_logs_print_after_the_pipeline_is_deleted_with_secret_values_masked(
    k: Kubectl, namespace: str
) -> None:
    k("create", "secret", "generic", "app-env", f"--from-literal=TOKEN={SECRET_VALUE}")
    body = pipeline(
        "masked",
        [
            {"name": "echo", "service": "app", "command": "sh -c 'echo token=$TOKEN; echo done'"},
            {"name": "second", "service": "app", "command": "echo second step"},
        ],
    )
    body["spec"]["services"]["app"]["envFrom"] = [{"secretRef": {"name": "app-env"}}]
    k.apply_docs([body])
    k.wait_for("masked", ("Succeeded",))

    live = shipway(namespace, "logs", "masked")
    assert live.returncode == 0, live.stderr
    assert "token=***" in live.stdout
    assert SECRET_VALUE not in live.stdout
    live_status = shipway(namespace, "status", "masked")

    wait_archived(k, "masked")
    k("delete", "pipeline", "masked", "--wait=true")
    deadline = time.monotonic() + 60
    while k("get", "pods", "-l", "shipway.dev/pipeline=masked", "-o", "name").strip():
        assert time.monotonic() < deadline, "the pods outlived their Pipeline"
        time.sleep(0.5)

    archived = shipway(namespace, "logs", "masked")
    assert archived.returncode == 0, archived.stderr
    assert archived.stdout == live.stdout  # the same lines as when it was live
    assert SECRET_VALUE not in archived.stdout
    status = shipway(namespace, "status", "masked")
    assert status.returncode == 0, status.stderr
    assert status.stdout == live_status.stdout
    one = shipway(namespace, "logs", "masked", "--step", "second", "--no-prefix")
    assert one.stdout == "second step\n"
    listed = shipway(namespace, "list", "--all")
    assert any(line.split()[:2] == ["masked", "Succeeded"] for line in listed.stdout.splitlines())
    history = shipway(namespace, "history")
    assert history.returncode == 0, history.stderr
    assert any(
        line.split()[0] == "masked" and "Succeeded" in line.split()
        for line in history.stdout.splitlines()[1:]
    )
    missing = shipway(namespace, "logs", "never-was")
    assert missing.returncode == 2
    assert "not found" in missing.stderr


def test_retention_prunes_old_runs_of_a_branch_keeps_the_newest_and_never_a_running_one(
    k: Kubectl, namespace: str
) -> None:
    k.apply_docs(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "shipway-retention"},
                "data": {"succeeded": "2", "failed": "1"},
            }
        ]
    )
    main = {"branch": "main"}
    running = create(k, pipeline("app-", [{"service": "app", "command": "sleep 600"}], ci=main))
    k.wait_for(running, ("Running",))
    done = []
    for _ in range(4):  # one after another: their finish times tell the newest
        name = create(k, pipeline("app-", [{"service": "app", "command": "true"}], ci=main))
        k.wait_for(name, ("Succeeded",))
        done.append(name)
        time.sleep(1.1)  # finishedAt has seconds
    other = create(
        k, pipeline("app-", [{"service": "app", "command": "true"}], ci={"branch": "dev"})
    )
    k.wait_for(other, ("Succeeded",))

    deadline = time.monotonic() + 90
    while True:
        names = set(k("get", "pipelines", "-o", "jsonpath={.items[*].metadata.name}").split())
        if not names & set(done[:2]):
            break
        assert time.monotonic() < deadline, f"not pruned in 90s: {sorted(names)}"
        time.sleep(1)
    assert set(done[2:]) <= names, "the newest two of the branch stay"
    assert running in names, "a running pipeline is never pruned"
    assert other in names, "another branch keeps its own runs"
    # the pruned runs' records and logs stay in the store
    history = shipway(namespace, "history", "--branch", "main", "--phase", "Succeeded")
    listed = {line.split()[0] for line in history.stdout.splitlines()[1:]}
    assert set(done) <= listed, history.stdout + history.stderr
    k("patch", "pipeline", running, "--type=merge", "-p", '{"spec":{"cancel":true}}')


def test_an_operator_killed_while_archiving_archives_each_log_once_and_complete(
    k: Kubectl, namespace: str, shipway_operator: Any
) -> None:
    # 1 MB a log (6.5 MB in the kubelet's file with its timestamps: under its 10Mi rotation,
    # past which the API serves only the newest file). The container runtime itself may keep
    # a little less than was written (seen: 142,263 of 150,000 lines in the node's file too).
    lines = 150_000
    steps = [{"name": f"s{i}", "service": "app", "command": f"seq 1 {lines}"} for i in range(8)]
    k.apply_docs([pipeline("big", [{"type": "parallel", "steps": steps}])])
    k.wait_for("big", ("Succeeded",), timeout=240)
    uid = k.pipeline("big")["metadata"]["uid"]
    reader = store()
    try:
        deadline = time.monotonic() + 60
        while not reader.logs(uid):  # the first pod is archived: the others are on their way
            assert time.monotonic() < deadline, "nothing archived in 60s"
            time.sleep(0.05)
        shipway_operator.kill()
        killed_with = len({item.pod for item in reader.logs(uid)})
        shipway_operator.start()
        _, pods = wait_archived(k, "big", timeout=120)
        logs = reader.logs(uid)
    finally:
        reader.close()
    assert pods == 8
    per_pod: dict[str, list[str]] = {}
    for item in logs:
        per_pod.setdefault(item.pod, []).append(item.container)
    assert len(per_pod) == 8
    assert all(len(c) == len(set(c)) for c in per_pod.values())
    for item in logs:  # complete: what the API server serves for that container
        served = k("logs", item.pod, "-c", item.container)
        assert item.text == served, f"{item.pod}/{item.container}: {len(item.text)} bytes"
        assert item.text.startswith("1\n2\n3\n")
        assert len(item.text) > 500_000
    print(f"\nkilled with {killed_with} of 8 pods archived; after the restart all 8, complete")


def test_the_store_on_a_real_postgresql(cluster: Any, namespace: str, tmp_path: Any) -> None:
    """The same store checks as on SQLite (tests/unit/history/test_history_store.py), each on a fresh
    database of a PostgreSQL 15 server running in the cluster (Debian's packages)."""
    import psycopg

    from tests.unit.history import test_history_store as checks

    env = [
        {"name": "POSTGRES_PASSWORD", "value": "s3cret"},
        {"name": "POSTGRES_USER", "value": "ci"},
        {"name": "POSTGRES_DB", "value": "history"},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pg"},
        "spec": {
            "containers": [
                {
                    "name": "db",
                    "image": "postgres:15",
                    "env": env,
                    "readinessProbe": {
                        "exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", "ci"]},
                        "periodSeconds": 1,
                    },
                }
            ]
        },
    }
    cluster.apply(namespace, pod)
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/pg", "--timeout=240s")
    ip = cluster.json("get", "pod", "pg", "-n", namespace)["status"]["podIP"]
    admin = f"postgresql://ci:s3cret@{ip}:5432/history"
    for n, check in enumerate(
        [
            checks.test_records_are_upserted_and_read_back_newest_of_a_name,
            checks.test_pages_are_newest_first_filtered_and_continue_after_a_cursor,
            checks.test_a_pods_logs_are_stored_once,
            checks.test_expiry_drops_old_runs_and_the_oldest_beyond_the_size_cap,
        ]
    ):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE check{n}")
        on_postgres = SqlStore(f"postgresql+psycopg://ci:s3cret@{ip}:5432/check{n}")
        assert on_postgres.dialect == "postgresql"
        try:
            check(on_postgres)
        finally:
            on_postgres.close()
