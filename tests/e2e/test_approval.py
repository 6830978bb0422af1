"""Manual approval (``type: manual``) on the real cluster, decided by real identities.

Approvers are ServiceAccounts of the test's namespace acting with their own tokens (a
kubeconfig holding only the token, so the API server authenticates them as themselves):
``approver`` holds the RBAC verb ``approve`` on pipelines, ``outsider`` only ``patch``.
The admission policy in ``crds/`` decides who may; the operator only carries decisions out.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shipway.codeship.jetcrypt import encrypt

from . import crds
from .conftest import OperatorProcess
from .kube import Cluster
from .pipelines import ROOT, Kubectl, kubectl_binary, steps_by_name
from .test_push import Protected, project, protected  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e

ROLE_RULES = {
    "approver": ["get", "list", "watch", "patch", "approve"],
    "bystander": ["get", "list", "watch", "patch", "approve"],
    "outsider": ["get", "list", "watch", "patch"],
}


class Identity:
    """A ServiceAccount acting through a kubeconfig that holds nothing but its token."""

    def __init__(self, cluster: Cluster, namespace: str, account: str, directory: Path) -> None:
        self.namespace = namespace
        self.username = f"system:serviceaccount:{namespace}:{account}"
        raw = cluster.json("config", "view", "--raw", "--minify")
        server = raw["clusters"][0]["cluster"]
        token = cluster.kubectl(
            "create", "token", account, "-n", namespace, "--duration=1h"
        ).strip()
        self.kubeconfig = directory / f"{account}.kubeconfig"
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "local", "cluster": server}],
                    "users": [{"name": account, "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "local",
                            "context": {
                                "cluster": "local",
                                "user": account,
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "local",
                }
            )
        )

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def shipway(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipway", *args, "--kubeconfig", str(self.kubeconfig)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "operator"), "NO_COLOR": "1"},
            timeout=120,
            check=False,
        )


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


@pytest.fixture
def people(cluster: Cluster, k: Kubectl, tmp_path: Path) -> dict[str, Identity]:
    docs: list[dict[str, Any]] = []
    for account, verbs in ROLE_RULES.items():
        docs += [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": account},
                "rules": [
                    {"apiGroups": ["shipway.dev"], "resources": ["pipelines"], "verbs": verbs}
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": account},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": account,
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": k.namespace}],
            },
        ]
    k.apply_docs(docs)
    return {a: Identity(cluster, k.namespace, a, tmp_path) for a in ROLE_RULES}


SKEW = (
    "unknown field",
    "Unsupported value",
    "is not waiting for approval (it is AwaitingApproval)",
)
"""What another test session's older CRD, applied to the shared cluster meanwhile, causes."""


def retried(call: Any, tries: int = 8) -> subprocess.CompletedProcess[str]:
    """``call()`` again while the failure is another session's older CRD (``crds.kept`` puts
    this tree's back within a second)."""
    for _ in range(tries):
        done: subprocess.CompletedProcess[str] = call()
        if done.returncode == 0 or not any(s in done.stderr for s in SKEW):
            return done
        time.sleep(2)
    return done


def await_gate(k: Kubectl, name: str, operator: OperatorProcess | None) -> dict[str, Any]:
    """The pipeline paused at its gate, its ``status.approvals`` in place.

    On the shared cluster another session's older CRD may be in place at the status write
    and prune ``status.approvals`` (the operator keeps it in memory, so the admission policy
    would see no waiting gate): a restarted operator reads the status back and writes it again.
    """
    for _ in range(3):
        body = k.wait_for(name, ("AwaitingApproval", "Failed", "Succeeded"), timeout=600)
        if body["status"].get("approvals") or body["status"]["phase"] != "AwaitingApproval":
            return body
        time.sleep(3)
        body = k.pipeline(name)
        if body["status"].get("approvals") or operator is None:
            return body
        operator.kill()
        operator.start()
        deadline = time.monotonic() + 60
        while not k.pipeline(name)["status"].get("approvals") and time.monotonic() < deadline:
            time.sleep(1)
    return k.pipeline(name)


def gate_of(body: dict[str, Any]) -> dict[str, Any]:
    (gate,) = body["status"]["approvals"]
    return gate


def running_pods(k: Kubectl) -> list[str]:
    pods = k.json("get", "pods")["items"]
    return [
        p["metadata"]["name"] for p in pods if p["status"].get("phase") in ("Pending", "Running")
    ]


def test_a_gated_push_waits_refuses_the_unallowed_and_runs_once_after_a_kill(
    k: Kubectl,
    people: dict[str, Identity],
    protected: Protected,  # noqa: F811
    shipway_operator: OperatorProcess | None,
    *,
    tmp_path: Path,
) -> None:
    if shipway_operator is None:
        pytest.skip("kills the operator: needs the session's own")
    key = secrets.token_bytes(32)
    commit = secrets.token_hex(20)
    repository = f"e2e/{k.namespace}/gated"
    steps = [
        {"name": "test", "service": "app", "command": "cat /marker"},
        {
            "name": "release",
            "type": "manual",
            "tag": "main",
            "steps": [
                {
                    "name": "push",
                    "type": "push",
                    "service": "app",
                    "image_name": f"{protected.host}/{repository}",
                    "image_tag": "{{ .Branch }}-{{ .ShortCommitID }}",
                    "encrypted_dockercfg_path": "dockercfg.encrypted",
                }
            ],
        },
    ]
    files = {
        "codeship.aes": base64.b64encode(key).decode(),
        "dockercfg.encrypted": encrypt(protected.docker_config().encode(), key),
    }
    directory = project(tmp_path / "app", steps, files)
    with crds.kept(k):
        for _ in range(4):  # again when another session's older CRD refused a status write
            done = retried(lambda: subprocess.run(
                [sys.executable, "-m", "shipway", "run", "--dir", str(directory), "-n", k.namespace,
                 "--push", "--branch", "main", "--commit-id", commit, "--detach"],
                capture_output=True, text=True, timeout=600, check=False,
                env={**k.env, "PYTHONPATH": str(ROOT / "operator"), "NO_COLOR": "1"},
            ))  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            name = done.stdout.strip().splitlines()[-1].split("/")[-1]

            # Paused: every earlier step over, no pod running, the claim kept, told three ways.
            body = await_gate(k, name, shipway_operator)
            if not skewed(body):
                break
        assert body["status"]["phase"] == "AwaitingApproval", json.dumps(body["status"])
        gate = gate_of(body)
        assert (gate["gate"], gate["name"], gate["phase"]) == (
            "spec.steps[1]",
            "release",
            "Waiting",
        )
        condition = body["status"]["conditions"][0]
        assert (condition["status"], condition["reason"]) == ("Unknown", "AwaitingApproval")
        assert any(e["reason"] == "WaitingForApproval" for e in k.events(name))
        assert "AwaitingApproval" in k("get", "pipelines", name)
        deadline = time.monotonic() + 60  # the kubelet ends a pod whose step container is done
        while running_pods(k) and time.monotonic() < deadline:
            time.sleep(1)
        assert running_pods(k) == []
        assert steps_by_name(body)["push"]["phase"] == "Pending"
        claims = k.json("get", "pvc")["items"]
        assert any(c["metadata"]["name"].startswith(f"{name}-") for c in claims)

        # A user RBAC does not allow to approve is refused at the API; nothing changes.
        refused = retried(lambda: people["outsider"].shipway("approve", name))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"{people['outsider'].username} may not approve" in refused.stderr
        # Nor may anyone record someone else's name, even with plain kubectl.
        forged = {
            "gate": "spec.steps[1]",
            "decision": "Approved",
            "user": people["approver"].username,
        }
        patch = json.dumps({"spec": {"approvals": [forged]}})
        sneaky = retried(
            lambda: people["bystander"].kubectl(
                "patch", "pipeline", name, "--type=merge", "-p", patch
            )
        )
        assert sneaky.returncode != 0
        assert "recorded under your own user name" in sneaky.stderr, sneaky.stderr
        body = k.pipeline(name)
        assert not body["spec"].get("approvals")
        assert body["status"]["phase"] == "AwaitingApproval", json.dumps(body["status"])[:3000]

        # The operator dies while it waits; the approval is taken by the API server alone.
        shipway_operator.kill()
        try:
            approved = retried(lambda: people["approver"].shipway("approve", name))
            assert approved.returncode == 0, approved.stdout + approved.stderr
            assert f"approved by {people['approver'].username}" in approved.stdout
            body = k.pipeline(name)
            (decision,) = body["spec"]["approvals"]
            assert decision == {**forged, "user": people["approver"].username}
            assert body["status"]["phase"] == "AwaitingApproval", json.dumps(body["status"])[:3000]
        finally:
            shipway_operator.start()

        body = k.wait_for(name, timeout=300)
    assert body["status"]["phase"] == "Succeeded", json.dumps(body["status"])
    gate = gate_of(body)
    assert (gate["phase"], gate["user"]) == ("Approved", people["approver"].username)
    assert gate["decidedAt"] >= gate["waitingSince"]
    push = steps_by_name(body)["push"]
    (build,) = body["status"]["builds"]
    assert push["digest"] == build["digest"]
    assert protected.tag_digest(repository, f"main-{commit[:7]}") == build["digest"]
    # It ran once: one pod for the push step, no retry.
    push_pods = [p for p in k.json("get", "pods")["items"] if p["metadata"]["name"] == push["pod"]]
    assert len(push_pods) == 1
    assert not push.get("attempts")
    approved_events = [e for e in k.events(name) if e["reason"] == "Approved"]
    assert len(approved_events) == 1
    assert people["approver"].username in approved_events[0]["message"]


def skewed(body: dict[str, Any]) -> bool:
    """The operator could not store a status (another session's older CRD, without this
    tree's phases, was in place at that write) and failed the pipeline for it."""
    conditions = (body.get("status") or {}).get("conditions") or [{}]
    return conditions[0].get("reason") in ("StatusRejected", "StatusTooLarge")


def test_reject_ends_the_run_and_approvers_narrow_who_may(
    k: Kubectl, people: dict[str, Identity], shipway_operator: OperatorProcess | None
) -> None:
    def pipeline(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "apiVersion": "shipway.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": name},
            "spec": {
                "services": {"app": {"image": "busybox:1.36"}},
                "approvers": {"users": [people["approver"].username]},
                "steps": [
                    {"name": "tests", "service": "app", "command": "true"},
                    {
                        "type": "manual",
                        "name": "deploy",
                        "steps": [{"name": "ship", "service": "app", "command": "true"}],
                    },
                    {"name": "after", "service": "app", "command": "true"},
                ],
                **extra,
            },
        }

    with crds.kept(k):
        # A decision cannot be brought along at create.
        early = pipeline(
            "early", approvals=[{"gate": "spec.steps[1]", "decision": "Approved", "user": "x"}]
        )
        refused = retried(lambda: k.run("apply", "-f", "-", stdin=json.dumps(early), check=False))
        assert refused.returncode != 0
        assert "spec.approvals must be empty when a Pipeline is created" in refused.stderr
        for attempt in range(4):
            name = f"gated-{attempt}"
            body = gate_then_reject(k, people, shipway_operator, pipeline(name))
            if not skewed(body):
                break
    assert body["status"]["phase"] == "Rejected", json.dumps(body["status"])[:3000]
    assert body["status"]["conditions"][0]["reason"] == "Rejected"
    by_name = steps_by_name(body)
    assert by_name["tests"]["phase"] == "Succeeded"
    assert {(by_name[s]["phase"], by_name[s]["reason"]) for s in ("ship", "after")} == {
        ("Skipped", "Rejected")
    }
    assert gate_of(body)["user"] == people["approver"].username
    reasons = [e["reason"] for e in k.events(name)]
    assert "Rejected" in reasons
    assert "PipelineRejected" in reasons
    # Decided: a second decision on the same gate is refused.
    again = people["approver"].shipway("approve", name)
    assert again.returncode == 2
    assert "not waiting for approval" in again.stderr


def gate_then_reject(
    k: Kubectl,
    people: dict[str, Identity],
    operator: OperatorProcess | None,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Create the pipeline, check who may decide at its gate, reject it: its end state."""
    name = manifest["metadata"]["name"]
    created = retried(lambda: k.run("apply", "-f", "-", stdin=json.dumps(manifest), check=False))
    assert created.returncode == 0, created.stderr
    body = await_gate(k, name, operator)
    if skewed(body):
        return body
    assert body["status"]["phase"] == "AwaitingApproval", json.dumps(body["status"])[:3000]
    # RBAC allows the bystander to approve, but the Pipeline names its approvers.
    narrowed = retried(lambda: people["bystander"].shipway("approve", name))
    assert narrowed.returncode == 2
    assert "is not in spec.approvers" in narrowed.stderr, narrowed.stderr
    # The plain kubectl way, as the docs show it: the user name is the API server's.
    whoami = people["approver"].kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"
    )
    assert whoami.stdout == people["approver"].username
    decision = {"gate": "spec.steps[1]", "decision": "Rejected", "user": whoami.stdout}
    patch = json.dumps({"spec": {"approvals": [decision]}})
    for _ in range(8):  # an older CRD in place at the write would prune spec.approvals
        rejected = retried(
            lambda: people["approver"].kubectl(
                "patch", "pipeline", name, "--type=merge", "-p", patch
            )
        )
        assert rejected.returncode == 0, rejected.stderr
        if k.pipeline(name)["spec"].get("approvals"):
            break
        time.sleep(2)
    return k.wait_for(name, ("Rejected", "Failed", "Succeeded"), timeout=180)
