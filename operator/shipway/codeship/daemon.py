"""Docker inside a step: the three ways Codeship offers one.

Codeship gives a container a Docker daemon with ``add_docker: true``; compose files also mount
the host's ``docker.sock`` or run ``docker:dind`` (a daemon in a privileged container). The
first two become Shipway's ``add_docker``: a daemon beside the step, privileged, which the
cluster's administrator turns on (``docker.enabled``; :mod:`shipway.engine.pods.docker`). A
``docker:dind`` service without ``add_docker`` would need a privileged service container of
its own, which Shipway does not make: it stays refused, naming ``add_docker`` as the way.
"""

from __future__ import annotations

import re
from typing import Any

NO_DAEMON = "a docker:dind service needs a privileged container"
BUILD_INSTEAD = "set add_docker: true on the service that runs docker instead"

ADD_DOCKER = (
    "a Docker daemon beside the service's container (DOCKER_HOST, /var/run/docker.sock), "
    "privileged: the cluster's administrator turns it on (Helm chart value docker.enabled), "
    "else the operator refuses the Pipeline saying so; a volume of the host's docker.sock "
    "asks for the same"
)
_DIND = re.compile(r"(^|[-_./:])dind($|[-_./:])")
_SOCKET = re.compile(r"(^|/)docker\.sock$")


def is_dind_image(image: str) -> bool:
    """``docker:dind``, ``docker:stable-dind``, ``docker:1.9-dind``, ``someone/dind``, …"""
    name = image.rsplit("/", 1)[-1]
    return bool(_DIND.search(name.lower()))


def is_docker_socket(host_path: str) -> bool:
    """``/var/run/docker.sock``, ``/run/docker.sock`` and the like."""
    return bool(_SOCKET.search(host_path.rstrip("/")))


def wants_daemon(body: dict[str, Any]) -> bool:
    return "add_docker" in body and body["add_docker"] not in (False, None)


def mounts_socket(body: dict[str, Any]) -> bool:
    """A volume of the host's Docker socket: the service wants a daemon, as add_docker."""
    volumes = body.get("volumes")
    if not isinstance(volumes, list):
        return False
    hosts = [
        v.split(":")[0] if isinstance(v, str) else v.get("source")
        for v in volumes
        if (isinstance(v, str) and ":" in v) or isinstance(v, dict)
    ]
    return any(isinstance(h, str) and is_docker_socket(h) for h in hosts)


def dind_message(image: str) -> str:
    return (
        f"{image} runs a Docker daemon of its own, which needs a privileged container: "
        f"{NO_DAEMON}, which Shipway does not make; {BUILD_INSTEAD}"
    )


def socket_message(host_path: str) -> str:
    return (
        f"{host_path} is the host's Docker socket: volumes never mount host paths; the "
        f"service gets add_docker instead (a daemon of its own at /var/run/docker.sock)"
    )
