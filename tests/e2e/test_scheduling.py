"""A ReadWriteOnce workspace keeps all of a pipeline's pods on one node, among several."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, OperatorProcess
from .kube import Cluster
from .pipelines import Kubectl, steps_by_name

pytestmark = pytest.mark.e2e

FAKE_NODES = 3
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
def several_nodes(
    cluster: Cluster, tmp_path: Path, shipway_operator: object
) -> Iterator[tuple[Kubectl, Path]]:
    """kwok fake nodes next to the real one, a namespace of our own, and an operator for it
    whose step pods tolerate the fake nodes' taint."""
    if not cluster.local:
        pytest.skip("kwok fake nodes need the local cluster")
    from localkube.addons import kwok
    from localkube.config import Paths

    paths = Paths.default()
    fake = cluster.json("get", "nodes", "-l", "type=kwok")["items"]
    kwok.scale(paths, max(len(fake), FAKE_NODES))  # also (re)starts kwok itself
    namespace = f"pin-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")]),
        "SHIPWAY_STEP_TOLERATIONS": json.dumps([KWOK_TAINT]),
    }
    operator = OperatorProcess(
        [sys.executable, "-m", "shipway", "operator", "-n", namespace], env, tmp_path / "op.log"
    )
    operator.start()
    try:
        yield Kubectl(namespace), paths.storage
    finally:
        operator.stop()
        cluster.run("delete", "namespace", namespace, "--wait=false", check=False)


def static_volume(namespace: str, claim: str, storage: Path, access: str) -> list[dict[str, Any]]:
    """A pre-bound volume without node affinity, and its claim: only Shipway's own rules can
    keep pods together (a local-path volume would pin them to its node by itself). The
    pipeline reuses the claim through spec.workspace.claimName."""
    name = f"{namespace}-{claim}"
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"shipway-e2e": namespace}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": [access],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "",
                "claimRef": {"namespace": namespace, "name": claim},
                "hostPath": {"path": str(storage / name), "type": "DirectoryOrCreate"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {
                "accessModes": [access],
                "storageClassName": "",
                "volumeName": name,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]


def spread_pipeline(name: str, access: str) -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "workspace": {"accessModes": [access], "claimName": f"{name}-workspace"},
            "services": {"app": {"image": "busybox:1.36", "volumes": ["./:/ws"]}},
            "steps": [
                {
                    "type": "parallel",
                    "steps": [{"service": "app", "command": f"echo p{i}"} for i in range(6)],
                },
                *({"service": "app", "command": f"echo s{i}"} for i in range(4)),
            ],
        },
    }


def nodes_of(k: Kubectl, body: dict[str, Any]) -> dict[str, str]:
    return {
        s["name"]: k.json("get", "pod", s["pod"])["spec"]["nodeName"]
        for s in steps_by_name(body).values()
    }


def run_on_static_volume(
    k: Kubectl, cluster: Cluster, storage: Path, name: str, *, access: str
) -> dict[str, Any]:
    """Run the spread pipeline on a pre-bound volume; the volume is removed afterwards."""
    volume = static_volume(k.namespace, f"{name}-workspace", storage, access)
    try:
        items = json.dumps({"apiVersion": "v1", "kind": "List", "items": volume})
        cluster.kubectl("apply", "-f", "-", input=items)
        k.apply_docs([spread_pipeline(name, access)])
        body = k.wait_for(name, timeout=180)
    finally:
        cluster.run("delete", "pv", "-l", f"shipway-e2e={k.namespace}", "--wait=false", check=False)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    return body


def test_read_write_once_pods_stay_on_one_node(
    several_nodes: tuple[Kubectl, Path], cluster: Cluster
) -> None:
    k, storage = several_nodes
    body = run_on_static_volume(k, cluster, storage, "rwo", access="ReadWriteOnce")
    nodes = nodes_of(k, body)
    assert len(set(nodes.values())) == 1, nodes
    assert body["status"]["nodeName"] == next(iter(nodes.values()))
    schedulable = len(cluster.json("get", "nodes")["items"])
    print(f"\nRWO: 10 pods on {set(nodes.values())} out of {schedulable} nodes")


def test_read_write_many_pods_are_not_pinned(
    several_nodes: tuple[Kubectl, Path], cluster: Cluster
) -> None:
    k, storage = several_nodes
    body = run_on_static_volume(k, cluster, storage, "rwx", access="ReadWriteMany")
    pods = [k.json("get", "pod", s["pod"]) for s in body["status"]["steps"]]
    assert all("affinity" not in p["spec"] for p in pods)
    assert "nodeName" not in body["status"]
    print(f"\nRWX: 10 pods on {len({p['spec']['nodeName'] for p in pods})} nodes")
