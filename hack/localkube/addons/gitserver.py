"""Deploy the git server image (``gitimages.GIT_SERVER_IMAGE``) into a namespace and fill it.

Used by the e2e source tests and the source benchmark: one pod and Service (ssh 22, http 80,
git 9418), repositories streamed in from the host with ``kubectl exec ... tar -x``, the ssh
host key read back for ``known_hosts``. ``kubectl`` is the command prefix to run (binary and
kubeconfig). URLs use the Service's ClusterIP (the local cluster has no DNS yet).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localkube.images.git import GIT_SERVER_IMAGE

NAME = "git"


def _run(kubectl: Sequence[str], *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [*kubectl, *args], input=stdin, capture_output=True, check=False, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace")


def manifests(user: str, password: str, authorized_keys: str) -> list[dict[str, Any]]:
    """The server's ConfigMap (ssh keys allowed in), Pod and Service."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "git-keys"},
            "data": {"authorized_keys": authorized_keys},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": NAME, "labels": {"app": NAME}},
            "spec": {
                "containers": [
                    {
                        "name": "git",
                        "image": GIT_SERVER_IMAGE,
                        "env": [
                            {"name": "GIT_HTTP_USER", "value": user},
                            {"name": "GIT_HTTP_PASSWORD", "value": password},
                        ],
                        "volumeMounts": [{"name": "keys", "mountPath": "/etc/git-server"}],
                        "readinessProbe": {"tcpSocket": {"port": 22}, "periodSeconds": 1},
                    }
                ],
                "volumes": [{"name": "keys", "configMap": {"name": "git-keys"}}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME},
            "spec": {
                "selector": {"app": NAME},
                "ports": [
                    {"name": "ssh", "port": 22},
                    {"name": "http", "port": 80},
                    {"name": "git", "port": 9418},
                ],
            },
        },
    ]


def deploy(
    kubectl: Sequence[str], namespace: str, user: str, password: str, *, authorized_keys: str
) -> tuple[str, str]:
    """Start the server in ``namespace`` (which must exist); its (ClusterIP, ssh host key)."""
    items = manifests(user, password, authorized_keys)
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode()
    _run(kubectl, "apply", "-n", namespace, "-f", "-", stdin=body)
    _run(kubectl, "wait", "-n", namespace, "--for=condition=Ready", f"pod/{NAME}", "--timeout=120s")
    service = json.loads(_run(kubectl, "get", "service", NAME, "-n", namespace, "-o", "json"))
    deadline = time.monotonic() + 30
    while True:
        key = _run(kubectl, "exec", "-n", namespace, NAME, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub")  # fmt: skip
        host_key = " ".join(key.split()[:2])
        if host_key or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if not host_key:
        raise RuntimeError("the git server has no ssh host key")
    return str(service["spec"]["clusterIP"]), host_key


def publish(kubectl: Sequence[str], namespace: str, bare: Path, area: str = "public") -> None:
    """Copy a bare repository into the server: ``/srv/git/<area>/<name>.git``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(bare, arcname=bare.name)
    _run(
        kubectl, "exec", "-i", "-n", namespace, NAME, "--", "tar", "-x", "-C", f"/srv/git/{area}",
        stdin=buffer.getvalue(),
    )  # fmt: skip


def http_url(ip: str, repo: str, private: bool = False) -> str:
    return f"http://{ip}/cgi-bin/{'private' if private else 'public'}/{repo}.git"
