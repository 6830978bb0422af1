"""A Codeship service as the spec holds it (codeship-services.yml's keys, verbatim): its image or
build, command, environment, volumes, links, healthcheck and Kubernetes resources."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from shipway.models.base import QUANTITY_PATTERN, Duration, K8sName, ShortText, Strict
from shipway.models.build import Build, RelativePath
from shipway.models.spec.fields import ServiceName, StringOrList, union


class Healthcheck(Strict):
    """A docker-compose healthcheck; on a linked service it gates the step's start."""

    test: StringOrList = Field(
        json_schema_extra=union(
            'Command run in the service\'s container: ["CMD", "redis-cli", "ping"], '
            '["CMD-SHELL", "pg_isready"] or a string run through /bin/sh -c.',
        ),
    )
    interval: Duration | None = Field(None, description="Time between checks (default 2s).")
    timeout: Duration | None = Field(None, description="Time one check may take (default 5s).")
    retries: int | None = Field(
        None, ge=1, le=1000, description="Failed checks after start_period before giving up."
    )
    start_period: Duration | None = Field(
        None, description="Grace time before failures count (default 0s)."
    )
    disable: bool = Field(False, description="Turn the healthcheck off.")


class ResourceRequirements(Strict):
    """Kubernetes resource requests and limits for the service's container."""

    requests: (
        dict[str, int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]] | None
    ) = Field(None, description="Minimum resources, e.g. {cpu: 500m, memory: 256Mi}.")
    limits: dict[str, int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]] | None = (
        Field(None, description="Maximum resources, e.g. {memory: 1Gi}.")
    )


class LocalObjectRef(Strict):
    """A Secret or ConfigMap in the Pipeline's own namespace."""

    name: K8sName = Field(description="Name of the object in the Pipeline's namespace.")
    optional: bool | None = Field(None, description="Do not fail the step when it is missing.")


class EnvFromSource(Strict):
    """Environment variables taken from a Secret or a ConfigMap (never read by the operator)."""

    prefix: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        None, description="Prefix added to every variable name."
    )
    secretRef: LocalObjectRef | None = Field(None, description="A Secret's keys become variables.")  # noqa: N815
    configMapRef: LocalObjectRef | None = Field(  # noqa: N815
        None, description="A ConfigMap's keys become variables."
    )


class Service(Strict):
    """A Codeship service: a container definition, started fresh for every step that uses it.

    It needs ``image`` or ``build``: checked by the operator, since CEL cannot see ``build``
    (a string or a map, so untyped in the CRD).
    """

    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None,
        description="Image to run, e.g. busybox:1.36 (or set build: the service then runs the "
        "image built for this pipeline).",
    )
    build: Build | RelativePath | None = Field(
        None,
        json_schema_extra=union(
            "Build the service's image from the checkout with BuildKit: a context folder "
            "(build: ./dir) or {image, context, dockerfile, args, argsFrom, target}.",
        ),
    )
    cached: bool | None = Field(
        None,
        description="Reuse the layers of this project's earlier builds (BuildKit's cache, "
        "kept in the cluster's registry per project and branch).",
    )
    default_cache_branch: ShortText | None = Field(
        None, description="Branch whose cache a cached build starts from when its own has none."
    )
    command: StringOrList | None = Field(
        None,
        json_schema_extra=union(
            "Default command (docker-compose `command`); a string is split like a shell would, "
            "without running a shell.",
        ),
    )
    entrypoint: StringOrList | None = Field(
        None,
        json_schema_extra=union(
            "Overrides the image's entrypoint (docker-compose `entrypoint`).",
        ),
    )
    environment: dict[str, Any] | list[str] | None = Field(
        None,
        json_schema_extra=union(
            "Environment variables: a map {KEY: value} or a list of KEY=VALUE strings.",
        ),
    )
    working_dir: Annotated[str, StringConstraints(max_length=4096)] | None = Field(
        None, description="Working directory of the command."
    )
    volumes: list[Annotated[str, StringConstraints(min_length=1, max_length=4096)]] = Field(
        default_factory=list,
        max_length=100,
        description="host:container[:ro] mounts; the host path is relative to the workspace and "
        "becomes a subPath of the pipeline's PersistentVolumeClaim. A bare /path is an anonymous "
        "volume of this service that persists across steps.",
    )
    volumes_from: list[Annotated[str, StringConstraints(min_length=1, max_length=70)]] = Field(
        default_factory=list,
        max_length=50,
        description="Services whose volumes this service mounts too (name or name:ro).",
    )
    links: list[Annotated[str, StringConstraints(min_length=1, max_length=140)]] = Field(
        default_factory=list,
        max_length=50,
        description="Services started with every step of this one (name or name:alias), "
        "reachable by name; they run as native sidecars in the step's pod.",
    )
    depends_on: list[ServiceName] = Field(
        default_factory=list,
        max_length=50,
        description="Like links: services started with every step of this one.",
    )
    healthcheck: Healthcheck | None = Field(
        None, description="On a linked service, the step waits until it passes."
    )
    resources: ResourceRequirements | None = Field(
        None, description="Kubernetes resource requests and limits."
    )
    add_docker: bool | None = Field(
        None,
        description="A Docker daemon beside the service's container (DOCKER_HOST, "
        "/var/run/docker.sock), as Codeship's add_docker; the operator's administrator "
        "turns the feature on (chart value docker.enabled).",
    )
    envFrom: list[EnvFromSource] = Field(  # noqa: N815
        default_factory=list,
        max_length=20,
        description="Secrets and ConfigMaps (in the Pipeline's namespace) whose keys become "
        "environment variables.",
    )
