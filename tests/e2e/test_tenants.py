"""Issue 30 on the real cluster: tenants can't stall, forge or poison each other.

Whoever may create pods in a watched namespace must not be able to stop the operator's pod
watch (item 1), fake a step's result with a pod of its name (item 2) or rewrite what the
command line shows (item 6); and a step held back by a linked service's health check says
what it waits for (item 8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shipway.engine.naming import pod_name

from .pipelines import ROOT, Kubectl, kubeconfig, steps_by_name

pytestmark = pytest.mark.e2e


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def pipeline(name: str, steps: list[dict[str, Any]], **services: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"services": {"app": {"image": "busybox:1.36"}, **services}, "steps": steps},
    }


def normal(name: str) -> dict[str, Any]:
    return pipeline(name, [{"name": "ok", "service": "app", "command": "true"}])


def claiming_pod(
    name: str, owner: str, owner_uid: str, command: str, **labels: str
) -> dict[str, Any]:
    """A pod anyone with ``create pods`` can make: Shipway's labels and a controller reference
    to a Pipeline, copied from ``kubectl get``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"shipway.dev/pipeline": owner, **labels},
            "annotations": {"kubectl.kubernetes.io/default-container": "app"},
            "ownerReferences": [
                {
                    "apiVersion": "shipway.dev/v1alpha1",
                    "kind": "Pipeline",
                    "name": owner,
                    "uid": owner_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", command]}
            ],
        },
    }


def wait_pod_phase(k: Kubectl, name: str, phases: tuple[str, ...], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while k.json("get", "pod", name).get("status", {}).get("phase") not in phases:
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} never reached {phases}")
        time.sleep(0.5)


def test_a_malformed_pod_stops_neither_the_watch_nor_a_restarted_operator(
    k: Kubectl, shipway_operator: Any
) -> None:
    """Item 1: step labels, ``attempt: "x"`` and a Pipeline controller stopped every pod event
    of the cluster for good, and a restarted operator's first list for as long as it existed."""
    k.apply_docs([normal("owner")])
    owner = k.wait_for("owner")
    assert owner["status"]["phase"] == "Succeeded", owner["status"]
    # The owner exists (a pod whose owner is gone is collected by the garbage collector).
    bad = claiming_pod(
        "malformed",
        "owner",
        owner["metadata"]["uid"],
        "sleep 3600",
        **{"shipway.dev/step": "1", "shipway.dev/attempt": "x"},
    )
    k.apply_docs([bad])
    k.apply_docs([normal("after-bad-pod")])
    after = k.wait_for("after-bad-pod", timeout=120)
    assert after["status"]["phase"] == "Succeeded", after["status"]
    # Restarted while the pod exists: its first list must finish, every pipeline waits on it.
    shipway_operator.kill()
    shipway_operator.start()
    k.apply_docs([normal("after-restart")])
    restarted = k.wait_for("after-restart", timeout=120)
    assert restarted["status"]["phase"] == "Succeeded", restarted["status"]
    log = Path(shipway_operator.log_path).read_text(errors="replace")
    assert f"pod {k.namespace}/malformed skipped" in log
    assert k.json("get", "pod", "malformed")["metadata"].get("deletionTimestamp") is None


def test_a_pre_created_pod_of_the_gates_name_does_not_pass_it(
    k: Kubectl, shipway_operator: Any
) -> None:
    """Item 2: the gate's pod name, labels and the Pipeline's UID are readable; a pod made
    with them, running ``true``, passed the failing gate and deploy ran."""
    steps = [
        {"name": "gate", "service": "app", "command": "false"},
        {"name": "deploy", "service": "app", "command": "echo deployed"},
    ]
    shipway_operator.kill()
    try:
        with shipway_operator.webhook_removed():
            k.apply_docs([pipeline("gated", steps)])
        uid = k.pipeline("gated")["metadata"]["uid"]
        forged = pod_name("gated", uid, "1", "gate")
        labels = {"shipway.dev/step": "1", "shipway.dev/attempt": "0"}
        k.apply_docs([claiming_pod(forged, "gated", uid, "true", **labels)])
        wait_pod_phase(k, forged, ("Succeeded",))
    finally:
        shipway_operator.start()
    k.apply_docs([normal("beside")])
    body = k.wait_for("gated")
    assert body["status"]["phase"] == "Failed", body["status"]
    gate, deploy = steps_by_name(body)["gate"], steps_by_name(body)["deploy"]
    assert (gate["phase"], gate["reason"]) == ("Failed", "PodNameConflict"), gate
    assert "the operator did not create it" in gate["message"]
    assert deploy["phase"] == "Skipped", deploy
    pods = k("get", "pods", "-o", "name").split()
    assert not [p for p in pods if "deploy" in p], pods
    reasons = {(e["reason"], e["type"]) for e in k.events("gated")}
    assert ("ForeignPod", "Warning") in reasons, reasons
    assert k.json("get", "pod", forged)["metadata"]["uid"] != gate.get("podUid")
    assert k.wait_for("beside")["status"]["phase"] == "Succeeded"
    # A pipeline that runs normally records the UID of every pod it created. (The CRD is the
    # cluster's: a session of an older branch may have applied one without podUid, which the
    # API server then prunes.)
    if "podUid" in k("get", "crd", "pipelines.shipway.dev", "-o", "json"):
        beside = steps_by_name(k.pipeline("beside"))["ok"]
        assert beside["podUid"] == k.json("get", "pod", beside["pod"])["metadata"]["uid"]


HOSTILE = (
    r"printf 'boom\033[2K\r(step: gate) success\033]0;pwned\007\n'; "
    r"printf 'bad\033[2K\rfine\033]2;title\007' > /dev/termination-log; exit 1"
)


def shipway_cli(namespace: str, *args: str, cwd: Path | None = None) -> str:
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "shipway", *args, "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
        cwd=cwd,
    )
    return result.stdout + result.stderr


def raw_escapes(text: str) -> list[str]:
    """Every control character but newline and tab, and every ESC not starting a colour."""
    found = []
    for index, char in enumerate(text):
        if char == "\x1b":
            rest = text[index + 1 : index + 12]
            if not (rest.startswith("[") and rest[1 : rest.find("m")].replace(";", "").isdigit()):
                found.append(repr(text[index : index + 12]))
        elif (ord(char) < 0x20 and char not in "\n\t") or 0x7F <= ord(char) <= 0x9F:
            found.append(repr(text[max(0, index - 10) : index + 10]))
    return found


def test_terminal_escapes_from_a_pod_are_shown_escaped(k: Kubectl, tmp_path: Path) -> None:
    """Item 6: ``ESC[2K`` + ``CR`` in a log line or a termination message made a failed step
    look like a success in ``status``, ``logs`` and ``run``; OSC set the terminal's title."""
    steps = [{"name": "gate", "service": "app", "command": ["sh", "-c", HOSTILE]}]
    k.apply_docs([pipeline("poison", steps)])
    body = k.wait_for("poison")
    assert body["status"]["phase"] == "Failed"
    assert "\x1b" in steps_by_name(body)["gate"]["message"], "the status keeps what the pod said"
    status = shipway_cli(k.namespace, "status", "poison")
    logs = shipway_cli(k.namespace, "logs", "poison")
    (tmp_path / "codeship-services.yml").write_text("app:\n  image: busybox:1.36\n")
    (tmp_path / "codeship-steps.yml").write_text(
        "- name: gate\n  service: app\n  command: "
        + json.dumps(f"sh -c {json.dumps(HOSTILE)}")
        + "\n"
    )
    run = shipway_cli(k.namespace, "run", "--dir", str(tmp_path), "--name", "poison-run")
    for output, what in ((status, "status"), (logs, "logs"), (run, "run")):
        assert raw_escapes(output) == [], f"shipway {what}:\n{output}"
    assert "\\x1b[2K\\r" in logs
    assert "\\x1b]0;pwned\\a" in logs
    assert "\\x1b[2K\\rfine" in status, status
    assert "error ✗" in run, run
    assert "bad\\x1b[2K\\rfine" in run, run


def test_a_step_waiting_for_a_services_health_check_names_it(k: Kubectl) -> None:
    """Item 8: a step showed Running while its linked service's health check had not passed."""
    db = {
        "image": "busybox:1.36",
        "command": "sh -c 'sleep 12; touch /tmp/ready; sleep 3600'",
        "healthcheck": {
            "test": ["CMD", "test", "-f", "/tmp/ready"],
            "interval": "1s",
            "retries": 60,
        },
    }
    app = {"image": "busybox:1.36", "links": ["db"]}
    k.apply_docs(
        [
            pipeline(
                "slowdb", [{"name": "test", "service": "app", "command": "true"}], app=app, db=db
            )
        ]
    )
    deadline = time.monotonic() + 90
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = k.pipeline("slowdb")
        step = steps_by_name(body)["test"] if body.get("status", {}).get("steps") else {}
        if step.get("reason") == "WaitingForService":
            seen = {"step": step, "status": body["status"]}
            break
        assert body.get("status", {}).get("phase") not in ("Succeeded", "Failed"), body["status"]
        time.sleep(0.3)
    assert seen, "the step never said it waits for db"
    # The service sleeps 12 s before it is healthy: time to read every view while it waits.
    columns = k("get", "pipeline", "slowdb")
    status = shipway_cli(k.namespace, "status", "slowdb")
    assert seen["step"]["phase"] == "Running"
    assert seen["step"]["message"] == "waiting for service db to become healthy"
    assert "test (waiting for service db to become healthy)" in seen["status"]["currentStep"]
    assert "test (waiting for service db" in columns, columns
    assert "waiting for service db to become healthy" in status, status
    body = k.wait_for("slowdb", timeout=120)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    test = steps_by_name(body)["test"]
    assert test.get("reason") == "Completed", test
