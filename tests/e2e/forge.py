"""Gitea in the local cluster for the triggers tests: its API, git pushes from the host, and
the ``shipway triggers`` process under test (issue 26)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Pods reach processes of the host through the node's bridge address.
HOST_FROM_PODS = "10.244.0.1"


class Gitea:
    def __init__(self, url: str, username: str, password: str) -> None:
        self.url, self.username, self.password = url.rstrip("/"), username, password

    def call(
        self, method: str, path: str, doc: Any = None, auth: tuple[str, str] | None = None
    ) -> Any:
        user, password = auth or (self.username, self.password)
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        req = urllib.request.Request(
            f"{self.url}/api/v1{path}",
            data=None if doc is None else json.dumps(doc).encode(),
            headers={"Authorization": f"Basic {pair}", "Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as reply:
                body = reply.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(body) if body.strip() else None

    def create_repo(self, name: str) -> None:
        self.call("POST", "/user/repos", {"name": name, "default_branch": "main", "private": False})

    def add_hook(self, repo: str, url: str, secret: str, owner: str = "") -> int:
        doc = {
            "type": "gitea",
            "active": True,
            "events": ["push", "pull_request"],
            "config": {"url": url, "content_type": "json", "secret": secret},
        }
        got = self.call("POST", f"/repos/{owner or self.username}/{repo}/hooks", doc)
        return int(got["id"])

    def token(self, name: str) -> str:
        got = self.call(
            "POST", f"/users/{self.username}/tokens", {"name": name, "scopes": ["write:repository"]}
        )
        return str(got["sha1"])

    def statuses(self, repo: str, commit: str) -> list[dict[str, Any]]:
        got = self.call("GET", f"/repos/{self.username}/{repo}/commits/{commit}/statuses?limit=50")
        return list(got or [])

    def clone_url(self, repo: str, owner: str = "", auth: tuple[str, str] | None = None) -> str:
        user, password = auth or (self.username, self.password)
        host = self.url.split("://", 1)[1]
        return f"http://{user}:{password}@{host}/{owner or self.username}/{repo}.git"


class Work:
    """A git working copy on the host that commits and pushes to Gitea."""

    def __init__(self, remote: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="triggers-"))
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", remote)

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Ann Example", "GIT_AUTHOR_EMAIL": "ann@example.com",
            "GIT_COMMITTER_NAME": "Ann Example", "GIT_COMMITTER_EMAIL": "ann@example.com",
        }  # fmt: skip
        done = subprocess.run(
            ["git", *args], cwd=self.dir, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
        return done.stdout.strip()

    def commit(self, files: Mapping[str, str], message: str) -> str:
        for name, text in files.items():
            path = self.dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def push(self, branch: str = "main") -> None:
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")


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
