"""``type: push`` steps checked and resolved, and the registry credentials steps inherit.

A push copies the image built for the step's service (never a rebuild) to ``image_name``,
tagged by the ``image_tag`` template. Everything knowable from the spec is checked here, each
problem naming its field: the service must have a ``build``, the name must be a repository
without a tag, the template must use known variables only.

Credentials (``dockercfgSecret``, ``dockercfg_service``) are set on the pipeline, a group or a
step; the nearest one wins. A push step pushes with them; a run step's pod pulls its images
with the Secret (``imagePullSecrets``), as Codeship's ``encrypted_dockercfg_path`` on run
steps lets private images be pulled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shipway.compiler.errors import FieldError
from shipway.compiler.templates import Template, TemplateError, as_tag, parse
from shipway.models import Service, Step

DEFAULT_TAG = "latest"
DOCKER_HUB = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
PUSH_KEYS = ("image_name", "image_tag", "registry", "dockercfg_service")
"""Keys only push steps (and, for dockercfg_service, groups) take."""

_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?"
)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


@dataclass(frozen=True)
class Credentials:
    """The credentials a step inherits: a Secret or a generator service (or neither)."""

    secret: str | None = None
    generator: str | None = None

    def under(self, step: Step) -> Credentials:
        """What ``step`` and its children use: its own setting, else this one."""
        if step.dockercfgSecret is not None:
            return Credentials(secret=step.dockercfgSecret)
        if step.dockercfg_service is not None:
            return Credentials(generator=step.dockercfg_service)
        return self


@dataclass(frozen=True)
class ResolvedPush:
    """What the push pod needs, decided from the spec alone (the tag is rendered later)."""

    service: str
    image_name: str
    """As written in the step, for the ``ImageName`` variable and status."""
    repository: str
    """Where the image goes: image_name, with the registry's host when the name has none."""
    tag: Template
    credentials: Credentials
    registry: str | None = None


def is_domain(component: str) -> bool:
    """Docker's rule: the first component names a registry when it looks like a host."""
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or (component.lower() != component)
    )


def registry_host(registry: str) -> str:
    """``https://index.docker.io/v1/`` → ``index.docker.io``; ``quay.io`` stays."""
    host = registry.split("://", 1)[-1]
    return host.split("/", 1)[0]


def _repository(image_name: str, registry: str | None, where: str) -> tuple[str, list[FieldError]]:
    first, _, rest = image_name.partition("/")
    has_domain = bool(rest) and is_domain(first)
    path = rest if has_domain else image_name
    errors: list[FieldError] = []
    if "@" in image_name or ":" in path:
        errors.append(
            FieldError(
                f"{where}.image_name",
                f"{image_name!r}: a repository without tag or digest; the tag is image_tag",
            )
        )
    elif (has_domain and not _DOMAIN.fullmatch(first)) or not all(
        _PATH_COMPONENT.fullmatch(part) for part in path.split("/")
    ):
        errors.append(
            FieldError(
                f"{where}.image_name",
                f"{image_name!r} is not a repository name ([registry/][owner/]name, lower-case "
                "letters, digits and . _ - separators)",
            )
        )
    repository = image_name
    if registry is not None:
        host = registry_host(registry)
        if not _DOMAIN.fullmatch(host):
            errors.append(FieldError(f"{where}.registry", f"{registry!r} is not a registry host"))
        elif not has_domain and host not in DOCKER_HUB:
            repository = f"{host}/{image_name}"
    if not errors and is_loopback(repository.partition("/")[0]):
        field = "image_name" if has_domain else "registry"
        errors.append(
            FieldError(
                f"{where}.{field}",
                f"{(image_name if has_domain else registry)!r}: a push runs in a pod of its own, "
                "where localhost is the pod itself and no registry listens (Codeship's jet "
                "pushed from your machine): push to a registry the cluster reaches, by its DNS "
                "name or a Service's",
            )
        )
    return repository, errors


def is_loopback(host: str) -> bool:
    """``localhost[:port]``, ``127.x.y.z[:port]``, ``[::1][:port]``: the pod itself."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    return name == "localhost" or name == "::1" or name.startswith("127.")


def resolve_push(
    step: Step,
    where: str,
    service: str | None,
    services: Mapping[str, Service],
    credentials: Credentials,
) -> tuple[ResolvedPush | None, list[FieldError]]:
    """A push step's plan, or every error with its field (``service`` is already checked)."""
    errors: list[FieldError] = []
    if step.command is not None:
        errors.append(FieldError(f"{where}.command", "a push step has no command"))
    if service is not None and services[service].build is None:
        errors.append(
            FieldError(
                f"{where}.service",
                f"a push step pushes the image built for its service, and {service!r} has no "
                "build: add build to the service",
            )
        )
    repository = ""
    if step.image_name is None:
        errors.append(FieldError(f"{where}.image_name", "a push step needs image_name"))
    else:
        repository, found = _repository(step.image_name, step.registry, where)
        errors += found
    template: Template | None = None
    try:
        template = parse(step.image_tag or DEFAULT_TAG)
    except TemplateError as exc:
        errors.append(FieldError(f"{where}.image_tag", str(exc)))
    if template is not None and not template.variables and not as_tag(template.source):
        errors.append(
            FieldError(f"{where}.image_tag", f"{step.image_tag!r} holds no character of a tag")
        )
    if errors or service is None or template is None or step.image_name is None:
        return None, errors
    return (
        ResolvedPush(
            service=service,
            image_name=step.image_name,
            repository=repository,
            tag=template,
            credentials=credentials,
            registry=step.registry,
        ),
        [],
    )


def non_push_errors(step: Step, where: str) -> list[FieldError]:
    """Push keys on a step that is not a push step."""
    errors = [
        FieldError(f"{where}.{key}", f"{key} is set on push steps (type: push)")
        for key in ("image_name", "image_tag", "registry")
        if getattr(step, key) is not None
    ]
    if step.type is None and step.dockercfg_service is not None:
        errors.append(
            FieldError(
                f"{where}.dockercfg_service",
                "a run step's pod pulls its images with a Secret (dockercfgSecret), not with "
                "credentials a service writes at run time",
            )
        )
    return errors


def credential_errors(step: Step, where: str, services: Mapping[str, Service]) -> list[FieldError]:
    """Where credentials are declared: one kind at a time, a generator that exists."""
    if step.dockercfgSecret is not None and step.dockercfg_service is not None:
        return [
            FieldError(f"{where}.dockercfg_service", "set dockercfgSecret or dockercfg_service")
        ]
    if step.dockercfg_service is not None and step.dockercfg_service not in services:
        return [
            FieldError(f"{where}.dockercfg_service", f"unknown service {step.dockercfg_service!r}")
        ]
    return []
