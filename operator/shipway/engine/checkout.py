"""The checkout and upload pods: what they run, and reading what they report (pure).

Both run the git image (git, ssh, a busybox shell) with the workspace claim at
``/workspace``, no API token, and report through the container's termination message
(:mod:`shipway.engine.scripts`). A git source's Secret is mounted as files, read-only, in the
checkout pod only; no credential is ever passed in the environment, the command line, the
status or an Event.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shipway.compiler.source import CompiledSource, GitCheckout
from shipway.engine.scripts import CHECKOUT, RECEIVE

DEFAULT_GIT_IMAGE = "localkube.shipway.dev/git:2.39"
"""The image with git (Debian's), ssh and busybox; ``SHIPWAY_GIT_IMAGE`` overrides it."""
DEFAULT_MAX_SIZE = 2 * 2**30
"""Largest file a checkout may write (its fetched pack, mostly); ``SHIPWAY_SOURCE_MAX_SIZE``."""
CHECKOUT_TIMEOUT = 3600
"""A checkout still running after this long fails (a server that accepts and never answers)."""
WORKSPACE_PATH = "/workspace"
SECRET_PATH = "/etc/shipway/git-secret"
CONTAINER = "checkout"
RECEIVER = "upload"
_TEXT_KEYS = {"branch", "tag", "message", "committerName", "committerEmail"}
_CREDENTIALS_IN_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


@dataclass(frozen=True)
class SourceSettings:
    """Cluster-wide choices of the operator for checkouts and uploads."""

    image: str = DEFAULT_GIT_IMAGE
    max_size: int = DEFAULT_MAX_SIZE


def task_title(source: CompiledSource) -> str:
    """The word used in pod names, logs and ``shipway logs --step``: checkout or upload."""
    return CONTAINER if isinstance(source, GitCheckout) else RECEIVER


def redact(text: str) -> str:
    """Drop anything that looks like credentials in a URL (``https://user:token@host``).

    Git does not print them, and the spec cannot hold them; this is the last line of defence
    for text that ends up in the status and Events.
    """
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


def parse_report(text: str | None) -> dict[str, str]:
    """The facts a checkout or receiver reported: ``key=value`` lines, free text in base64."""
    facts: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            continue
        if key in _TEXT_KEYS:
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
            value = value.rstrip("\n")
        facts[key] = redact(value)
    return facts


def container(
    source: CompiledSource,
    settings: SourceSettings,
    security_context: Mapping[str, object] | None,
) -> dict[str, object]:
    """The one container of a checkout or receiver pod."""
    mounts: list[dict[str, object]] = [{"name": "workspace", "mountPath": WORKSPACE_PATH}]
    main: dict[str, object] = {
        "name": task_title(source),
        "image": settings.image,
        "terminationMessagePolicy": "File",
    }
    if isinstance(source, GitCheckout):
        max_size = min(source.max_size or settings.max_size, settings.max_size)
        env = {
            "GIT_URL": source.url,
            "GIT_REVISION": source.revision or "",
            "GIT_DEPTH": str(source.depth),
            "GIT_SUBMODULES": "1" if source.submodules else "0",
            "SHIPWAY_MAX_SIZE": str(max_size),
            "SHIPWAY_WORKSPACE": WORKSPACE_PATH,
            "SHIPWAY_GIT_SECRET": SECRET_PATH,
        }
        main["command"] = ["sh", "-c", CHECKOUT, "checkout"]
        if source.secret_name:
            mounts.append({"name": "git-secret", "mountPath": SECRET_PATH, "readOnly": True})
    else:
        env = {"SHIPWAY_WORKSPACE": WORKSPACE_PATH}
        main["command"] = ["sh", "-c", RECEIVE, "receive"]
        main["stdin"] = True
        main["stdinOnce"] = True
    main["env"] = [{"name": k, "value": v} for k, v in env.items()]
    main["volumeMounts"] = mounts
    if security_context:
        main["securityContext"] = dict(security_context)
    return main


def secret_volume(source: CompiledSource) -> dict[str, object] | None:
    """The git source's Secret as read-only files, when it names one."""
    if not isinstance(source, GitCheckout) or not source.secret_name:
        return None
    return {
        "name": "git-secret",
        "secret": {"secretName": source.secret_name, "defaultMode": 0o440},
    }
