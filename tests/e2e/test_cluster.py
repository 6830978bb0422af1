"""The cluster itself behaves like a real one: what every other end-to-end test relies on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localkube.config import Paths

from .kube import Cluster, busybox_pod

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PINNED = "v1.35.4"
BUSYBOX = "docker.io/library/busybox:1.36"
REDIS = "docker.io/library/redis:7.0"


def _fake(node: dict[str, Any]) -> bool:
    """A kwok node: ours (annotation kwok.x-k8s.io/node) or a benchmark's ("fake" kubelet)."""
    annotations = node["metadata"].get("annotations", {})
    return "kwok.x-k8s.io/node" in annotations or (
        node["status"].get("nodeInfo", {}).get("kubeletVersion") == "fake"
    )


def _real_nodes(cluster: Cluster) -> list[dict[str, Any]]:
    return [n for n in cluster.json("get", "nodes")["items"] if not _fake(n)]


def _ready(node: dict[str, Any]) -> bool:
    conditions = node["status"]["conditions"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_a_ready_node_at_the_pinned_version(cluster: Cluster) -> None:
    nodes = _real_nodes(cluster)
    assert nodes, "no node"
    assert all(_ready(n) for n in nodes)
    if cluster.local:
        assert len(nodes) == 1
        assert nodes[0]["metadata"]["name"] == "localkube"
        info = nodes[0]["status"]["nodeInfo"]
        assert info["kubeletVersion"] == PINNED
        assert info["containerRuntimeVersion"].startswith("containerd://")
        server = cluster.json("version")["serverVersion"]
        assert server["gitVersion"] == PINNED


def test_a_dynamically_provisioned_claim_carries_a_file_between_pods(
    cluster: Cluster, namespace: str
) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        # No storageClassName: the default StorageClass must provision it.
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mounts = [{"name": "data", "mountPath": "/data"}]
    cluster.apply(namespace, claim)
    if cluster.local:
        # Immediate: the local class makes the volume as soon as the claim exists, before
        # any pod uses it (docs/local-cluster.md#storage).
        deadline = time.monotonic() + 60
        while cluster.json("get", "pvc", "data", "-n", namespace)["status"]["phase"] != "Bound":
            assert time.monotonic() < deadline, "the claim was not bound in 60 s"
            time.sleep(0.2)
    cluster.apply(
        namespace,
        busybox_pod(
            "writer", "echo shipway-was-here > /data/proof && sync", volumes=volumes, mounts=mounts
        ),
    )
    assert cluster.wait_pod(namespace, "writer")["status"]["phase"] == "Succeeded"
    cluster.apply(
        namespace, busybox_pod("reader", "cat /data/proof", volumes=volumes, mounts=mounts)
    )
    assert cluster.wait_pod(namespace, "reader")["status"]["phase"] == "Succeeded"
    assert cluster.logs(namespace, "reader").strip() == "shipway-was-here"

    pvc = cluster.json("get", "pvc", "data", "-n", namespace)
    assert pvc["status"]["phase"] == "Bound"
    pv = cluster.json("get", "pv", pvc["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["namespace"] == namespace
    if cluster.local:
        assert pv["spec"]["storageClassName"] == "local-path"
        # The provisioner's shared-filesystem mode: the one node's directory, no affinity.
        assert pv["spec"]["hostPath"]["path"].startswith(f"{Paths.default().storage}/")
        assert "nodeAffinity" not in pv["spec"]


def test_rbac_is_enforced_for_service_accounts(cluster: Cluster, namespace: str) -> None:
    sa = f"system:serviceaccount:{namespace}:default"
    denied = cluster.run(
        "auth", "can-i", "list", "secrets", "-n", namespace, f"--as={sa}", check=False
    )
    assert denied.stdout.strip() == "no"
    assert denied.returncode != 0
    allowed = cluster.run("auth", "can-i", "list", "secrets", "-n", namespace, check=False)
    assert allowed.stdout.strip() == "yes"


def test_native_sidecars_run_beside_the_main_container_and_stop_after_it(
    cluster: Cluster, namespace: str
) -> None:
    pod = busybox_pod(
        "sidecar",
        "test -f /shared/ready && echo main-saw-the-sidecar",
        volumes=[{"name": "shared", "emptyDir": {}}],
        mounts=[{"name": "shared", "mountPath": "/shared"}],
    )
    pod["spec"]["initContainers"] = [
        {
            "name": "helper",
            "image": BUSYBOX,
            "restartPolicy": "Always",
            "command": ["sh", "-c", "touch /shared/ready; exec sleep 3600"],
            "startupProbe": {"exec": {"command": ["test", "-f", "/shared/ready"]}},
            "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
        }
    ]
    cluster.apply(namespace, pod)
    done = cluster.wait_pod(namespace, "sidecar")
    assert done["status"]["phase"] == "Succeeded"
    assert cluster.logs(namespace, "sidecar", "main").strip() == "main-saw-the-sidecar"
    helper = done["status"]["initContainerStatuses"][0]
    assert helper["name"] == "helper"
    assert "terminated" in helper["state"]


def test_pods_reach_the_api_server_through_the_kubernetes_service(
    cluster: Cluster, namespace: str
) -> None:
    script = (
        'nc -w 5 "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT" </dev/null'
        " && test -s /var/run/secrets/kubernetes.io/serviceaccount/token"
        " && echo reached $KUBERNETES_SERVICE_HOST"
    )
    cluster.apply(namespace, busybox_pod("api", script))
    assert cluster.wait_pod(namespace, "api")["status"]["phase"] == "Succeeded"
    assert cluster.logs(namespace, "api").startswith("reached ")


def test_the_redis_image_serves_other_pods(cluster: Cluster, namespace: str) -> None:
    server = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "redis"},
        "spec": {
            "containers": [
                {
                    "name": "redis",
                    "image": REDIS,
                    "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}},
                }
            ]
        },
    }
    cluster.apply(namespace, server)
    running = cluster.wait_pod(namespace, "redis", phases=("Running",))
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/redis", "--timeout=60s")
    ip = running["status"]["podIP"]
    client = busybox_pod(
        "client", f"redis-cli -h {ip} set greeting hi && redis-cli -h {ip} get greeting",
        image=REDIS,
    )  # fmt: skip
    cluster.apply(namespace, client)
    assert cluster.wait_pod(namespace, "client")["status"]["phase"] == "Succeeded"
    assert cluster.logs(namespace, "client").split() == ["OK", "hi"]


def test_kwok_adds_tainted_fake_nodes(cluster: Cluster) -> None:
    if not cluster.local:
        pytest.skip("kwok nodes are a feature of the local cluster")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "hack"))

    def kwok_nodes(count: int) -> None:
        subprocess.run(
            [sys.executable, "-m", "localkube", "kwok-nodes", str(count)], env=env, check=True
        )

    before = len(cluster.json("get", "nodes", "-l", "type=kwok")["items"])
    kwok_nodes(before + 2)
    try:
        fake = cluster.json("get", "nodes", "-l", "type=kwok")["items"]
        assert len(fake) == before + 2
        assert all(_ready(n) for n in fake)
        # Only kwok's own taint: the node controller's not-ready taint is gone too,
        # so pods that tolerate kwok can be scheduled as soon as the command returns.
        assert all(
            [(t["key"], t.get("value"), t["effect"]) for t in n["spec"]["taints"]]
            == [("kwok.x-k8s.io/node", "fake", "NoSchedule")]
            for n in fake
        )
    finally:
        kwok_nodes(before)
    assert len(cluster.json("get", "nodes", "-l", "type=kwok")["items"]) == before
