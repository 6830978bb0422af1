"""Services resolved into what a pod needs: argv, environment, mounts and linked sidecars."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipway.compiler.builds import ResolvedBuild, resolve_build
from shipway.compiler.commands import split_command
from shipway.compiler.errors import FieldError
from shipway.compiler.volumes import Mount, resolve_mounts
from shipway.models import EnvFromSource, Healthcheck, ResourceRequirements, Service

_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


@dataclass(frozen=True)
class Link:
    """A service started next to a step's service, reachable by name and aliases."""

    service: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedService:
    name: str
    image: str
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    environment: tuple[tuple[str, str], ...]
    working_dir: str | None
    mounts: tuple[Mount, ...]
    links: tuple[Link, ...]
    """Every service to start with this one, dependencies first (transitive)."""
    healthcheck: Healthcheck | None
    resources: ResourceRequirements | None
    env_from: tuple[EnvFromSource, ...] = field(default_factory=tuple)
    build: ResolvedBuild | None = None
    """Set when the service runs an image built for the pipeline (``image`` is then its name)."""
    docker: bool = False
    """``add_docker``: its container gets a Docker daemon (:mod:`shipway.engine.docker`)."""


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def parse_environment(
    service: str, value: Mapping[str, object] | list[str] | None
) -> tuple[tuple[tuple[str, str], ...], list[FieldError]]:
    """A compose environment map or KEY=VALUE list as ordered pairs."""
    where = f"spec.services.{service}.environment"
    pairs: list[tuple[str, str]] = []
    errors: list[FieldError] = []
    if value is None:
        return (), errors
    if isinstance(value, Mapping):
        for key, raw in value.items():
            if isinstance(raw, dict | list):
                errors.append(FieldError(f"{where}.{key}", "must be a string, number or boolean"))
            else:
                pairs.append((key, _scalar(raw)))
    else:
        for index, entry in enumerate(value):
            key, sep, raw_value = entry.partition("=")
            if not sep:
                errors.append(FieldError(f"{where}[{index}]", f"{entry!r}: expected KEY=VALUE"))
                continue
            pairs.append((key, raw_value))
    for key, _ in pairs:
        if not _ENV_NAME.fullmatch(key):
            errors.append(FieldError(where, f"{key!r} is not a valid environment variable name"))
    return tuple(pairs), errors


def _link_refs(name: str, service: Service) -> tuple[list[tuple[str, Link]], list[FieldError]]:
    refs: list[tuple[str, Link]] = []
    errors: list[FieldError] = []
    for index, entry in enumerate(service.links):
        target, _, alias = entry.partition(":")
        where = f"spec.services.{name}.links[{index}]"
        if not target or (alias and not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", alias)):
            errors.append(FieldError(where, f"{entry!r}: expected service or service:alias"))
            continue
        refs.append((where, Link(target, (alias,) if alias else ())))
    for index, target in enumerate(service.depends_on):
        refs.append((f"spec.services.{name}.depends_on[{index}]", Link(target)))
    return refs, errors


def resolve_services(
    services: Mapping[str, Service],
) -> tuple[dict[str, ResolvedService], list[FieldError]]:
    """Resolve every service; collect every error with the field it comes from."""
    mounts, errors = resolve_mounts(services)
    direct: dict[str, list[Link]] = {}
    for name, service in services.items():
        refs, link_errors = _link_refs(name, service)
        errors.extend(link_errors)
        direct[name] = []
        for where, link in refs:
            if link.service not in services:
                errors.append(FieldError(where, f"unknown service {link.service!r}"))
            elif link.service == name:
                errors.append(FieldError(where, f"{name!r} cannot link to itself"))
            else:
                direct[name].append(link)

    closure: dict[str, tuple[Link, ...]] = {}
    reported: set[frozenset[str]] = set()

    def links_of(name: str, trail: tuple[str, ...]) -> tuple[Link, ...]:
        if name in closure:
            return closure[name]
        ordered: dict[str, Link] = {}
        for link in direct[name]:
            if link.service in trail:
                cycle = (*trail[trail.index(link.service) :], link.service)
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    errors.append(
                        FieldError(
                            f"spec.services.{cycle[-2]}.links",
                            "links/depends_on cycle: " + " -> ".join(cycle),
                        )
                    )
                continue
            for dep in links_of(link.service, (*trail, link.service)):
                ordered.setdefault(dep.service, dep)
            known = ordered.get(link.service)
            aliases = (known.aliases if known else ()) + link.aliases
            ordered[link.service] = Link(link.service, tuple(dict.fromkeys(aliases)))
        closure[name] = tuple(ordered.values())
        return closure[name]

    resolved: dict[str, ResolvedService] = {}
    for name, service in services.items():
        where = f"spec.services.{name}"
        build, build_errors = resolve_build(name, service)
        errors.extend(build_errors)
        if service.image is None and service.build is None:
            errors.append(FieldError(f"{where}.image", "a service needs image or build"))
            continue
        argv: dict[str, tuple[str, ...] | None] = {}
        for key in ("command", "entrypoint"):
            try:
                argv[key] = split_command(getattr(service, key))
            except ValueError as exc:
                errors.append(FieldError(f"{where}.{key}", str(exc)))
                argv[key] = None
        env, env_errors = parse_environment(name, service.environment)
        errors.extend(env_errors)
        for index, source in enumerate(service.envFrom):
            if (source.secretRef is None) == (source.configMapRef is None):
                errors.append(
                    FieldError(
                        f"{where}.envFrom[{index}]", "set exactly one of secretRef or configMapRef"
                    )
                )
        if service.working_dir is not None and not service.working_dir.startswith("/"):
            errors.append(FieldError(f"{where}.working_dir", "must be an absolute path"))
        resolved[name] = ResolvedService(
            name=name,
            image=(build.image_name if build else service.image) or "",
            entrypoint=argv["entrypoint"],
            command=argv["command"],
            environment=env,
            working_dir=service.working_dir,
            mounts=tuple(mounts.get(name, ())),
            links=links_of(name, (name,)),
            healthcheck=service.healthcheck,
            resources=service.resources,
            env_from=tuple(service.envFrom),
            build=build,
            docker=bool(service.add_docker),
        )
    return resolved, errors
