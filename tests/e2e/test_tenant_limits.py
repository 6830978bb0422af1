"""Issue 30 on the real cluster: a lost workspace claim fails its run at once, a retry never
waits without bound for an old pod, and one namespace's pipelines cannot take every slot.

An operator of its own serves two namespaces of this module (outside the session's, so the
session operator never sees them), with a short retry grace and a namespace cap of 2.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipway.engine.naming import pvc_name

from .conftest import ROOT, OperatorProcess
from .kube import Cluster
from .pipelines import Kubectl, steps_by_name

pytestmark = pytest.mark.e2e

RETRY_GRACE = 15
NAMESPACE_CAP = 2
FINALIZER = "shipway.dev/e2e-hold"


@pytest.fixture(scope="module")
def tenants(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, shipway_operator: object
) -> Iterator[tuple[Kubectl, Kubectl]]:
    """Namespaces a and b, and an operator for both."""
    run = secrets.token_hex(3)
    names = [f"tenants-{run}-a", f"tenants-{run}-b"]
    for name in names:
        cluster.kubectl("create", "namespace", name)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")]),
        "SHIPWAY_RETRY_GRACE": f"{RETRY_GRACE}s",
        "SHIPWAY_MAX_NAMESPACE_PODS": str(NAMESPACE_CAP),
        "SHIPWAY_UNSCHEDULABLE_GRACE": "90s",
    }
    argv = [sys.executable, "-m", "shipway", "operator"]
    for name in names:
        argv += ["-n", name]
    log = Path(tmp_path_factory.mktemp("tenants")) / "operator.log"
    operator = OperatorProcess(argv, env, log)
    operator.start()
    try:
        yield Kubectl(names[0]), Kubectl(names[1])
    finally:
        operator.stop()
        for name in names:
            cluster.run("delete", "namespace", name, "--wait=false", check=False)


def pipeline(name: str, steps: list[dict[str, Any]], *, volumes: bool = False) -> dict[str, Any]:
    app: dict[str, Any] = {"image": "busybox:1.36"}
    if volumes:
        app["volumes"] = ["./:/ws"]
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"services": {"app": app}, "steps": steps},
    }


def wait_until(k: Kubectl, name: str, test: Any, what: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body = k.pipeline(name)
    while not test(body.get("status") or {}):
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: not {what} in {timeout}s: {json.dumps(body['status'])}")
        time.sleep(0.3)
        body = k.pipeline(name)
    return body


def step_is(name: str, phase: str, reason: str | None = None) -> Any:
    def test(status: dict[str, Any]) -> bool:
        step = {s["name"]: s for s in status.get("steps", ())}.get(name) or {}
        return step.get("phase") == phase and (reason is None or step.get("reason") == reason)

    return test


def test_a_deleted_workspace_claim_fails_the_run_at_once_naming_it(
    tenants: tuple[Kubectl, Kubectl],
) -> None:
    k, _ = tenants
    k.apply_docs(
        [
            pipeline(
                "claimed",
                [
                    {"name": "long", "service": "app", "command": "sleep 300"},
                    {"name": "after", "service": "app", "command": "true"},
                ],
                volumes=True,
            )
        ]
    )
    body = wait_until(k, "claimed", step_is("long", "Running"), "running", timeout=180)
    pod = steps_by_name(body)["long"]["pod"]
    deadline = time.monotonic() + 120
    while k.json("get", "pod", pod)["status"].get("phase") != "Running":
        assert time.monotonic() < deadline, f"{pod} never ran"
        time.sleep(0.3)
    claim = pvc_name("claimed", body["metadata"]["uid"])
    k("delete", "pvc", claim, "--wait=false")
    deleted = time.monotonic()
    # The pod still mounts it: the claim stays, Terminating, until the pod stops.
    failed = wait_until(k, "claimed", lambda s: s.get("phase") == "Failed", "Failed", timeout=60)
    took = time.monotonic() - deleted
    status = failed["status"]
    assert status["conditions"][0]["reason"] == "ClaimLost"
    assert claim in status["message"]
    assert "is being deleted" in status["message"]
    steps = steps_by_name(failed)
    assert (steps["long"]["phase"], steps["long"]["reason"]) == ("Failed", "ClaimLost")
    assert steps["after"]["phase"] == "Skipped"
    assert took < 30, f"{took:.1f}s: not within seconds"
    # Its pod is stopped (through the kubelet, keeping its logs), so the claim can go.
    assert k.json("get", "pod", pod)["spec"]["activeDeadlineSeconds"] == 1


def test_a_retry_names_the_old_pod_it_waits_for_and_gives_up_after_the_grace(
    tenants: tuple[Kubectl, Kubectl],
) -> None:
    k, _ = tenants
    k.apply_docs(
        [
            pipeline(
                "held", [{"name": "flaky", "service": "app", "command": "sleep 300", "retries": 1}]
            )
        ]
    )
    body = wait_until(k, "held", step_is("flaky", "Running"), "running", timeout=180)
    old = steps_by_name(body)["flaky"]["pod"]
    k(
        "patch",
        "pod",
        old,
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": [FINALIZER]}}),
    )
    try:
        k("delete", "pod", old, "--wait=false")
        deleted = time.monotonic()
        waiting = wait_until(
            k, "held", step_is("flaky", "Running", "WaitingForRetry"), "waiting", timeout=60
        )
        message = steps_by_name(waiting)["flaky"]["message"]
        assert f"waits for pod {old!r} of the previous attempt to go" in message
        assert f"gives up after {RETRY_GRACE}s" in message
        failed = wait_until(k, "held", lambda s: s.get("phase") == "Failed", "Failed", timeout=120)
        took = time.monotonic() - deleted
        flaky = steps_by_name(failed)["flaky"]
        assert (flaky["phase"], flaky["reason"]) == ("Failed", "RetryBlocked")
        assert old in flaky["message"]
        assert [a["reason"] for a in flaky["attempts"]] == ["PodDeleted"]
        assert took >= RETRY_GRACE - 1, "not before the grace"
        pods = k.json("get", "pods", "-l", "shipway.dev/pipeline=held")["items"]
        assert [p["metadata"]["name"] for p in pods] == [old], "no second attempt ever started"
    finally:
        k("patch", "pod", old, "--type=merge", "-p", json.dumps({"metadata": {"finalizers": None}}))


class PodCounter(threading.Thread):
    """Counts, every few tenths of a second, the step pods of a namespace whose container has
    not ended: the most seen at once."""

    def __init__(self, k: Kubectl) -> None:
        super().__init__(daemon=True)
        self.k = k
        self.stopping = threading.Event()
        self.most = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            pods = self.k.json("get", "pods", "-l", "shipway.dev/step")["items"]
            self.most = max(self.most, sum(1 for p in pods if _holds_slot(p)))
            self.samples += 1
            self.stopping.wait(0.3)


def _holds_slot(pod: dict[str, Any]) -> bool:
    if pod["status"].get("phase") in ("Succeeded", "Failed"):
        return False
    states = [c.get("state", {}) for c in pod["status"].get("containerStatuses") or ()]
    return not states or not all("terminated" in s for s in states)


def _overlap(pods: list[dict[str, Any]]) -> int:
    """The most pods whose [created, container finished) intervals overlap (whole seconds)."""
    moments: list[tuple[str, int]] = []
    for pod in pods:
        created = pod["metadata"]["creationTimestamp"]
        ends = [
            c["state"]["terminated"]["finishedAt"]
            for c in pod["status"].get("containerStatuses") or ()
            if "terminated" in c.get("state", {})
        ]
        moments += [(created, 1), (max(ends), -1)] if ends else [(created, 1)]
    most = current = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):  # ends before starts
        current += change
        most = max(most, current)
    return most


def parallel(name: str, count: int, seconds: int) -> dict[str, Any]:
    group = [
        {"name": f"p{i}", "service": "app", "command": f"sleep {seconds}"} for i in range(count)
    ]
    return pipeline(name, [{"type": "parallel", "name": "all", "steps": group}])


def test_the_namespace_cap_holds_across_pipelines_which_say_why_they_wait(
    tenants: tuple[Kubectl, Kubectl],
) -> None:
    k, _ = tenants
    counter = PodCounter(k)
    counter.start()
    seen_held: list[str] = []
    try:
        k.apply_docs([parallel("first", 3, 3), parallel("second", 3, 3)])
        deadline = time.monotonic() + 240
        while True:
            bodies = [k.pipeline(n) for n in ("first", "second")]
            for body in bodies:
                for step in body.get("status", {}).get("steps", ()):
                    if step.get("reason") == "NamespaceThrottled":
                        seen_held.append(step["message"])
            if all(b.get("status", {}).get("phase") in ("Succeeded", "Failed") for b in bodies):
                break
            assert time.monotonic() < deadline, [b.get("status") for b in bodies]
            time.sleep(0.3)
    finally:
        counter.stopping.set()
        counter.join()
    assert [b["status"]["phase"] for b in bodies] == ["Succeeded", "Succeeded"]
    assert counter.samples > 5
    assert counter.most <= NAMESPACE_CAP, f"{counter.most} step pods ran at once"
    pods = k.json("get", "pods", "-l", "shipway.dev/pipeline in (first,second)")["items"]
    assert len(pods) == 6
    assert _overlap(pods) <= NAMESPACE_CAP
    assert seen_held, "a held step says so"
    assert seen_held[0] == (
        f"waiting: {NAMESPACE_CAP} step pods of namespace {k.namespace!r} run at once, "
        "the most the operator allows"
    )


def test_a_small_pipeline_in_another_namespace_goes_on_while_a_big_one_waits_for_slots(
    tenants: tuple[Kubectl, Kubectl],
) -> None:
    big, small = tenants
    big.apply_docs([parallel("big", 12, 2)])
    wait_until(
        big,
        "big",
        lambda s: any(st.get("reason") == "NamespaceThrottled" for st in s.get("steps", ())),
        "held by the namespace cap",
        timeout=180,
    )
    small.apply_docs(
        [
            pipeline(
                "small",
                [{"name": f"s{i}", "service": "app", "command": "true"} for i in range(3)],
            )
        ]
    )
    done = small.wait_for("small", timeout=180)
    assert done["status"]["phase"] == "Succeeded"
    status = big.pipeline("big")["status"]
    assert status["phase"] == "Running", "the small one did not wait for the big one to end"
    assert any(st.get("reason") == "NamespaceThrottled" for st in status["steps"])
    assert big.wait_for("big", timeout=300)["status"]["phase"] == "Succeeded"
