"""Docker inside a step: the three ways Codeship offers one, each refused with the same reason.

Codeship gives a container a Docker daemon with ``add_docker: true``; compose files also run
``docker:dind`` (a daemon in a privileged container) or mount the host's ``docker.sock``. A step
Pod has no daemon: Shipway creates no privileged containers and no hostPath volumes. Silently
dropping any of these would only move the failure to the step's first ``docker`` command, so
the conversion stops here and names the limit (codeship-tool-examples 08 and 14 use them).
"""

from __future__ import annotations

import re
from typing import Any

NO_DAEMON = "no Docker daemon in step pods"
BUILD_INSTEAD = "build images with Kaniko or BuildKit, which need no daemon"

ADD_DOCKER = (
    f"{NO_DAEMON}: Shipway creates no privileged containers, so neither add_docker nor a "
    f"docker:dind service can provide one; {BUILD_INSTEAD}"
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


def dind_message(image: str) -> str:
    return (
        f"{image} runs a Docker daemon, which needs a privileged container: {NO_DAEMON} "
        f"(Shipway creates no privileged containers); {BUILD_INSTEAD}"
    )


def socket_message(host_path: str) -> str:
    return (
        f"{host_path} is the host's Docker socket: {NO_DAEMON}, and volumes never mount host "
        f"paths; {BUILD_INSTEAD}"
    )
