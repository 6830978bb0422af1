"""Gitea in the local cluster: the forge of the triggers e2e tests and demo (issue 26).

Built only when asked (``python -m localkube.addons.gitea.server up``, the triggers e2e fixture): the
binary from the module proxy through the wrapper module ``gomod/gitea`` (``build.GITEA``,
cached by version under the build cache), the image assembled like localkube's other images
from Debian's packages (the git image's files, Gitea's binary and its ``options`` and
``templates`` from the module), deployed into its own namespace :data:`NAMESPACE` with SQLite
on an emptyDir. The entrypoint creates the admin user (from the Secret :data:`ADMIN_SECRET`)
before serving, so the API works as soon as the pod is ready.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from localkube import config
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images import git as gitimages
from localkube.images.oci import ImageConfig, image_digests, import_archive
from localkube.images.recipes import Recipe, ensure_archive
from localkube.toolchain import build

NAMESPACE = "shipway-gitea"
NAME = "gitea"
PORT = 3000
ADMIN_SECRET = "gitea-admin"
ADMIN_USER = "shipway"
IMAGE = f"localkube.shipway.dev/gitea:{config.GITEA_VERSION.lstrip('v')}"
SERVICE_DNS = f"{NAME}.{NAMESPACE}.svc.{config.CLUSTER_DOMAIN}"

APP_INI = """APP_NAME = Shipway test forge
RUN_USER = git
RUN_MODE = prod
WORK_PATH = /data

[server]
HTTP_PORT = 3000
ROOT_URL = http://{host}:3000/
DISABLE_SSH = true
OFFLINE_MODE = true
STATIC_ROOT_PATH = /usr/local/share/gitea
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = /data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = /data/repos
DEFAULT_BRANCH = main
; the image has busybox's sh, no bash (git hooks are written with this interpreter)
SCRIPT_TYPE = sh

[security]
INSTALL_LOCK = true
; webhook receivers of the tests are private addresses (the host, a pod)
ALLOWED_HOST_LIST = *
PASSWORD_HASH_ALGO = pbkdf2_hi

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[webhook]
SKIP_TLS_VERIFY = true
DELIVER_TIMEOUT = 10

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[log]
MODE = console
LEVEL = Warn

[cron]
ENABLED = false

[mailer]
ENABLED = false

[session]
PROVIDER = memory
"""

ENTRYPOINT = r"""#!/bin/sh
# Gitea for the tests: app.ini from the image (written into /data, where Gitea adds its
# generated secrets), the database migrated, the admin user created, then the web server.
set -e
mkdir -p /data/home /data/repos /data/custom/conf
export HOME=/data/home GITEA_WORK_DIR=/data GITEA_CUSTOM=/data/custom
sed "s/{host}/${GITEA_HOST:-localhost}/" \
  /etc/gitea/app.ini.template >/data/custom/conf/app.ini
gitea migrate >/dev/null
gitea admin user create --admin --username "$GITEA_ADMIN_USER" \
  --password "$GITEA_ADMIN_PASSWORD" --email "$GITEA_ADMIN_USER@shipway.test" \
  --must-change-password=false >/dev/null 2>&1 || true
exec gitea web
"""


def _module_dir() -> Path:
    """Gitea's module in the module cache (its options/ and templates/ go into the image)."""
    go = build.go_command(Paths.default())
    done = subprocess.run(
        [go, "mod", "download", "-json", f"code.gitea.io/gitea@{config.GITEA_VERSION}"],
        capture_output=True, text=True, check=False, env={**_env()},
    )  # fmt: skip
    if done.returncode != 0:
        raise LocalkubeError(f"go mod download code.gitea.io/gitea: {done.stderr.strip()[-500:]}")
    return Path(json.loads(done.stdout)["Dir"])


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}


def _rootfs(root: Path, paths: Paths) -> None:
    gitimages._git_rootfs(root, paths)
    bin_dir = build.build(build.GITEA, paths)
    usr = root / "usr/local/bin"
    usr.mkdir(parents=True, exist_ok=True)
    shutil.copy2(bin_dir / "gitea", usr / "gitea")
    module = _module_dir()
    for part in ("options", "templates"):
        shutil.copytree(module / part, root / "usr/local/share/gitea" / part)
    etc = root / "etc/gitea"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "app.ini.template").write_text(APP_INI)
    (usr / "gitea-entrypoint").write_text(ENTRYPOINT)
    (usr / "gitea-entrypoint").chmod(0o755)
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write("git:x:1000:1000:git:/data/home:/bin/sh\n")
    with (root / "etc/group").open("a") as group:
        group.write("git:x:1000:\n")
    (root / "data").mkdir(exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)


def _inputs(paths: Paths) -> list[str]:
    key = build.GITEA.key(build.go_version(paths))
    return ["gitea-image-2", key, APP_INI, ENTRYPOINT, *gitimages._git_inputs(paths)]


RECIPE = Recipe(
    IMAGE,
    _rootfs,
    ImageConfig(
        entrypoint=["/usr/local/bin/gitea-entrypoint"],
        env={
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GITEA_APP_INI": "/data/custom/conf/app.ini",
            "GITEA_STATIC_ROOT_PATH": "/usr/local/share/gitea",
        },
        user="1000:1000",
        exposed_ports=[f"{PORT}/tcp"],
    ),
    _inputs,
)


def manifests(password: str, digest: str = "") -> list[dict[str, Any]]:
    """Namespace, admin Secret, Deployment (restarted when the image changes) and Service."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "shipway-tests"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ADMIN_SECRET, "namespace": NAMESPACE},
            "stringData": {"username": ADMIN_USER, "password": password},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"shipway.dev/image": digest}},
                    "spec": {
                        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
                        "enableServiceLinks": False,
                        "containers": [
                            {
                                "name": "gitea",
                                "image": IMAGE,
                                "imagePullPolicy": "Never",
                                "env": [
                                    {"name": "GITEA_HOST", "value": SERVICE_DNS},
                                    {"name": "GITEA_ADMIN_USER", "value": ADMIN_USER},
                                    {
                                        "name": "GITEA_ADMIN_PASSWORD",
                                        "valueFrom": {"secretKeyRef": {"name": ADMIN_SECRET, "key": "password"}},
                                    },
                                ],
                                "ports": [{"name": "http", "containerPort": PORT}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/api/v1/version", "port": PORT},
                                    "periodSeconds": 1,
                                },
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": PORT}]},
        },
    ]  # fmt: skip


def _kubectl(paths: Paths, *args: str, stdin: bytes | None = None) -> str:
    kubectl = build.binary(paths, "kubectl")
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(paths.kubeconfig), *args],
        input=stdin, capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise LocalkubeError(f"kubectl {' '.join(args)}: {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace")


def up(paths: Paths, timeout: float = 180) -> dict[str, str]:
    """Build (once), import and deploy Gitea; wait until its API answers. Its address.

    ``timeout`` bounds the deploy, from the apply to the first answer: a cold build (3 min
    on 2 cores) comes before it and has its own progress lines, never eating into it.
    """
    info = ensure_archive(RECIPE, paths)
    if image_digests(address=paths.containerd_socket).get(info.ref) != info.manifest_digest:
        import_archive(info.archive, address=paths.containerd_socket)
    started = time.monotonic()
    existing = _existing_password(paths)
    password = existing or secrets.token_urlsafe(18)
    body = json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": manifests(password, info.manifest_digest)}
    )
    _kubectl(paths, "apply", "-f", "-", stdin=body.encode())
    _kubectl(paths, "rollout", "status", "-n", NAMESPACE, f"deployment/{NAME}", f"--timeout={int(timeout)}s")  # fmt: skip
    found = status(paths)
    _wait_answering(f"{found['host_url']}/api/v1/version", started + timeout)
    print(
        f"localkube: gitea: ready at {found['url']} ({time.monotonic() - started:.0f}s)", flush=True
    )
    return found


def _wait_answering(url: str, deadline: float) -> None:
    """Until Gitea's API answers at the Service: a rolled-out pod is not yet an endpoint
    kube-proxy routes to (until then the ClusterIP refuses connections)."""
    while True:  # asked at least once, however late
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise LocalkubeError(f"gitea: {url} did not answer in time ({exc})") from None
            time.sleep(1)


def _existing_password(paths: Paths) -> str | None:
    try:
        out = _kubectl(paths, "get", "secret", ADMIN_SECRET, "-n", NAMESPACE, "-o", "json")
    except LocalkubeError:
        return None
    import base64

    data = json.loads(out).get("data") or {}
    return base64.b64decode(data["password"]).decode() if "password" in data else None


def status(paths: Paths) -> dict[str, str]:
    """The in-cluster URL, the ClusterIP URL (what the host uses) and the admin's login."""
    service = json.loads(_kubectl(paths, "get", "service", NAME, "-n", NAMESPACE, "-o", "json"))
    password = _existing_password(paths) or ""
    return {
        "url": f"http://{SERVICE_DNS}:{PORT}",
        "host_url": f"http://{service['spec']['clusterIP']}:{PORT}",
        "username": ADMIN_USER,
        "password": password,
    }


def down(paths: Paths) -> None:
    _kubectl(paths, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localkube.addons.gitea.server", description=__doc__
    )
    parser.add_argument("command", choices=["up", "status", "down", "build"])
    args = parser.parse_args(argv)
    paths = Paths.default()
    try:
        if args.command == "build":
            build.build(build.GITEA, paths)
            ensure_archive(RECIPE, paths)
        elif args.command == "up":
            print(json.dumps(up(paths)))
        elif args.command == "status":
            print(json.dumps(status(paths)))
        else:
            down(paths)
    except LocalkubeError as exc:
        print(f"localkube: gitea: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
