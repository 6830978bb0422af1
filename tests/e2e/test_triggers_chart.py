"""The chart's webhook receiver on the real cluster (issue 26): ``triggers.enabled=true``
installs it beside the in-cluster operator, two replicas under its own least-privilege Role,
and a push to Gitea reaches it through its Service and runs the pipeline.

The release ("trig", so nothing cluster-scoped clashes with test_helm.py's "shipway") serves
one ``shipway-helm-*`` namespace: the session's operator never watches those, so the Pipeline
is run by the release's own operator, from the image BuildKit built from this tree's
Dockerfile (pinned by digest: other sessions push the same tag).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import IN_CLUSTER_NAMESPACES, Image, OperatorProcess
from .forge import Gitea, Work, project, repository_secrets, warm_spares
from .kube import Cluster, KubectlError

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "shipway"
RELEASE = "trig"
FULLNAME = "trig-shipway"
RECEIVER = f"{FULLNAME}-triggers"
RECEIVER_PODS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=triggers"
WAIT = 300


@dataclass
class Installed:
    cluster: Cluster
    namespace: str
    gitea: Gitea
    repo: str
    work: Work
    helm: Callable[..., subprocess.CompletedProcess[str]]


def _until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """The probe's first truthy answer; a kubectl that fails meanwhile (the shared API
    server restarting under another session's load) is asked again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = probe()
        except KubectlError:
            got = None
        if got:
            return got
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def installed(
    cluster: Cluster,
    helm_binary: str,
    operator_image: Image,
    shipway_operator: OperatorProcess | None,  # the CRDs of this tree, applied
) -> Iterator[Installed]:
    if not cluster.local:
        pytest.skip("Gitea runs in the local cluster only")
    from localkube.addons.gitea import server as gitea_addon
    from localkube.config import Paths

    namespace = f"{IN_CLUSTER_NAMESPACES.rstrip('*')}trig-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)

    def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [helm_binary, "--kubeconfig", str(cluster.kubeconfig), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`helm {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    repository, tag = operator_image.ref.rsplit(":", 1)
    if operator_image.digest:
        tag = f"{tag}@{operator_image.digest}"
    sets = [
        f"watchNamespaces={{{namespace}}}",
        "admissionPolicy.create=false",
        "history.api.enabled=false",
        f"image.repository={repository}",
        f"image.tag={tag}",
        "triggers.enabled=true",
        "triggers.replicas=2",
    ]
    found = gitea_addon.up(Paths.default())
    forge = Gitea(found["host_url"], found["username"], found["password"])
    try:
        helm(
            "install", RELEASE, str(CHART), "-n", namespace, "--wait", "--timeout", f"{WAIT}s",
            *[arg for value in sets for arg in ("--set", value)],
        )  # fmt: skip
        repo = f"app-{secrets.token_hex(3)}"
        forge.create_repo(repo)
        secret = secrets.token_hex(16)
        # Gitea runs in the cluster: the delivery goes through the receiver's Service.
        hook = f"http://{RECEIVER}.{namespace}.svc.cluster.local:8090/hooks/{namespace}/{repo}"
        forge.add_hook(repo, hook, secret)
        token = forge.token(f"shipway-{repo}")
        cluster.apply(
            namespace,
            *repository_secrets(forge, webhook_secret=secret, token=token),
            {"apiVersion": "shipway.dev/v1alpha1", "kind": "Repository", "metadata": {"name": repo},
             "spec": {"url": f"{found['host_url']}/{forge.username}/{repo}.git",
                      "provider": "gitea", "webhookSecret": {"name": "hook", "key": "secret"},
                      "cloneSecretName": "clone", "statusToken": {"name": "status", "key": "token"},
                      "concurrency": "queue"}},
        )  # fmt: skip
        yield Installed(cluster, namespace, forge, repo, Work(forge.clone_url(repo)), helm)
    finally:
        helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
        cluster.run("delete", "namespace", namespace, "--wait=false", check=False)


def _spares(s: Installed) -> list[dict[str, Any]]:
    return warm_spares(s.cluster, s.namespace, s.repo)


def test_two_receiver_replicas_run_under_their_own_role(installed: Installed) -> None:
    s = installed
    pods = s.cluster.json("get", "pods", "-n", s.namespace, "-l", RECEIVER_PODS)["items"]
    ready = [
        p for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    ]  # fmt: skip
    assert len(ready) == 2, [p["metadata"]["name"] for p in pods]
    container = ready[0]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    who = f"system:serviceaccount:{s.namespace}:{RECEIVER}"

    def can(verb: str, resource: str, namespace: str) -> bool:
        resource, _, subresource = resource.partition("/")
        args = ["auth", "can-i", verb, resource, "--as", who, "-n", namespace]
        args += [f"--subresource={subresource}"] if subresource else []
        return s.cluster.run(*args, check=False).stdout.strip() == "yes"

    assert can("create", "pipelines.shipway.dev", s.namespace)
    assert can("patch", "repositories.shipway.dev/status", s.namespace)
    assert not can("create", "pods", s.namespace), "the receiver never makes pods"
    assert not can("delete", "pipelines.shipway.dev", s.namespace)
    assert not can("update", "repositories.shipway.dev", s.namespace), "its spec is the user's"
    assert not can("get", "secrets", "default"), "only the namespaces it serves"
    assert can("create", "persistentvolumeclaims", s.namespace), "its warm workspaces"
    assert not can("delete", "persistentvolumeclaims", "default")
    # Two replicas keep one warm workspace between them (spec.warmWorkspaces, 1): a spare
    # both made at once is trimmed to one, and stays one.
    deadline = time.monotonic() + 90
    while len(_spares(s)) != 1:
        assert time.monotonic() < deadline, [c["metadata"]["name"] for c in _spares(s)]
        time.sleep(1)
    time.sleep(12)  # a round of each replica's upkeep (every 10 s)
    assert len(_spares(s)) == 1, [c["metadata"]["name"] for c in _spares(s)]


def test_a_push_reaches_the_in_cluster_receiver_through_its_service(installed: Installed) -> None:
    s = installed
    commit = s.work.commit(project("echo hello from the chart"), "Through the Service")
    s.work.push()

    def finished() -> dict[str, Any] | None:
        items = s.cluster.json(
            "get", "pipelines", "-n", s.namespace, "-l", f"shipway.dev/repository={s.repo}"
        )["items"]
        for p in items:
            if p["metadata"]["annotations"].get("shipway.dev/commit") != commit:
                continue
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Cancelled"):
                return dict(p)
        return None

    pipeline = _until(f"the pipeline of {commit[:12]} to finish", finished)
    assert pipeline["status"]["phase"] == "Succeeded", json.dumps(pipeline["status"])[:2000]
    assert pipeline["spec"]["source"]["git"]["revision"] == commit
    owner = pipeline["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Repository", s.repo)

    def success() -> bool:
        return any(st.get("status") == "success" for st in s.gitea.statuses(s.repo, commit))

    _until(f"Gitea's success status of {commit[:12]}", success, 120)
    # One of the two replicas took the delivery and logged it.
    logs = s.cluster.kubectl(
        "logs", "-n", s.namespace, "-l", RECEIVER_PODS, "--tail=-1", "--prefix"
    )
    assert f"pipeline {pipeline['metadata']['name']} created" in logs, logs[-3000:]
