"""A real git server in the cluster for the source tests: hack/localkube/images/git.py's image.

One pod and Service per test session, in its own namespace: ``git daemon`` (git://, public
repositories), busybox httpd + ``git http-backend`` (http://, public and, behind basic auth,
private) and sshd (ssh, user ``git``, a key generated for the session). Repositories are
made on the host with git and streamed into the pod with ``kubectl exec ... tar -x``. Until
the cluster has DNS, URLs use the Service's ClusterIP.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localkube.addons import gitserver as server

from .kube import Cluster

SERVICES = """\
demo:
  image: busybox:1.36
  working_dir: /src
  volumes:
    - ./:/src
volumes_test:
  image: busybox:1.36
  volumes_from:
    - demo
"""
STEPS = """\
- name: write artifact
  service: demo
  command: sh ./artifact.sh
- name: check artifact
  service: volumes_test
  command: sh -c 'cat /src/tmp/artifact.txt && test -s /src/tmp/artifact.txt'
"""
ARTIFACT = """\
#!/bin/sh
mkdir -p tmp
echo "version $(cat VERSION) commit ${CI_COMMIT_ID:-none} branch ${CI_BRANCH:-none}" > tmp/artifact.txt
"""
PROJECT: dict[str, str | bytes | None] = {
    "codeship-services.yml": SERVICES,
    "codeship-steps.yml": STEPS,
    "artifact.sh": ARTIFACT,
}
"""The seed walkthrough as Codeship files whose service mounts ``./:/src``: ``artifact.sh``
writes ``tmp/artifact.txt`` from ``VERSION`` and the CI variables, a later step of another
service (``volumes_from``) reads it."""

NAME = "git"
HTTP_USER = "ci-bot"
HTTP_PASSWORD = f"pw-{secrets.token_hex(8)}"


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ann Dev",
        "GIT_AUTHOR_EMAIL": "ann@example.org",
        "GIT_COMMITTER_NAME": "Carl Committer",
        "GIT_COMMITTER_EMAIL": "carl@example.org",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@dataclass
class Repo:
    """A repository made on the host: its bare copy and the commits of interest."""

    name: str
    bare: Path
    commits: dict[str, str] = field(default_factory=dict)


def make_repo(root: Path, name: str, history: list[dict[str, str | bytes | None]]) -> Repo:
    """Commit each dict of files (None deletes, bytes written as is) on main; tags by
    ``"@tag"``, commit messages by ``"@message"``, a branch switch by ``"@branch"``."""
    work = root / f"{name}-work"
    bare = root / f"{name}.git"
    git(root, "init", "-q", "-b", "main", str(work))
    repo = Repo(name, bare)
    for index, files in enumerate(history):
        meta = {k: v for k, v in files.items() if k.startswith("@")}
        if isinstance(meta.get("@branch"), str):
            git(work, "checkout", "-q", "-B", str(meta["@branch"]))
        for path, content in files.items():
            if path.startswith("@"):
                continue
            target = work / path
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.endswith("@link"):
                target = work / path.removesuffix("@link")
                target.symlink_to(str(content))
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
            if path.endswith(".sh"):
                target.chmod(0o755)
        git(work, "add", "-A")
        git(work, "commit", "-qm", str(meta.get("@message") or f"commit {index + 1}"))
        repo.commits[str(meta.get("@tag") or f"c{index + 1}")] = git(work, "rev-parse", "HEAD")
        if isinstance(meta.get("@tag"), str):
            git(work, "tag", str(meta["@tag"]))
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
    return repo


@dataclass
class GitServer:
    cluster: Cluster
    namespace: str
    ip: str
    key_dir: Path
    host_key: str

    @property
    def private_key(self) -> str:
        return (self.key_dir / "id").read_text()

    @property
    def known_hosts(self) -> str:
        return f"{self.ip} {self.host_key}\n"

    def http(self, repo: str, private: bool = False) -> str:
        return f"http://{self.ip}/cgi-bin/{'private' if private else 'public'}/{repo}.git"

    def daemon(self, repo: str) -> str:
        return f"git://{self.ip}/{repo}.git"

    def ssh(self, repo: str, private: bool = True) -> str:
        return f"git@{self.ip}:/srv/git/{'private' if private else 'public'}/{repo}.git"

    def publish(self, repo: Repo, private: bool = False) -> None:
        """Copy a bare repository into the server (public or private area)."""
        server.publish(
            _kubectl(self.cluster), self.namespace, repo.bare, "private" if private else "public"
        )

    def secret(self, kubectl_namespace: str, name: str, kind: str) -> None:
        """A Secret in the test's namespace: ``basic`` (username/password) or ``ssh``."""
        if kind == "basic":
            data = {"username": HTTP_USER, "password": HTTP_PASSWORD}
        else:
            data = {"ssh-privatekey": self.private_key, "known_hosts": self.known_hosts}
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": data,
        }
        self.cluster.apply(kubectl_namespace, body)


def _kubectl(cluster: Cluster) -> list[str]:
    return [cluster.kubectl_binary, "--kubeconfig", str(cluster.kubeconfig)]


def start(cluster: Cluster, namespace: str, key_dir: Path) -> GitServer:
    """Deploy the server into ``namespace`` (created here) and wait until it serves."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_dir / "id")],
        check=True,
        capture_output=True,
    )
    cluster.kubectl("create", "namespace", namespace)
    public_key = (key_dir / "id.pub").read_text()
    ip, host_key = server.deploy(
        _kubectl(cluster), namespace, HTTP_USER, HTTP_PASSWORD, authorized_keys=public_key
    )
    return GitServer(cluster, namespace, ip, key_dir, host_key)


def stop(cluster: Cluster, namespace: str) -> None:
    cluster.run("delete", "namespace", namespace, "--wait=false", check=False)


def serve_own_crd(kubectl: Any, root: Path) -> None:
    """Apply this tree's CRD and wait until the API server serves it: on a shared cluster
    another session may have applied a different one (without spec.source, or defaulting
    fields this operator refuses). ``kubectl`` is a tests.e2e.pipelines.Kubectl."""
    kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(root / "crds"))
    probe = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "schema-probe"},
        "spec": {
            "source": {"upload": {}},
            "services": {"a": {"image": "busybox:1.36"}},
            "steps": [{"service": "a"}],
        },
    }
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = kubectl.run(
            "create", "--dry-run=server", "-o", "json", "-f", "-",
            stdin=json.dumps(probe), check=False,
        )  # fmt: skip
        try:
            spec = json.loads(done.stdout)["spec"]
        except (ValueError, KeyError):
            spec = {}
        if "source" in spec and set(spec) <= {
            "source",
            "services",
            "steps",
            "workspace",
            "ci",
            "cancel",
        }:
            return
        time.sleep(0.2)


def lost_source(body: dict[str, Any]) -> bool:
    """The API server pruned spec.source or status.source, or defaulted a field this operator
    does not know: another test session on the shared cluster applied a different CRD
    meanwhile (not a failure of the code under test)."""
    status = body.get("status", {})
    foreign = "Extra inputs are not permitted" in str(status.get("message", ""))
    return foreign or "source" not in body.get("spec", {}) or "source" not in status
