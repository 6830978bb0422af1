"""The local cluster's registry, its docker.io mirror and cluster DNS, used as pods use them.

These need the local cluster (localkube) or a cluster with the same add-ons: the registry
Service ``registry.localkube-system`` and the ``localkube.shipway.dev/crane`` image.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .kube import Cluster, busybox_pod
from .registrycreds import with_credential

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localkube import config as lk_config  # noqa: E402
from localkube.addons.registry import mirror, retention  # noqa: E402
from localkube.addons.registry import token as registrytoken  # noqa: E402
from localkube.config import Paths  # noqa: E402
from localkube.images import recipes as imageset  # noqa: E402

pytestmark = pytest.mark.e2e

REGISTRY = lk_config.REGISTRY_HOST
CRANE_IMAGE = imageset.CRANE_IMAGE


@pytest.fixture(autouse=True)
def _local_only(cluster: Cluster) -> None:
    if not cluster.local:
        pytest.skip("needs the local cluster's registry and mirror")


def _image_id(pod: dict[str, Any]) -> str:
    return str(pod["status"]["containerStatuses"][0]["imageID"])


def _mirrored_digest(recipe: str) -> str:
    info = imageset.ensure_archive(mirror.recipes()[recipe], Paths.default())
    return info.manifest_digest


def test_busybox_latest_runs_from_the_mirror(cluster: Cluster, namespace: str) -> None:
    pod = busybox_pod("latest", "echo from-the-mirror", image="busybox")
    assert "imagePullPolicy" not in pod["spec"]["containers"][0]  # :latest means Always
    cluster.apply(namespace, pod)
    done = cluster.wait_pod(namespace, "latest")
    assert done["status"]["phase"] == "Succeeded"
    assert cluster.logs(namespace, "latest").strip() == "from-the-mirror"
    assert _image_id(done) == f"docker.io/library/busybox@{_mirrored_digest('busybox')}"


def test_redis_7_serves_from_the_mirror(cluster: Cluster, namespace: str) -> None:
    script = "redis-server --daemonize yes && sleep 1 && redis-cli ping && redis-server --version"
    pod = busybox_pod("redis", script, image="redis:7")
    cluster.apply(namespace, pod)
    done = cluster.wait_pod(namespace, "redis")
    out = cluster.logs(namespace, "redis")
    assert done["status"]["phase"] == "Succeeded", out
    assert "PONG" in out
    assert "v=7." in out
    assert _image_id(done) == f"docker.io/library/redis@{_mirrored_digest('redis')}"


def test_cluster_dns_resolves_the_registry_service(cluster: Cluster, namespace: str) -> None:
    # busybox's nslookup asks for the name as given; glibc (debian) applies the search path.
    lookup = f"nslookup {REGISTRY} && nslookup kubernetes.default.svc.cluster.local"
    search = "getent hosts registry.localkube-system && cat /etc/resolv.conf"
    cluster.apply(
        namespace,
        busybox_pod("dns", lookup),
        busybox_pod("search", search, image="debian:12"),
    )
    for pod in ("dns", "search"):
        done = cluster.wait_pod(namespace, pod)
        out = cluster.logs(namespace, pod)
        assert done["status"]["phase"] == "Succeeded", out
        assert lk_config.REGISTRY_SERVICE_IP in out
    assert lk_config.KUBERNETES_SERVICE_IP in cluster.logs(namespace, "dns")
    resolv = cluster.logs(namespace, "search")
    assert f"nameserver {lk_config.DNS_SERVICE_IP}" in resolv
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in resolv


def _crane_pod(name: str, script: str) -> dict[str, Any]:
    """A pod with crane that trusts the cluster CA (which issued the registry's certificate)."""
    pod = busybox_pod(
        name,
        script,
        image=CRANE_IMAGE,
        volumes=[{"name": "ca", "configMap": {"name": "kube-root-ca.crt"}}],
        mounts=[{"name": "ca", "mountPath": "/etc/cluster-ca", "readOnly": True}],
    )
    container = pod["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    container["env"] = [{"name": "SSL_CERT_FILE", "value": "/etc/cluster-ca/ca.crt"}]
    return pod


def test_a_pod_pushes_by_dns_name_and_another_runs_it_by_digest(
    cluster: Cluster, namespace: str
) -> None:
    repo = f"{REGISTRY}/{namespace}/hello"  # the namespace's own folder (token auth: its rights)
    marker = secrets.token_hex(4)
    # A new image: the mirror's busybox with a label of this test, pushed under a new name.
    push = (
        f"crane mutate {REGISTRY}/library/busybox:latest --label e2e={marker}"
        f" --entrypoint echo --cmd hello-{marker} -t {repo}:v1"
    )
    cluster.apply(namespace, with_credential(cluster, namespace, _crane_pod("push", push)))
    pushed = cluster.wait_pod(namespace, "push")
    out = cluster.logs(namespace, "push")
    assert pushed["status"]["phase"] == "Succeeded", out
    match = re.search(rf"{re.escape(repo)}@(sha256:[0-9a-f]{{64}})", out)
    assert match, out
    digest = match.group(1)

    runner = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "run"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": f"{repo}@{digest}"}],
        },
    }
    cluster.apply(namespace, with_credential(cluster, namespace, runner))
    ran = cluster.wait_pod(namespace, "run")
    assert ran["status"]["phase"] == "Succeeded"
    assert cluster.logs(namespace, "run").strip() == f"hello-{marker}"
    assert _image_id(ran) == f"{repo}@{digest}"


def test_an_image_the_registry_lacks_fails_to_pull_with_the_registrys_answer(
    cluster: Cluster, namespace: str
) -> None:
    pod = busybox_pod("missing", "true", image=f"{REGISTRY}/{namespace}/nothing:1")
    cluster.apply(namespace, with_credential(cluster, namespace, pod))
    deadline = time.monotonic() + 60
    reason = ""
    while time.monotonic() < deadline and reason not in ("ErrImagePull", "ImagePullBackOff"):
        status = cluster.json("get", "pod", "missing", "-n", namespace)["status"]
        waiting = status.get("containerStatuses", [{}])[0].get("state", {}).get("waiting", {})
        reason = waiting.get("reason", "")
        time.sleep(1)
    events = cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=missing"
    )
    assert reason in ("ErrImagePull", "ImagePullBackOff"), events
    assert "not found" in events


def test_postgres_15_initialises_with_the_official_variables(
    cluster: Cluster, namespace: str
) -> None:
    env = [
        {"name": "POSTGRES_PASSWORD", "value": "s3cret"},
        {"name": "POSTGRES_USER", "value": "ci"},
        {"name": "POSTGRES_DB", "value": "app"},
    ]
    client = (
        "until pg_isready -h 127.0.0.1 -q; do sleep 1; done;"
        " PGPASSWORD=s3cret psql -h 127.0.0.1 -U ci -d app -tAc 'select 6*7, current_user';"
        " PGPASSWORD=wrong psql -h 127.0.0.1 -U ci -d app -c 'select 1' 2>&1 || echo refused"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pg"},
        "spec": {
            "restartPolicy": "Never",
            # The server as a native sidecar: the pod ends when the client does.
            "initContainers": [
                {"name": "db", "image": "postgres:15", "env": env, "restartPolicy": "Always"}
            ],
            "containers": [
                {"name": "client", "image": "postgres:15", "command": ["sh", "-c", client]}
            ],
        },
    }
    cluster.apply(namespace, pod)
    done = cluster.wait_pod(namespace, "pg", timeout=240)
    out = cluster.logs(namespace, "pg", "client")
    assert done["status"]["phase"] == "Succeeded", out + cluster.logs(namespace, "pg", "db")
    assert "42|ci" in out
    assert "password authentication failed" in out
    assert "refused" in out


def test_debian_and_ruby_with_rspec(cluster: Cluster, namespace: str) -> None:
    spec = (
        "mkdir -p /tmp/t && cd /tmp/t && printf '%s\\n' "
        '\'RSpec.describe("artifact") { it("exists") { expect(1 + 1).to eq(2) } }\''
        " > a_spec.rb && rspec a_spec.rb && ruby -v"
    )
    cluster.apply(
        namespace,
        busybox_pod(
            "deb", "cat /etc/debian_version && apt-get --version | head -1", image="debian:12"
        ),
        busybox_pod("rb", spec, image="ruby:3.1"),
    )
    deb = cluster.wait_pod(namespace, "deb")
    out = cluster.logs(namespace, "deb")
    assert deb["status"]["phase"] == "Succeeded", out
    assert out.startswith("12.")
    rb = cluster.wait_pod(namespace, "rb")
    out = cluster.logs(namespace, "rb")
    assert rb["status"]["phase"] == "Succeeded", out
    assert "1 example, 0 failures" in out
    assert "ruby 3.1" in out


def test_prune_deletes_a_pipelines_repositories_and_nothing_else(
    cluster: Cluster, namespace: str
) -> None:
    """The retention rule's first half (registry-gc, which makes the registry read-only for a
    while, is left out of the shared suite)."""
    base = f"{REGISTRY}/{namespace}"
    push = " && ".join(
        f"crane mutate {REGISTRY}/library/busybox:latest --label p={name} -t {base}/{name}/app:1"
        for name in ("p1", "p10")
    )
    cluster.apply(namespace, with_credential(cluster, namespace, _crane_pod("push", push)))
    pushed = cluster.wait_pod(namespace, "push")
    assert pushed["status"]["phase"] == "Succeeded", cluster.logs(namespace, "push")

    paths = Paths.default()
    deleted = retention.prune(paths, f"{namespace}/p1")
    assert [d.split("@")[0] for d in deleted] == [f"{namespace}/p1/app"]
    host = lk_config.REGISTRY_SERVICE_IP
    assert mirror.remote_digest(paths, f"{host}/{namespace}/p1/app:1") is None
    assert mirror.remote_digest(paths, f"{host}/{namespace}/p10/app:1") is not None
    assert mirror.remote_digest(paths, f"{host}/library/busybox:latest") is not None


def test_a_pod_with_its_namespaces_credential_reaches_only_its_own_repositories(
    cluster: Cluster, namespace: str
) -> None:
    """Issue #30 item 3 on the cluster's own registry (token auth is ``localkube up``'s
    default): a step holding its namespace's credential pushes its own repository, and is
    refused the catalog, another namespace's repository and the mirror's ``library/*``."""
    if not registrytoken.active(Paths.default()):
        pytest.skip("the cluster's registry runs without token auth (AUTH=none)")
    own, other = f"{REGISTRY}/{namespace}/mine:1", f"{REGISTRY}/not-{namespace}/theirs:1"
    src = f"{REGISTRY}/library/busybox:latest"
    moves = {
        "own": f"crane copy {src} {own}",
        "catalog": f"crane catalog {REGISTRY}",
        "other": f"crane copy {src} {other}",
        "mirror": f"crane copy {src} {REGISTRY}/library/busybox:e2e-{secrets.token_hex(3)}",
    }
    script = "; ".join(f"{cmd} >/dev/null 2>&1; echo {name}=$?" for name, cmd in moves.items())
    cluster.apply(namespace, with_credential(cluster, namespace, _crane_pod("moves", script)))
    cluster.wait_pod(namespace, "moves")
    out = cluster.logs(namespace, "moves")
    codes = dict(line.split("=", 1) for line in out.split() if "=" in line)
    assert codes.get("own") == "0", out
    assert codes.get("catalog") not in (None, "0"), out
    assert codes.get("other") not in (None, "0"), out
    assert codes.get("mirror") not in (None, "0"), out
