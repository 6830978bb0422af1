"""A real git server in the cluster for the source tests: hack/localkube/gitimages.py's image.

One pod and Service per test session, in its own namespace: ``git daemon`` (git://, public
repositories), busybox httpd + ``git http-backend`` (http://, public and, behind basic auth,
private) and sshd (ssh, user ``git``, a key generated for the session). Repositories are
made on the host with git and streamed into the pod with ``kubectl exec ... tar -x``. Until
the cluster has DNS, URLs use the Service's ClusterIP.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .kube import Cluster

NAME = "git"
HTTP_USER = "ci-bot"
HTTP_PASSWORD = f"pw-{secrets.token_hex(8)}"
IMAGE = "localkube.shipway.dev/git-server:2.39"


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
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(repo.bare, arcname=f"{repo.name}.git")
        area = "private" if private else "public"
        subprocess.run(
            [
                self.cluster.kubectl_binary,
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "exec",
                "-i",
                "-n",
                self.namespace,
                NAME,
                "--",
                "tar",
                "-x",
                "-C",
                f"/srv/git/{area}",
            ],
            input=buffer.getvalue(),
            check=True,
            capture_output=True,
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


def start(cluster: Cluster, namespace: str, key_dir: Path) -> GitServer:
    """Deploy the server into ``namespace`` (created here) and wait until it serves."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_dir / "id")],
        check=True,
        capture_output=True,
    )
    cluster.kubectl("create", "namespace", namespace)
    public_key = (key_dir / "id.pub").read_text()
    cluster.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "git-keys"},
            "data": {"authorized_keys": public_key},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": NAME, "labels": {"app": NAME}},
            "spec": {
                "containers": [
                    {
                        "name": "git",
                        "image": IMAGE,
                        "env": [
                            {"name": "GIT_HTTP_USER", "value": HTTP_USER},
                            {"name": "GIT_HTTP_PASSWORD", "value": HTTP_PASSWORD},
                        ],
                        "volumeMounts": [{"name": "keys", "mountPath": "/etc/git-server"}],
                        "readinessProbe": {
                            "tcpSocket": {"port": 22},
                            "periodSeconds": 1,
                        },
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
    )
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", f"pod/{NAME}", "--timeout=120s"
    )
    ip = cluster.json("get", "service", NAME, "-n", namespace)["spec"]["clusterIP"]
    deadline = time.monotonic() + 30
    host_key = ""
    while not host_key and time.monotonic() < deadline:
        done = cluster.run(
            "exec", "-n", namespace, NAME, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub",
            check=False,
        )  # fmt: skip
        host_key = " ".join(done.stdout.split()[:2])
        time.sleep(0.2)
    if not host_key:
        raise AssertionError("the git server has no ssh host key")
    return GitServer(cluster, namespace, ip, key_dir, host_key)


def stop(cluster: Cluster, namespace: str) -> None:
    cluster.run("delete", "namespace", namespace, "--wait=false", check=False)


def describe(server: GitServer) -> str:
    return json.dumps({"ip": server.ip, "namespace": server.namespace})
