"""Faults on the real cluster: lost pods, pods that cannot start, timeouts, cancel, restarts."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from kubernetes import client, config, watch

from .pipelines import Kubectl, kubeconfig, steps_by_name

pytestmark = pytest.mark.e2e


def pipeline(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {"app": {"image": "busybox:1.36", "volumes": ["./:/ws"]}},
            "steps": steps,
            **spec,
        },
    }


def wait_step(
    k: Kubectl, name: str, step: str, phase: str, *, timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = k.pipeline(name)
        found = steps_by_name(body).get(step) if body.get("status", {}).get("steps") else None
        if found and found["phase"] == phase:
            pod = k.json("get", "pod", found["pod"]) if found.get("pod") else {}
            if phase != "Running" or pod.get("status", {}).get("phase") == "Running":
                return found
        time.sleep(0.3)
    raise AssertionError(f"{name}/{step} never reached {phase}: {k.pipeline(name).get('status')}")


def pod_phase(k: Kubectl, name: str) -> str | None:
    """The pod's phase, or None once it is gone."""
    found = k.run("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return found.stdout.strip() if found.returncode == 0 else None


class PodCreations:
    """Watches a namespace and records every pod UID it sees per pod name."""

    def __init__(self, namespace: str) -> None:
        config.load_kube_config(config_file=kubeconfig())
        self.api = client.CoreV1Api()
        self.namespace = namespace
        self.uids: dict[str, set[str]] = defaultdict(set)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        version = ""
        while not self.stop.is_set():
            stream = watch.Watch().stream(
                self.api.list_namespaced_pod,
                self.namespace,
                resource_version=version,
                timeout_seconds=5,
            )
            try:
                for event in stream:
                    pod = event["object"]
                    version = pod.metadata.resource_version
                    self.uids[pod.metadata.name].add(pod.metadata.uid)
            except Exception:  # a restarting API server: resume from the last version
                version = ""
                time.sleep(0.5)

    def close(self) -> dict[str, set[str]]:
        self.stop.set()
        self.thread.join(timeout=10)
        return dict(self.uids)


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def test_a_pod_deleted_mid_run_fails_its_step_promptly(k: Kubectl) -> None:
    k.apply_docs(
        [
            pipeline(
                "lost",
                [
                    {"name": "long", "service": "app", "command": "sleep 300"},
                    {"name": "after", "service": "app", "command": "true"},
                ],
            )
        ]
    )
    running = wait_step(k, "lost", "long", "Running")
    k("delete", "pod", running["pod"], "--wait=false")
    body = k.wait_for("lost", timeout=60)
    steps = steps_by_name(body)
    assert body["status"]["phase"] == "Failed"
    assert steps["long"]["reason"] == "PodDeleted"
    assert steps["after"]["phase"] == "Skipped"


def test_a_deleted_pod_is_retried_in_a_new_pod_once_the_old_one_is_gone(k: Kubectl) -> None:
    once = "if [ -f /ws/tried ]; then exit 0; fi; touch /ws/tried; sleep 300"
    k.apply_docs(
        [
            pipeline(
                "retried",
                [{"name": "flaky", "service": "app", "command": ["sh", "-c", once], "retries": 1}],
            )
        ]
    )
    running = wait_step(k, "retried", "flaky", "Running")
    k("delete", "pod", running["pod"], "--wait=false")
    body = k.wait_for("retried", timeout=90)
    flaky = steps_by_name(body)["flaky"]
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert flaky["attempt"] == 1
    assert [a["reason"] for a in flaky["attempts"]] == ["PodDeleted"]
    assert re.fullmatch(r"retried-[0-9a-f]{5}-1-r1-flaky", flaky["pod"]), flaky["pod"]


def test_an_evicted_pod_fails_its_step(k: Kubectl) -> None:
    k.apply_docs(
        [pipeline("evicted", [{"name": "long", "service": "app", "command": "sleep 300"}])]
    )
    running = wait_step(k, "evicted", "long", "Running")
    config.load_kube_config(config_file=kubeconfig())
    eviction = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=running["pod"], namespace=k.namespace)
    )
    client.CoreV1Api().create_namespaced_pod_eviction(running["pod"], k.namespace, eviction)
    body = k.wait_for("evicted", timeout=60)
    long = steps_by_name(body)["long"]
    assert body["status"]["phase"] == "Failed"
    assert long["reason"] in ("PodEvicted", "PodDeleted")
    assert long["phase"] == "Failed"


@pytest.mark.parametrize(
    ("service", "command", "reason"),
    [
        ({"image": "busybox:0.0-does-not-exist"}, "true", ("ErrImagePull", "ImagePullBackOff")),
        (
            {"image": "busybox:1.36"},
            "no-such-binary --flag",
            ("StartError", "ContainerCannotRun", "Error"),
        ),
    ],
    ids=["missing-image", "bad-command"],
)
def test_a_pod_that_cannot_start_fails_within_a_bounded_time(
    k: Kubectl, service: dict[str, str], command: str, reason: tuple[str, ...]
) -> None:
    doc = pipeline("broken", [{"name": "start", "service": "app", "command": command}])
    doc["spec"]["services"]["app"] = service
    started = time.monotonic()
    k.apply_docs([doc])
    body = k.wait_for("broken", timeout=120)
    step = steps_by_name(body)["start"]
    assert body["status"]["phase"] == "Failed"
    assert step["reason"] in reason, step
    assert step["message"]
    assert time.monotonic() - started < 100


def test_step_and_pipeline_timeouts_stop_pods_with_a_clear_reason(k: Kubectl) -> None:
    k.apply_docs(
        [
            pipeline(
                "step-timeout",
                [{"name": "slow", "service": "app", "command": "sleep 300", "timeout": "3s"}],
            ),
            pipeline(
                "pipeline-timeout",
                [
                    {"name": "slow", "service": "app", "command": "sleep 300"},
                    {"name": "never", "service": "app", "command": "true"},
                ],
                timeout="8s",
            ),
        ]
    )
    body = k.wait_for("step-timeout", timeout=60)
    assert steps_by_name(body)["slow"]["reason"] == "DeadlineExceeded"
    body = k.wait_for("pipeline-timeout", timeout=60)
    steps = steps_by_name(body)
    assert body["status"]["phase"] == "Failed"
    assert "timeout" in body["status"]["message"]
    assert steps["slow"]["reason"] == "PipelineTimeout"
    assert steps["never"]["phase"] == "Skipped"
    # Stopped: killed by the kubelet (a running pod keeps its logs) or deleted (not started yet).
    deadline = time.monotonic() + 60
    while pod_phase(k, steps["slow"]["pod"]) in ("Pending", "Running"):
        assert time.monotonic() < deadline, "the timed-out pod was not stopped"
        time.sleep(0.5)


def test_cancel_stops_running_pods_promptly_and_keeps_their_logs(k: Kubectl) -> None:
    k.apply_docs(
        [
            pipeline(
                "cancelled",
                [
                    {
                        "name": "long",
                        "service": "app",
                        "command": ["sh", "-c", "echo working; sleep 300"],
                    },
                    {"name": "next", "service": "app", "command": "true"},
                ],
            )
        ]
    )
    running = wait_step(k, "cancelled", "long", "Running")
    asked = time.monotonic()
    k("patch", "pipeline", "cancelled", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    body = k.wait_for("cancelled", timeout=30)
    assert body["status"]["phase"] == "Cancelled"
    assert {n: s["phase"] for n, s in steps_by_name(body).items()} == {
        "long": "Cancelled",
        "next": "Skipped",
    }
    while pod_phase(k, running["pod"]) == "Running":
        assert time.monotonic() - asked < 30, "the cancelled pod kept running"
        time.sleep(0.3)
    assert "working" in k("logs", running["pod"])


def test_deleting_a_pipeline_while_the_operator_is_down_leaves_nothing(
    k: Kubectl, shipway_operator: Any
) -> None:
    kept = pipeline(
        "kept", [{"name": "s", "service": "app", "command": "true"}], workspace={"keep": True}
    )
    k.apply_docs([pipeline("gone", [{"name": "s", "service": "app", "command": "true"}]), kept])
    k.wait_for("gone")
    k.wait_for("kept")
    shipway_operator.kill()
    try:
        k("delete", "pipeline", "gone", "kept", "--wait=true")
        deadline = time.monotonic() + 90
        while not re.fullmatch(
            r"persistentvolumeclaim/kept-[0-9a-f]{5}-workspace",
            left := " ".join(k("get", "pods,pvc", "-o", "name").split()),
        ):
            assert time.monotonic() < deadline, left
            time.sleep(1)
    finally:
        shipway_operator.start()


def test_the_operator_reconnects_after_the_api_server_restarts(k: Kubectl, cluster: Any) -> None:
    if not cluster.local:
        pytest.skip("restarting the API server needs the local cluster")
    from localkube.cluster import lifecycle as local
    from localkube.config import Paths

    steps = [{"name": f"s{i}", "service": "app", "command": "sleep 2"} for i in range(4)]
    k.apply_docs([pipeline("apiserver-restart", steps)])
    wait_step(k, "apiserver-restart", "s1", "Running")
    paths = Paths.default()
    local.service(paths, "kube-apiserver").stop()
    time.sleep(3)
    local.up(paths, build_all=False)
    body = k.wait_for("apiserver-restart", timeout=180)
    assert body["status"]["phase"] == "Succeeded", body["status"]


def test_a_killed_operator_neither_loses_nor_duplicates_steps(
    k: Kubectl, shipway_operator: Any
) -> None:
    """10 SIGKILLs while 20 pipelines of 5 steps run; every step's pod is created exactly once."""
    creations = PodCreations(k.namespace)
    docs = []
    for n in range(20):
        fail_at = 3 if n % 5 == 4 else None
        steps = [
            {
                "name": f"step{i}",
                "service": "app",
                "command": "false" if i == fail_at else "sleep 1",
            }
            for i in range(1, 6)
        ]
        docs.append(pipeline(f"chaos-{n:02d}", steps))
    k.apply_docs(docs)
    rng = random.Random(20261127)
    kills = 0
    try:
        while kills < 10:
            time.sleep(rng.uniform(1.0, 4.0))
            shipway_operator.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 1.0))
            shipway_operator.start()
    finally:
        if not shipway_operator.running:
            shipway_operator.start()
    results = {
        doc["metadata"]["name"]: k.wait_for(doc["metadata"]["name"], timeout=400) for doc in docs
    }
    uids = creations.close()
    for n in range(20):
        body = results[f"chaos-{n:02d}"]
        phases = {s["name"]: s["phase"] for s in body["status"]["steps"]}
        if n % 5 == 4:
            assert body["status"]["phase"] == "Failed"
            assert phases == {
                "step1": "Succeeded",
                "step2": "Succeeded",
                "step3": "Failed",
                "step4": "Skipped",
                "step5": "Skipped",
            }
        else:
            assert body["status"]["phase"] == "Succeeded", body["status"]
            assert set(phases.values()) == {"Succeeded"}
    step_pods = {name: ids for name, ids in uids.items() if name.startswith("chaos-")}
    assert len(step_pods) == 16 * 5 + 4 * 3
    duplicated = {name: len(ids) for name, ids in step_pods.items() if len(ids) != 1}
    assert duplicated == {}, f"pods created more than once: {duplicated}"
    print(f"\nchaos: {kills} SIGKILLs, 20 pipelines, {len(step_pods)} step pods, each created once")


def test_a_500_step_status_stays_small(k: Kubectl) -> None:
    steps = [
        {
            "type": "parallel",
            "steps": [
                {"service": "app", "command": f"echo {g}-{i}", "tag": "never"} for i in range(100)
            ],
        }
        for g in range(5)
    ]
    k.apply_docs([pipeline("big", steps, ci={"branch": "main"})])
    body = k.wait_for("big", timeout=60)
    whole = len(json.dumps(k.pipeline("big"), separators=(",", ":")))
    status = len(json.dumps(body["status"], separators=(",", ":")))
    assert len(body["status"]["steps"]) == 500
    assert whole < 300_000, whole
    print(f"\n500-step Pipeline: object {whole} bytes, status {status} bytes (etcd: 1.5 MiB)")
