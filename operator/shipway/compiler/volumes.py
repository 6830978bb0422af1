"""Codeship volumes mapped onto one PersistentVolumeClaim per pipeline.

Every host directory becomes a subPath of the claim (``./tmp`` → ``tmp``), so a file written by
one step is there for the next step's pod, and for any service that has ``volumes_from``. Nothing
here can produce a hostPath: host paths are only ever names inside the claim.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from shipway.compiler.dnsnames import dns_label, short_hash
from shipway.compiler.errors import FieldError
from shipway.models import Service

ANONYMOUS_ROOT = ".shipway/anonymous"
HOST_ROOT = ".shipway/host"
"""Where absolute host paths live in the claim: on Codeship ``/tmp:/log`` was a directory of
the build machine, gone with the build; here it is a directory of the pipeline's claim, shared
by its steps and gone with it (the same lifetime). Never a hostPath."""
_PLAIN_SERVICE = re.compile(r"[a-z0-9]([a-z0-9_.-]*[a-z0-9])?")


@dataclass(frozen=True)
class Mount:
    """A path of the workspace claim mounted into a container."""

    sub_path: str
    """Path inside the claim; "" is the claim's root."""
    mount_path: str
    read_only: bool = False


def _field(service: str, key: str, index: int) -> str:
    return f"spec.services.{service}.{key}[{index}]"


def _container_path(path: str) -> str | None:
    if not path.startswith("/"):
        return None
    normal = posixpath.normpath(path)
    return None if normal in ("/", "//") else normal


def parse_volume(service: str, index: int, entry: str) -> Mount | FieldError:
    """Parse ``host:container[:mode]`` or an anonymous ``/container`` entry."""
    where = _field(service, "volumes", index)
    parts = entry.split(":")
    if len(parts) == 1:
        target = _container_path(parts[0])
        if target is None:
            return FieldError(where, f"{entry!r}: an anonymous volume needs an absolute path")
        return Mount(f"{ANONYMOUS_ROOT}/{_service_dir(service)}{target}", target)
    if len(parts) > 3:
        return FieldError(where, f"{entry!r}: expected host:container[:ro]")
    host, container = parts[0], parts[1]
    modes = set(parts[2].split(",")) if len(parts) == 3 else set()
    unknown = modes - {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}
    if unknown or {"ro", "rw"} <= modes:
        return FieldError(where, f"{entry!r}: unknown mode {parts[2]!r} (use ro or rw)")
    if host.startswith(("/", "~")):
        host = host_directory(host)
    if not host:
        return FieldError(where, f"{entry!r}: the host path is empty")
    sub = posixpath.normpath(host)
    if sub == ".." or sub.startswith("../"):
        return FieldError(where, f"{entry!r}: the host path escapes the workspace")
    target = _container_path(container)
    if target is None:
        return FieldError(where, f"{entry!r}: the container path must be absolute and not /")
    return Mount("" if sub == "." else sub, target, "ro" in modes)


def host_directory(host: str) -> str:
    """An absolute (or ``~``) host path as the claim's directory standing in for it:
    ``/tmp`` → ``.shipway/host/tmp``, ``~/.m2`` → ``.shipway/host/~/.m2``, never outside it."""
    inside = posixpath.normpath("/" + host).lstrip("/")
    return HOST_ROOT if inside in ("", ".") else f"{HOST_ROOT}/{inside}"


def _service_dir(service: str) -> str:
    """The service's folder of anonymous volumes: its name, or a DNS-safe form of a name
    with upper case or '/' (no '..' can reach a subPath)."""
    if _PLAIN_SERVICE.fullmatch(service):
        return service
    return f"{dns_label(service, 50)}-{short_hash(service)}"


def _parse_ref(entry: str) -> tuple[str, bool] | None:
    name, _, mode = entry.partition(":")
    if mode not in ("", "ro", "rw"):
        return None
    return name, mode == "ro"


def resolve_mounts(
    services: Mapping[str, Service],
) -> tuple[dict[str, list[Mount]], list[FieldError]]:
    """All mounts of every service: its own volumes, then those of ``volumes_from``, transitively.

    A service's own mount wins over an inherited one at the same container path; ``svc:ro``
    makes everything inherited from ``svc`` read-only. Unknown names and cycles are errors.
    """
    errors: list[FieldError] = []
    own: dict[str, list[Mount]] = {}
    for name, service in services.items():
        own[name] = []
        for index, entry in enumerate(service.volumes):
            parsed = parse_volume(name, index, entry)
            if isinstance(parsed, FieldError):
                errors.append(parsed)
            else:
                own[name].append(parsed)

    refs: dict[str, list[tuple[str, bool]]] = {}
    for name, service in services.items():
        refs[name] = []
        for index, entry in enumerate(service.volumes_from):
            where = _field(name, "volumes_from", index)
            parsed_ref = _parse_ref(entry)
            if parsed_ref is None:
                errors.append(FieldError(where, f"{entry!r}: expected a service name or name:ro"))
            elif parsed_ref[0] not in services:
                errors.append(FieldError(where, f"unknown service {parsed_ref[0]!r}"))
            elif parsed_ref[0] == name:
                errors.append(FieldError(where, f"{name!r} cannot take volumes from itself"))
            else:
                refs[name].append(parsed_ref)

    resolved: dict[str, list[Mount]] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, trail: tuple[str, ...]) -> list[Mount]:
        if name in resolved:
            return resolved[name]
        mounts = list(own[name])
        taken = {m.mount_path for m in mounts}
        for ref, read_only in refs[name]:
            if ref in trail:
                cycle = (*trail[trail.index(ref) :], ref)
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    errors.append(
                        FieldError(
                            f"spec.services.{cycle[-2]}.volumes_from",
                            "volumes_from cycle: " + " -> ".join(cycle),
                        )
                    )
                continue
            for mount in visit(ref, (*trail, ref)):
                if mount.mount_path in taken:
                    continue
                taken.add(mount.mount_path)
                mounts.append(Mount(mount.sub_path, mount.mount_path, mount.read_only or read_only))
        resolved[name] = mounts
        return mounts

    for name in services:
        visit(name, (name,))
    return resolved, errors
