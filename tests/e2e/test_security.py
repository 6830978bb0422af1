"""Security on the real kubelet: no escape from the workspace, least-privileged step pods."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .gitserver import GitServer, Repo, lost_source, serve_own_crd
from .pipelines import ROOT, Kubectl, steps_by_name
from .test_cli import created_name, shipway

pytestmark = pytest.mark.e2e

#: A path that exists on the node's host filesystem and in no image.
HOST_ONLY = "var/lib/shipway-localkube"


def escape_attempt(name: str, plant: str, mount: str) -> dict[str, object]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {
                "planter": {"image": "busybox:1.36", "volumes": ["./:/ws"]},
                "victim": {"image": "busybox:1.36", "volumes": [mount]},
            },
            "steps": [
                {"name": "plant symlink", "service": "planter", "command": ["sh", "-c", plant]},
                {
                    "name": "follow it",
                    "service": "victim",
                    "command": ["test", "-e", f"/x/{HOST_ONLY}"],
                },
            ],
        },
    }


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


@pytest.mark.parametrize(
    ("plant", "mount"),
    [
        ("rm -rf /ws/tmp && ln -s / /ws/tmp", "./tmp:/x"),
        ("mkdir -p /ws/tmp && ln -s / /ws/tmp/root", "./tmp/root:/x"),
        ("ln -s ../../../../../../.. /ws/up", "./up:/x"),
    ],
    ids=["subpath-is-symlink-to-root", "nested-symlink-to-root", "relative-symlink-up"],
)
def test_a_symlink_in_the_workspace_cannot_reach_outside_the_volume(
    k: Kubectl, plant: str, mount: str
) -> None:
    k.apply_docs([escape_attempt("escape", plant, mount)])
    body = k.wait_for("escape", timeout=120)
    steps = steps_by_name(body)
    assert steps["plant symlink"]["phase"] == "Succeeded"
    follow = steps["follow it"]
    assert follow["phase"] == "Failed", "the subPath mount reached the host filesystem"
    assert body["status"]["phase"] == "Failed"
    print(f"\nsymlink escape refused: {follow['reason']}: {follow['message']}")
    assert follow["reason"] in (
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "StartError",
        "Error",
    ), follow


def test_step_pods_run_as_the_pipelines_service_account_without_a_token(k: Kubectl) -> None:
    k("create", "serviceaccount", "builder")
    doc = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "identity"},
        "spec": {
            "serviceAccountName": "builder",
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [
                {
                    "name": "no token",
                    "service": "app",
                    "command": [
                        "sh",
                        "-c",
                        "test ! -e /var/run/secrets/kubernetes.io/serviceaccount/token",
                    ],
                }
            ],
        },
    }
    k.apply_docs([doc])
    body = k.wait_for("identity")
    assert body["status"]["phase"] == "Succeeded", body["status"]
    pod = k.json("get", "pod", steps_by_name(body)["no token"]["pod"])
    assert pod["spec"]["serviceAccountName"] == "builder"
    assert pod["spec"]["automountServiceAccountToken"] is False
    volumes = pod["spec"].get("volumes", [])  # this pipeline mounts nothing: no claim either
    assert not any("hostPath" in v for v in volumes)
    assert not any(v["name"].startswith("kube-api-access") for v in volumes), "no token volume"


def test_a_restricted_namespace_gives_a_clear_step_error_not_a_stuck_pipeline(k: Kubectl) -> None:
    k("label", "namespace", k.namespace, "pod-security.kubernetes.io/enforce=restricted")
    doc = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "needs-root"},
        "spec": {
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [{"name": "as root", "service": "app", "command": "true"}],
        },
    }
    k.apply_docs([doc])
    body = k.wait_for("needs-root", timeout=60)
    step = steps_by_name(body)["as root"]
    assert body["status"]["phase"] == "Failed"
    assert step["reason"] == "PodRejected"
    assert "PodSecurity" in step["message"]


def _follow_only(name: str, mount: str, source: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "source": source,
            "services": {"victim": {"image": "busybox:1.36", "volumes": [mount]}},
            "steps": [
                {
                    "name": "follow it",
                    "service": "victim",
                    "command": ["test", "-e", f"/x/{HOST_ONLY}"],
                }
            ],
        },
    }


def _refused(body: dict[str, object]) -> None:
    status = body["status"]
    assert isinstance(status, dict)
    assert status["source"]["phase"] == "Succeeded", status["source"]
    follow = steps_by_name(body)["follow it"]
    assert follow["phase"] == "Failed", "the subPath mount reached the host filesystem"
    print(f"\nsymlink escape refused: {follow['reason']}: {follow['message']}")
    assert follow["reason"] in ("CreateContainerConfigError", "CreateContainerError", "StartError")


ESCAPES = [("./tmp:/x", "tmp", "/"), ("./up:/x", "up", "../../../../../../..")]


@pytest.mark.parametrize(("mount", "link", "target"), ESCAPES, ids=["to-root", "relative-up"])
def test_a_symlink_in_a_checkout_cannot_reach_outside_the_volume(
    k: Kubectl, git_server: tuple[GitServer, dict[str, Repo]], mount: str, link: str, *, target: str
) -> None:
    server, _ = git_server
    for attempt in range(3):  # again if another session's older CRD pruned the source
        serve_own_crd(k, ROOT)
        name = f"escape-{attempt}"
        k.apply_docs([_follow_only(name, mount, {"git": {"url": server.http("escape")}})])
        body = k.wait_for(name, timeout=120)
        if not lost_source(body):
            break
    _refused(body)


@pytest.mark.parametrize(("mount", "link", "target"), ESCAPES, ids=["to-root", "relative-up"])
def test_a_symlink_in_an_upload_cannot_reach_outside_the_volume(
    k: Kubectl, tmp_path: Path, mount: str, link: str, *, target: str
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / link).symlink_to(target)
    manifest = tmp_path / "escape.yaml"
    manifest.write_text(yaml.safe_dump(_follow_only("escape", mount, {"upload": {}})))
    for _ in range(3):  # again if another session's older CRD pruned the source
        serve_own_crd(k, ROOT)
        done = shipway(k.namespace, "run", "-f", str(manifest), "--source", str(project))
        body = k.pipeline(created_name(done.stdout))
        if not lost_source(body):
            break
    assert done.returncode == 1, done.stdout + done.stderr
    _refused(body)
