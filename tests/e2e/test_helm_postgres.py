"""The chart with the history in PostgreSQL and two operator replicas: the leader is killed
mid-run, the run completes, and every step's log is archived exactly once, complete.

PostgreSQL 15 (the local cluster's image, built from Debian's packages) runs in the release's
namespace; the chart reads its URL from a Secret. The read API is left out (cluster-scoped:
tests/e2e/test_helm.py's release serves it); the store is checked directly, from here. Never
run this module at the same time as test_helm.py or test_helm_all_namespaces.py.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import IN_CLUSTER_NAMESPACES, Image
from .kube import Cluster
from .test_helm import CHART, FULLNAME, RELEASE, WAIT, Release, _wait_until, _webhook_answers

pytestmark = pytest.mark.e2e

STEPS = 5
LINES = 12  # one a second: a step runs ~12 s, the pipeline about a minute


def _postgres(namespace: str) -> list[dict[str, Any]]:
    labels = {"app": "history-db"}
    env = [
        {"name": "POSTGRES_PASSWORD", "value": "s3cret"},
        {"name": "POSTGRES_USER", "value": "ci"},
        {"name": "POSTGRES_DB", "value": "history"},
    ]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "history-db", "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "db",
                        "image": "postgres:15",
                        "env": env,
                        "ports": [{"containerPort": 5432}],
                        "readinessProbe": {
                            "exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", "ci"]},
                            "periodSeconds": 1,
                        },
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "history-db"},
            "spec": {"selector": labels, "ports": [{"port": 5432, "targetPort": 5432}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "history-db"},
            "stringData": {
                "url": f"postgresql://ci:s3cret@history-db.{namespace}.svc:5432/history"
            },
        },
    ]


@pytest.fixture(scope="module")
def release(cluster: Cluster, helm_binary: str, operator_image: Image) -> Iterator[Release]:
    prefix = IN_CLUSTER_NAMESPACES.rstrip("*")
    namespace = f"{prefix}pg-{secrets.token_hex(3)}"
    made = Release(cluster, helm_binary, operator_image.ref, namespace, f"{namespace}-other")
    cluster.kubectl("create", "namespace", namespace)
    cluster.apply(namespace, *_postgres(namespace))
    yield made
    made.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
    cluster.run("delete", "namespace", namespace, "--wait=false", check=False)


def _pipeline() -> dict[str, Any]:
    script = f"for i in $(seq 1 {LINES}); do echo step-$S line $i; sleep 1; done"
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "survives-leader"},
        "spec": {
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [
                {"name": f"s{n}", "service": "app", "command": f"sh -c 'S={n}; {script}'"}
                for n in range(1, STEPS + 1)
            ],
        },
    }


def test_leader_killed_mid_run_loses_no_step_and_archives_each_log_once(
    release: Release,
) -> None:
    import psycopg

    from shipway.history.logs import unpack

    ns = release.namespace
    release.cluster.kubectl(
        "wait", "-n", ns, "--for=condition=Ready", "pod/history-db", f"--timeout={WAIT}s"
    )
    release.helm(
        "install", RELEASE, str(CHART), "-n", ns,
        *release.values(
            "replicaCount=2",
            "history.postgres.urlSecret=history-db",
            "history.api.enabled=false",
        ),
        "--wait", f"--timeout={WAIT}s",
    )  # fmt: skip

    def leader() -> str | None:
        pods = {p["metadata"]["name"] for p in release.operator_pods()}
        peering = release.json("get", "kopfpeering", FULLNAME, "-n", ns)
        status: dict[str, Any] = peering.get("status") or {}
        if len(pods) != 2 or set(status) != pods:
            return None
        return max(status, key=lambda n: status[n]["priority"])

    first = _wait_until("both replicas are peers", leader, 180)
    # Ready pods are not yet a reachable Service: the node's proxy may still refuse its address
    _wait_until("the in-cluster webhook answers", lambda: _webhook_answers(release), 120)
    release.cluster.apply(ns, _pipeline())

    def second_step_runs() -> bool:
        body = release.json("get", "pipeline", "survives-leader", "-n", ns)
        steps = (body.get("status") or {}).get("steps") or []
        return len(steps) >= 2 and steps[1].get("phase") == "Running"

    _wait_until("the second step runs", second_step_runs, WAIT)
    release.k("delete", "pod", first, "-n", ns, "--grace-period=0", "--force", "--wait=false")
    killed_at = time.monotonic()
    release.k(
        "wait", "-n", ns, "--for=condition=Succeeded", "pipeline/survives-leader",
        f"--timeout={WAIT}s",
    )  # fmt: skip
    body = release.json("get", "pipeline", "survives-leader", "-n", ns)
    steps = body["status"]["steps"]
    assert [s["phase"] for s in steps] == ["Succeeded"] * STEPS
    reporters = release.reporters("survives-leader")
    assert first in reporters, reporters
    assert len(reporters) >= 2, reporters  # another replica finished it

    ip = release.json("get", "pod", "history-db", "-n", ns)["status"]["podIP"]
    url = f"postgresql://ci:s3cret@{ip}:5432/history"
    uid = body["metadata"]["uid"]

    def archived() -> list[tuple[str, str, bytes]] | None:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT pod, container, data FROM shipway_logs WHERE run_uid = %s", (uid,)
            ).fetchall()
        return rows if len(rows) >= STEPS else None

    rows = _wait_until("every step's log is archived", archived, 120)
    pods = [(r[0], r[1]) for r in rows]
    assert len(pods) == len(set(pods)) == STEPS, pods  # one row per pod: archived once
    assert {r[0] for r in rows} == {s["pod"] for s in steps}
    for pod, _, data in rows:
        n = next(s["name"] for s in steps if s["pod"] == pod).removeprefix("s")
        expected = "".join(f"step-{n} line {i}\n" for i in range(1, LINES + 1))
        assert unpack(data) == expected, pod  # complete, even the step the kill cut across
    with psycopg.connect(url) as conn:
        (phase,) = conn.execute(
            "SELECT phase FROM shipway_runs WHERE uid = %s", (uid,)
        ).fetchone() or ("missing",)
    assert phase == "Succeeded"
    print(f"\nleader {first} killed; the run finished {time.monotonic() - killed_at:.0f}s later")
    print(json.dumps({"reporters": sorted(reporters)}))
