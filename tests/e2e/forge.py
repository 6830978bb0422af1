"""Gitea in the local cluster for the triggers tests: its API, git pushes from the host, and
the ``shipway triggers`` process under test (issue 26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localkube.addons.gitea.client import Gitea, Work

from .kube import Cluster

__all__ = [
    "HOST_FROM_PODS",
    "Gitea",
    "Work",
    "post",
    "project",
    "repository_secrets",
    "start_triggers",
]

ROOT = Path(__file__).resolve().parents[2]
#: Pods reach processes of the host through the node's bridge address.
HOST_FROM_PODS = "10.244.0.1"


def project(command: str, name: str = "test") -> dict[str, str]:
    return {
        "codeship-services.yml": "app:\n  image: busybox:1.36\n",
        "codeship-steps.yml": f"- name: {name}\n  service: app\n  command: {command}\n",
    }


def start_triggers(namespace: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipway", "triggers", "-n", namespace, "--port", str(port),
             "--run-url", "http://dashboard.example/{namespace}/{name}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    raise AssertionError(f"shipway triggers did not start: {log.read_text()[-2000:]}")


def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def repository_secrets(forge: Gitea, *, webhook_secret: str, token: str) -> list[dict[str, Any]]:
    """The three Secrets a test Repository names: ``hook`` (the webhook's secret), ``clone``
    (the forge's login) and ``status`` (the commit-status token)."""
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook"},
         "stringData": {"secret": webhook_secret}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "clone"},
         "stringData": {"username": forge.username, "password": forge.password}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "status"},
         "stringData": {"token": token}},
    ]  # fmt: skip


def warm_spares(cluster: Cluster, namespace: str, repo: str) -> list[dict[str, Any]]:
    """The Repository's spare claims that no push has taken and nothing is deleting."""
    got = cluster.json("get", "pvc", "-n", namespace, "-l", f"shipway.dev/warm-workspace={repo}")
    return [
        c for c in got.get("items") or []
        if not c["metadata"].get("annotations", {}).get("shipway.dev/taken-for")
        and not c["metadata"].get("deletionTimestamp")
    ]  # fmt: skip
