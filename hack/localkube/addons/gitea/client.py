"""Gitea's API and git pushes from the host: the triggers e2e tests and benchmark (issue 26).

``Gitea`` talks to the add-on ``localkube.addons.gitea.server`` deploys (basic auth as its admin, or any
user); ``Work`` is a working copy on the host that commits and pushes to it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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
