"""A Codeship service as a container: what a step's pod and a push's generator share (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from shipway.compiler.services import ResolvedService
from shipway.compiler.volumes import Mount
from shipway.engine.naming import container_name
from shipway.engine.objects import Manifest
from shipway.models import Healthcheck
from shipway.models.durations import parse_duration

WORKSPACE_VOLUME = "workspace"
DEFAULT_CHECK_INTERVAL = 2.0
DEFAULT_CHECK_RETRIES = 30


def probe(check: Healthcheck) -> Manifest | None:
    """A compose healthcheck as a startupProbe (None when disabled)."""
    if check.disable:
        return None
    test = check.test
    if isinstance(test, str):
        argv = ["/bin/sh", "-c", test]
    elif test and test[0] == "NONE":
        return None
    elif test and test[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(test[1:])]
    elif test and test[0] == "CMD":
        argv = list(test[1:])
    else:
        argv = list(test)
    interval = parse_duration(check.interval) if check.interval else DEFAULT_CHECK_INTERVAL
    timeout = parse_duration(check.timeout) if check.timeout else 5.0
    grace = parse_duration(check.start_period) if check.start_period else 0.0
    retries = check.retries or DEFAULT_CHECK_RETRIES
    period = max(1, math.ceil(interval))
    return {
        "exec": {"command": argv},
        "periodSeconds": period,
        "timeoutSeconds": max(1, math.ceil(timeout)),
        "failureThreshold": retries + math.ceil(grace / period),
    }


def mounts(mounts: tuple[Mount, ...]) -> list[Manifest]:
    result: list[Manifest] = []
    for mount in mounts:
        item: Manifest = {"name": WORKSPACE_VOLUME, "mountPath": mount.mount_path}
        if mount.sub_path:
            item["subPath"] = mount.sub_path
        if mount.read_only:
            item["readOnly"] = True
        result.append(item)
    return result


def resources(service: ResolvedService) -> Manifest | None:
    if service.resources is None:
        return None
    dumped = service.resources.model_dump(exclude_none=True)
    return {kind: {k: str(v) for k, v in values.items()} for kind, values in dumped.items()}


def service_container(
    service: ResolvedService,
    args: tuple[str, ...] | None,
    env: list[tuple[str, str]],
    security_context: Mapping[str, Any] | None,
    *,
    image: str | None = None,
) -> Manifest:
    """A service's container: compose entrypoint → command, command → args, env merged."""
    container: Manifest = {"name": container_name(service.name), "image": image or service.image}
    if service.entrypoint is not None:
        container["command"] = list(service.entrypoint)
    if args is not None:
        container["args"] = list(args)
    merged = dict(env)
    merged.update(dict(service.environment))
    container["env"] = [{"name": k, "value": v} for k, v in merged.items()]
    if service.env_from:
        container["envFrom"] = [
            source.model_dump(exclude_none=True, by_alias=True) for source in service.env_from
        ]
    if service.working_dir:
        container["workingDir"] = service.working_dir
    if service.mounts:
        container["volumeMounts"] = mounts(service.mounts)
    limits = resources(service)
    if limits:
        container["resources"] = limits
    if security_context:
        container["securityContext"] = dict(security_context)
    return container
