"""Issue 18 on the real cluster: one Pipeline can never touch another's pods, stall the
operator or wait forever without saying why. Each case runs beside a normal pipeline that
must succeed meanwhile. Waits are generous; how fast each case ends is measured by
hack/hardening_bench.py, not asserted here."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from shipway.engine.naming import pod_name, pvc_name

from .pipelines import Kubectl, steps_by_name

pytestmark = pytest.mark.e2e

#: The session operator is told this is its own ServiceAccount (tests/e2e/conftest.py).
OPERATOR_ACCOUNT = "shipway-e2e-operator"


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def pipeline(
    name: str, steps: list[dict[str, Any]], *, volumes: bool = False, **spec: Any
) -> dict[str, Any]:
    app: dict[str, Any] = {"image": "busybox:1.36"}
    if volumes:
        app["volumes"] = ["./:/ws"]
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"services": {"app": app, **spec.pop("services", {})}, "steps": steps, **spec},
    }


def normal(name: str = "normal") -> dict[str, Any]:
    return pipeline(name, [{"name": "ok", "service": "app", "command": "true"}])


def condition(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["status"]["conditions"][0]
    return found


def owner_uid(pod: dict[str, Any]) -> str:
    refs = [r for r in pod["metadata"].get("ownerReferences", ()) if r.get("controller")]
    return str(refs[0]["uid"]) if refs else ""


def wait_until(
    k: Kubectl, name: str, test: Any, what: str, *, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body = k.pipeline(name)
    while not test(body):
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: never {what}: {json.dumps(body.get('status'))}")
        time.sleep(0.5)
        body = k.pipeline(name)
    return body


def test_colliding_names_run_apart_each_with_its_own_pods(k: Kubectl) -> None:
    """Issue 18: pipeline foo, step '1 y' and pipeline foo-1, step 'y' both made foo-1-1-y."""
    docs = [
        pipeline("foo", [{"name": "1 y", "service": "app", "command": "echo foo"}]),
        pipeline("foo-1", [{"name": "y", "service": "app", "command": "echo foo-1"}]),
    ]
    # As JSON: kubectl's YAML reads a bare y as a boolean.
    k("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    bodies = {name: k.wait_for(name) for name in ("foo", "foo-1")}
    pods = set()
    for name, body in bodies.items():
        assert body["status"]["phase"] == "Succeeded", body["status"]
        (step,) = body["status"]["steps"]
        pod = k.json("get", "pod", step["pod"])
        assert owner_uid(pod) == body["metadata"]["uid"]
        assert k("logs", step["pod"]).strip() == name
        pods.add(step["pod"])
    assert len(pods) == 2, pods


def test_a_foreign_pod_and_claim_with_the_wanted_names_are_refused_not_adopted(
    k: Kubectl, shipway_operator: Any
) -> None:
    """The operator is stopped while someone else takes the names the pipelines will want."""
    shipway_operator.kill()
    try:
        docs = [
            pipeline("podless", [{"name": "s", "service": "app", "command": "true"}]),
            pipeline(
                "claimless", [{"name": "s", "service": "app", "command": "true"}], volumes=True
            ),
        ]
        with shipway_operator.webhook_removed():  # its webhook is down too (failurePolicy Fail)
            k.apply_docs(docs)
        uid = {n: k.pipeline(n)["metadata"]["uid"] for n in ("podless", "claimless")}
        taken_pod = pod_name("podless", uid["podless"], "1", "s")
        taken_claim = pvc_name("claimless", uid["claimless"])
        k.apply_docs(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": taken_pod,
                        "labels": {"shipway.dev/pipeline": "podless", "shipway.dev/step": "1"},
                    },
                    "spec": {
                        "containers": [
                            {"name": "x", "image": "busybox:1.36", "command": ["sleep", "3600"]}
                        ],
                        "terminationGracePeriodSeconds": 0,
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": taken_claim},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                },
            ]
        )
    finally:
        shipway_operator.start()
    k.apply_docs([normal()])
    podless = k.wait_for("podless")
    step = steps_by_name(podless)["s"]
    assert (podless["status"]["phase"], step["reason"]) == ("Failed", "PodNameConflict")
    assert f"a pod named {taken_pod!r} already exists" in step["message"]
    claimless = k.wait_for("claimless")
    assert claimless["status"]["phase"] == "Failed"
    assert condition(claimless)["reason"] == "ClaimNameConflict"
    assert taken_claim in claimless["status"]["message"]
    assert k.wait_for("normal")["status"]["phase"] == "Succeeded"
    foreign = k.json("get", "pod", taken_pod)
    assert foreign["metadata"].get("deletionTimestamp") is None, "left alone"
    assert foreign["spec"].get("activeDeadlineSeconds") is None, "never stopped"
    claim = k.json("get", "pvc", taken_claim)
    assert not claim["metadata"].get("ownerReferences"), "never adopted"


def test_a_kept_claim_is_reused_by_name(k: Kubectl) -> None:
    k.apply_docs(
        [
            pipeline(
                "writer",
                [{"name": "w", "service": "app", "command": "sh -c 'echo kept > /ws/file'"}],
                volumes=True,
                workspace={"keep": True},
            )
        ]
    )
    writer = k.wait_for("writer")
    assert writer["status"]["phase"] == "Succeeded", writer["status"]
    claim = pvc_name("writer", writer["metadata"]["uid"])
    k("delete", "pipeline", "writer", "--wait=true")
    assert k.json("get", "pvc", claim)["metadata"]["name"] == claim, "kept"
    k.apply_docs(
        [
            pipeline(
                "reader",
                [{"name": "r", "service": "app", "command": "grep -q kept /ws/file"}],
                volumes=True,
                workspace={"claimName": claim},
            ),
            normal(),
        ]
    )
    reader = k.wait_for("reader")
    assert reader["status"]["phase"] == "Succeeded", reader["status"]
    pod = k.json("get", "pod", steps_by_name(reader)["r"]["pod"])
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    claims = k("get", "pvc", "-o", "name").split()
    assert claims == [f"persistentvolumeclaim/{claim}"], "the reader created none of its own"
    assert k.wait_for("normal")["status"]["phase"] == "Succeeded"


def test_an_unschedulable_step_says_why_then_fails(k: Kubectl) -> None:
    huge = {"image": "busybox:1.36", "resources": {"requests": {"memory": "100Ti"}}}
    k.apply_docs(
        [
            pipeline(
                "huge",
                [{"name": "big", "service": "huge", "command": "true"}],
                services={"huge": huge},
            ),
            normal(),
        ]
    )

    def says_why(body: dict[str, Any]) -> bool:
        steps = (body.get("status") or {}).get("steps") or []
        return bool(steps) and steps[0].get("reason") == "Unschedulable"

    waiting = wait_until(k, "huge", says_why, "shown as Unschedulable")
    assert "Insufficient memory" in steps_by_name(waiting)["big"]["message"]
    assert k.wait_for("normal")["status"]["phase"] == "Succeeded"
    failed = k.wait_for("huge", timeout=240)
    big = steps_by_name(failed)["big"]
    assert (failed["status"]["phase"], big["phase"], big["reason"]) == (
        "Failed",
        "Failed",
        "Unschedulable",
    )
    assert re.match(
        r"no node could run the step's pod for \d+s: .*Insufficient memory", big["message"]
    )


def test_a_claim_refused_by_a_quota_waits_saying_so_then_runs(k: Kubectl) -> None:
    k.apply_docs(
        [
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": "no-claims"},
                "spec": {"hard": {"persistentvolumeclaims": "0"}},
            }
        ]
    )
    time.sleep(2)  # the quota controller fills in its status: only then does admission apply it
    k.apply_docs(
        [
            pipeline("held", [{"name": "s", "service": "app", "command": "true"}], volumes=True),
            normal(),
        ]
    )

    def held(body: dict[str, Any]) -> bool:
        conditions = (body.get("status") or {}).get("conditions") or []
        return bool(conditions) and conditions[0].get("reason") == "ExceededResourceQuota"

    body = wait_until(k, "held", held, "held by the quota")
    assert body["status"]["phase"] == "Pending"
    assert condition(body)["status"] == "Unknown"
    assert "exceeded quota: no-claims" in condition(body)["message"]
    assert k.wait_for("normal")["status"]["phase"] == "Succeeded"
    k("delete", "resourcequota", "no-claims")
    done = k.wait_for("held", timeout=240)
    assert done["status"]["phase"] == "Succeeded", done["status"]


def test_the_operators_own_service_account_is_refused(k: Kubectl) -> None:
    k.apply_docs(
        [
            pipeline(
                "borrower",
                [{"name": "s", "service": "app", "command": "true"}],
                serviceAccountName=OPERATOR_ACCOUNT,
            ),
            normal(),
        ]
    )
    body = k.wait_for("borrower")
    assert body["status"]["phase"] == "Failed"
    assert condition(body)["reason"] == "ServiceAccountNotAllowed"
    assert "the operator's own ServiceAccount" in body["status"]["message"]
    assert k("get", "pods", "-l", "shipway.dev/pipeline=borrower", "-o", "name").strip() == ""
    assert k.wait_for("normal")["status"]["phase"] == "Succeeded"
