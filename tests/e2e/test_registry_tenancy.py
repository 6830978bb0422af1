"""Tenants of the registry cannot reach each other (issue #30, item 3).

The moves a step of one namespace could make against a registry without access control, each
tried with that namespace's own credential and expected to be refused: run another
namespace's image (through the kubelet, as a step pod would), list every repository
(``crane catalog``), overwrite another namespace's build-cache tag, push to the mirror's
``library/*``. And the moves a namespace needs, expected to work: push and pull its own
images, pull the mirror (anonymously too).

Against a registry of the test's own with token auth (``tokenregistry``); the cluster's
registry is left as it is (docs/registry.md says what it shares).
"""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localkube import config as lk_config
from localkube.config import Paths

from . import tokenregistry
from .kube import Cluster
from .registrycreds import host_argv

pytestmark = pytest.mark.e2e

CLUSTER_MIRROR = lk_config.REGISTRY_SERVICE_IP
REFUSED = re.compile(r"UNAUTHORIZED|DENIED|401|403")
#: containerd's words for the registry's refusal (not a network or not-found failure).
KUBELET_REFUSED = re.compile(r"insufficient_scope|pull access denied")


@pytest.fixture(scope="module")
def registry(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tokenregistry.TokenRegistry]:
    if not cluster.local:
        pytest.skip("runs the registry on the local cluster's node")
    reg = tokenregistry.start(Paths.default(), tmp_path_factory.mktemp("token-registry"))
    try:
        # localkube's seeding, with the admin credential: the mirror's busybox and redis.
        for image in ("busybox:latest", "redis:7"):
            src = f"{CLUSTER_MIRROR}/library/{image}"
            crane(reg, None, "copy", src, f"{reg.host}/library/{image}", check=True)
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def other_namespace(cluster: Cluster, namespace: str) -> Iterator[str]:
    name = f"{namespace[:50]}-b{secrets.token_hex(2)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.run("delete", "namespace", name, "--wait=false", check=False)


def crane(
    reg: tokenregistry.TokenRegistry, who: str | None, *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """crane as ``who``: a namespace's credential, the admin's (None), or nobody's ('')."""
    paths = Paths.default()
    proc = subprocess.run(
        # The cluster's registry on token auth: its realm resolves in the node's namespace.
        host_argv(paths, [str(tokenregistry.binary(paths, "crane")), *args]),
        env={
            "DOCKER_CONFIG": str(reg.config_dir(who)),
            "SSL_CERT_FILE": str(paths.pki / "ca.crt"),
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"crane {' '.join(args)} as {who!r}: {proc.stderr}"
    return proc


def refused(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and bool(REFUSED.search(proc.stderr))


def digest(reg: tokenregistry.TokenRegistry, who: str | None, ref: str) -> str:
    return crane(reg, who, "digest", ref, check=True).stdout.strip()


def test_a_namespace_pushes_and_pulls_its_own_and_pulls_the_mirror(
    registry: tokenregistry.TokenRegistry, namespace: str
) -> None:
    host = registry.host
    mine = f"{host}/{namespace}/app-1a2b3c4d/web:1"
    crane(registry, namespace, "copy", f"{host}/library/busybox:latest", mine, check=True)
    assert digest(registry, namespace, mine) == digest(registry, None, f"{host}/library/busybox")
    cache = f"{host}/{namespace}/cache/app/web:main"
    crane(registry, namespace, "copy", mine, cache, check=True)
    # The mirror is Docker Hub's stand-in: anyone pulls it, without a credential too.
    assert digest(registry, "", f"{host}/library/redis:7").startswith("sha256:")


def test_a_namespace_cannot_pull_another_namespaces_image(
    registry: tokenregistry.TokenRegistry, namespace: str, other_namespace: str
) -> None:
    theirs = f"{registry.host}/{other_namespace}/app-1a2b3c4d/web"
    crane(registry, other_namespace, "copy", f"{registry.host}/library/busybox", f"{theirs}:1",
          check=True)  # fmt: skip
    pinned = f"{theirs}@{digest(registry, other_namespace, f'{theirs}:1')}"
    for who in (namespace, ""):
        proc = crane(registry, who, "manifest", pinned)
        assert refused(proc), (who, proc.stderr)
    wrong = registry.config_dir(namespace)
    (wrong / "config.json").write_text(
        registry.docker_config(namespace).replace(registry.password(namespace), "guessed")
    )
    assert refused(crane_in(registry, wrong, "manifest", pinned))


def crane_in(
    reg: tokenregistry.TokenRegistry, config_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    paths = Paths.default()
    return subprocess.run(
        [str(tokenregistry.binary(paths, "crane")), *args],
        env={"DOCKER_CONFIG": str(config_dir), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_namespace_lists_the_registry(
    registry: tokenregistry.TokenRegistry, namespace: str
) -> None:
    for who in (namespace, ""):
        proc = crane(registry, who, "catalog", registry.host)
        assert refused(proc), (who, proc.stdout, proc.stderr)
    # The admin can, so the refusal is the policy's, not a broken catalog.
    listed = crane(registry, None, "catalog", registry.host, check=True).stdout.split()
    assert "library/busybox" in listed


def test_a_namespace_cannot_overwrite_another_namespaces_cache_tag(
    registry: tokenregistry.TokenRegistry, namespace: str, other_namespace: str
) -> None:
    host = registry.host
    theirs = f"{host}/{other_namespace}/cache/app/web:main"
    crane(registry, other_namespace, "copy", f"{host}/library/busybox", theirs, check=True)
    before = digest(registry, other_namespace, theirs)
    mine = f"{host}/{namespace}/app-1a2b3c4d/web:1"
    crane(registry, namespace, "copy", f"{host}/library/redis:7", mine, check=True)
    # Its own image, or the mirror's (whose layers the registry could mount), over their tag.
    for source in (mine, f"{host}/library/redis:7"):
        proc = crane(registry, namespace, "copy", source, theirs)
        assert refused(proc), (source, proc.stderr)
    proc = crane(registry, namespace, "delete", f"{theirs.rsplit(':', 1)[0]}@{before}")
    assert refused(proc), proc.stderr
    assert digest(registry, other_namespace, theirs) == before


def test_nobody_but_the_admin_writes_the_mirror(
    registry: tokenregistry.TokenRegistry, namespace: str
) -> None:
    host = registry.host
    before = digest(registry, "", f"{host}/library/busybox:latest")
    mine = f"{host}/{namespace}/app-1a2b3c4d/evil:1"
    crane(registry, namespace, "copy", f"{host}/library/redis:7", mine, check=True)
    for who in (namespace, ""):
        proc = crane(registry, who, "copy", mine, f"{host}/library/busybox:latest")
        assert refused(proc), (who, proc.stderr)
        proc = crane(registry, who, "copy", mine, f"{host}/library/newimage:1")
        assert refused(proc), (who, proc.stderr)
    assert digest(registry, "", f"{host}/library/busybox:latest") == before


def _pull_secret(registry: tokenregistry.TokenRegistry, namespace: str) -> dict[str, object]:
    data = base64.b64encode(registry.docker_config(namespace).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-pull"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": data},
    }


def _pod(name: str, image: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "imagePullSecrets": [{"name": "registry-pull"}],
            "containers": [{"name": "main", "image": image, "command": ["true"]}],
        },
    }


def _pull_failure(cluster: Cluster, namespace: str, pod: str, timeout: float = 90) -> str:
    """The kubelet's message once the pod's image pull failed ('' if it did not in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cluster.json("get", "pod", pod, "-n", namespace).get("status", {})
        for cs in status.get("containerStatuses", []):
            waiting = cs.get("state", {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                return str(waiting.get("message", ""))
        time.sleep(1)
    return ""


def test_a_step_pod_cannot_run_another_namespaces_image(
    cluster: Cluster,
    registry: tokenregistry.TokenRegistry,
    namespace: str,
    other_namespace: str,
) -> None:
    host = registry.host
    theirs = f"{host}/{other_namespace}/app-1a2b3c4d/web"
    crane(registry, other_namespace, "copy", f"{host}/library/busybox", f"{theirs}:1",
          check=True)  # fmt: skip
    pinned = f"{theirs}@{digest(registry, other_namespace, f'{theirs}:1')}"
    cluster.apply(other_namespace, _pull_secret(registry, other_namespace))
    cluster.apply(namespace, _pull_secret(registry, namespace), _pod("theirs", pinned))
    # Another namespace's pod, with its own namespace's credential, cannot pull it...
    message = _pull_failure(cluster, namespace, "theirs")
    assert message, "the pod of another namespace was not refused the image"
    assert KUBELET_REFUSED.search(message), message
    # ...its own namespace's pod runs it through the kubelet (so the path itself works)...
    cluster.apply(other_namespace, _pod("own", pinned))
    done = cluster.wait_pod(other_namespace, "own")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    # ...and once it is on the node, the kubelet still asks the registry with the other
    # namespace's credential before it lets that namespace's pod use it (1.35: on by default).
    cluster.apply(namespace, _pod("theirs-cached", pinned))
    message = _pull_failure(cluster, namespace, "theirs-cached")
    assert message, "the image on the node was handed to another namespace's pod"
    assert KUBELET_REFUSED.search(message), message
