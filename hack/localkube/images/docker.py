"""The ``docker`` image of the docker.io mirror: Debian's Docker Engine, for ``add_docker``.

One image serves both sides of a step with ``add_docker``: the operator's daemon sidecar runs
its ``dockerd`` (``docker:20.10-dind``, the operator's default), and a step's service can run
its ``docker`` CLI (``docker:20.10``). Debian bookworm packages the engine as ``docker.io``
20.10 (dockerd, containerd, runc, tini, the CLI) and Compose v1 as ``docker-compose``; it has
no Compose v2 plugin and no buildx, so ``docker compose`` is a CLI plugin that hands over to
``docker-compose`` (what differs from Docker Hub's image: docs/registry.md).

It is built only on demand (``python -m localkube mirror docker``: the e2e tests of
``add_docker`` ask for it), not by ``up``: nothing else uses it, and it adds a chroot install
of about 300 MB of packages to a cold start.
"""

from __future__ import annotations

from pathlib import Path

from localkube.config import Paths
from localkube.images.debian import CLEAN, DEBIAN_ENV, chroot, debian_key, unpack
from localkube.images.oci import ImageConfig
from localkube.images.recipes import Mirrored, Recipe

PACKAGES = ("docker.io", "docker-compose", "iptables", "ca-certificates", "git")
"""The engine and its CLI, Compose v1, the firewall dockerd programs, TLS roots for pulls
and pushes, and git for ``docker build`` of a git context."""

COMPOSE_PLUGIN = """#!/bin/sh
# `docker compose …` → Debian's docker-compose (Compose v1): bookworm has no Compose v2.
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"Debian docker-compose","Version":"1.29",'\\
'"ShortDescription":"Docker Compose (v1, Debian)"}'
  exit 0
fi
shift
exec docker-compose "$@"
"""
PLUGIN_PATH = "usr/libexec/docker/cli-plugins/docker-compose"


def _docker_rootfs(root: Path, paths: Paths) -> None:
    unpack(paths, root)
    plugin = root / PLUGIN_PATH
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(COMPOSE_PLUGIN)
    plugin.chmod(0o755)
    chroot(
        root,
        "apt-get update -qq\n"
        f"apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)}\n"
        "dockerd --version && docker --version && docker-compose version --short\n"
        "docker compose version --short\n" + CLEAN,
    )


RECIPES: dict[str, Recipe] = {
    "docker": Recipe(
        "docker.io/library/docker:20.10",
        _docker_rootfs,
        ImageConfig(cmd=["sh"], env=DEBIAN_ENV),
        lambda p: [debian_key(), " ".join(PACKAGES), COMPOSE_PLUGIN],
    ),
}

ON_DEMAND: tuple[Mirrored, ...] = (
    # stable-dind: what Codeship's add_docker example (14) runs
    Mirrored("library/docker", ("20.10", "20.10-dind", "dind", "stable-dind", "latest"), "docker"),
)
"""Mirrored only when asked for by name (``mirror docker``), never by ``up``."""
