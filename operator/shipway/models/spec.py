"""The Pipeline spec: the one schema source for the CRD, the operator and the CLI.

``services`` and ``steps`` take Codeship's own keys verbatim (snake_case, as in
codeship-services.yml and codeship-steps.yml) so users can paste their files in. Everything
Kubernetes-specific follows Kubernetes conventions (camelCase). Rules that the API server can
check cheaply are attached as CEL rules (``x-kubernetes-validations``) and so reject bad input at
``kubectl apply``; the rest is checked by :mod:`shipway.compiler.pipeline` with the same messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from shipway.models.approval import MAX_GATES, Approval, Approvers
from shipway.models.base import (
    QUANTITY_PATTERN,
    UNION_SCHEMA_NOTE,
    Duration,
    K8sName,
    Strict,
)
from shipway.models.build import Build, RelativePath, SecretName
from shipway.models.context import CIContext, Workspace
from shipway.models.source import Source

SERVICE_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$"
"""Codeship's service names as projects have them: ``webApp``, ``test/php-7.2``, ``my_db``.
Objects get a DNS-safe form (:mod:`shipway.engine.naming`); other services reach a name
that is no host name by its forms that are."""
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"

MAX_STEPS_PER_LIST = 200
MAX_STEP_DEPTH = 4
"""Nesting levels of ``steps``/``on_fail`` the CRD schema spells out; deeper levels are kept
as-is by the API server and checked by the operator (CRD schemas cannot be recursive)."""

ServiceName = Annotated[str, StringConstraints(pattern=SERVICE_NAME_PATTERN, max_length=63)]
ShortText = Annotated[str, StringConstraints(max_length=253)]
LongText = Annotated[str, StringConstraints(max_length=4096)]

StringOrList = str | list[Annotated[str, StringConstraints(max_length=32768)]]
"""Codeship accepts a command as one string (split like a shell would) or as a list."""


def _union(description: str) -> dict[str, Any]:
    """Schema extras for a field that takes several JSON types.

    A structural CRD schema cannot type such a field and CEL cannot see untyped fields, so the
    API server keeps it as-is and the operator checks it, naming the field in its message.
    """
    return {UNION_SCHEMA_NOTE: True, "description": description}


_Strict = Strict


class Healthcheck(_Strict):
    """A docker-compose healthcheck; on a linked service it gates the step's start."""

    test: StringOrList = Field(
        json_schema_extra=_union(
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


class ResourceRequirements(_Strict):
    """Kubernetes resource requests and limits for the service's container."""

    requests: (
        dict[str, int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]] | None
    ) = Field(None, description="Minimum resources, e.g. {cpu: 500m, memory: 256Mi}.")
    limits: dict[str, int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]] | None = (
        Field(None, description="Maximum resources, e.g. {memory: 1Gi}.")
    )


class LocalObjectRef(_Strict):
    """A Secret or ConfigMap in the Pipeline's own namespace."""

    name: K8sName = Field(description="Name of the object in the Pipeline's namespace.")
    optional: bool | None = Field(None, description="Do not fail the step when it is missing.")


class EnvFromSource(_Strict):
    """Environment variables taken from a Secret or a ConfigMap (never read by the operator)."""

    prefix: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        None, description="Prefix added to every variable name."
    )
    secretRef: LocalObjectRef | None = Field(None, description="A Secret's keys become variables.")  # noqa: N815
    configMapRef: LocalObjectRef | None = Field(  # noqa: N815
        None, description="A ConfigMap's keys become variables."
    )


class Service(_Strict):
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
        json_schema_extra=_union(
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
        json_schema_extra=_union(
            "Default command (docker-compose `command`); a string is split like a shell would, "
            "without running a shell.",
        ),
    )
    entrypoint: StringOrList | None = Field(
        None,
        json_schema_extra=_union(
            "Overrides the image's entrypoint (docker-compose `entrypoint`).",
        ),
    )
    environment: dict[str, Any] | list[str] | None = Field(
        None,
        json_schema_extra=_union(
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


class Step(_Strict):
    """A run step (service + command), a push step (type push: the service's built image to
    image_name) or a group of steps (type serial or parallel)."""

    model_config = ConfigDict(  # merged with _Strict's
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.type) && self.type != 'push') == has(self.steps)",
                    "message": "a group needs both type and steps; a run or push step has no steps",
                },
                {
                    "rule": "!has(self.type) || self.type == 'push' || !has(self.retries)",
                    "message": "retries is set on run steps (and push steps), not on groups",
                },
                {
                    "rule": "!has(self.type) || self.type != 'push' || has(self.image_name)",
                    "message": "a push step needs image_name",
                },
            ]
        },
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="Shown in status and logs; generated from the command when missing."
    )
    type: Literal["serial", "parallel", "manual", "push"] | None = Field(
        None,
        description="serial or parallel makes this a group: its steps run one after another "
        "or all together; manual: a serial group that waits for approval (spec.approvals); "
        "push pushes the image built for the step's service.",
    )
    service: ServiceName | None = Field(
        None, description="Service the command runs in; on a group, the default for its steps."
    )
    command: StringOrList | None = Field(
        None,
        json_schema_extra=_union(
            "Command to run; a string is split like a shell would (quotes respected) but not "
            "run through a shell. Omit it to run the service's default command.",
        ),
    )
    steps: list[Step] | None = Field(
        None, min_length=1, max_length=MAX_STEPS_PER_LIST, description="The group's steps."
    )
    tag: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None,
        description="Run only when the build tag (ci.tag, else ci.branch) matches: the whole name, "
        "or a regular expression when it contains ^ or $.",
    )
    exclude: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Skip when the build tag matches (same form as tag); wins over tag."
    )
    on_fail: list[Step] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="Steps run, in this step's service, when this step or group fails.",
    )
    timeout: Duration | None = Field(
        None, description="Stop the step's pod after this long (e.g. 10m); the step fails."
    )
    retries: int | None = Field(
        None, ge=0, le=10, description="Start a new attempt this many times when the step fails."
    )
    image_name: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None,
        description="Push steps: the repository to push to, [registry/][owner/]name (no tag).",
    )
    image_tag: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None,
        description='Push steps: the tag, a Codeship template such as "{{ .Branch }}-'
        '{{ .ShortCommitID }}" (default latest); characters a tag cannot hold are stripped.',
    )
    registry: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None,
        description="Push steps: the registry (host or URL) when image_name does not start "
        "with one; Docker Hub when neither names one.",
    )
    dockercfgSecret: K8sName | None = Field(  # noqa: N815
        None,
        description="A kubernetes.io/dockerconfigjson Secret: a push step's credentials; on a "
        "run step an imagePullSecret of its pod; on a group, the default of its steps.",
    )
    dockercfg_service: ServiceName | None = Field(
        None,
        description="Push steps (or a group, for its push steps): a service run before the "
        "push with a file path as its argument, writing the registry credentials there "
        "(Codeship's generator services).",
    )


IMMUTABLE_SPEC_FIELDS = (
    "services",
    "steps",
    "source",
    "workspace",
    "ci",
    "serviceAccountName",
    "timeout",
    "cacheKey",
    "push",
    "dockercfgSecret",
    "imagePullSecrets",
    "approvers",
    "approvalTimeout",
)
"""Every spec field but ``cancel`` and ``approvals`` (guarded by their own admission rules);
a unit test keeps this list complete."""


def immutable_rule(fields: tuple[str, ...], new: str, old: str) -> str:
    """CEL: each field keeps its presence and its value."""
    return " && ".join(
        f"(has({new}.{f}) == has({old}.{f})) && (!has({new}.{f}) || {new}.{f} == {old}.{f})"
        for f in fields
    )


ADMISSION_RULES = [
    {
        "expression": immutable_rule(IMMUTABLE_SPEC_FIELDS, "object.spec", "oldObject.spec"),
        "message": "spec is immutable once created, except cancel and approvals",
    }
]
"""Rules checked by a ValidatingAdmissionPolicy shipped with the CRD: comparing whole nested
step lists is beyond a CRD rule's static cost budget, not beyond an admission policy's."""


class PipelineSpec(_Strict):
    """Services and steps in Codeship's form, plus how to run them on Kubernetes."""

    model_config = ConfigDict(  # merged with _Strict's
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
                    "message": "a cancelled Pipeline cannot be resumed",
                },
            ]
        },
    )

    services: dict[ServiceName, Service] = Field(
        min_length=1,
        max_length=100,
        description="Services by name, as in codeship-services.yml.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(k, k.matches('" + SERVICE_NAME_PATTERN + "'))",
                    "message": "service names are letters, digits, '-', '_', '.' and '/', "
                    "at most 63 characters, starting and ending with a letter or digit",
                }
            ]
        },
    )
    steps: list[Step] = Field(
        min_length=1,
        max_length=MAX_STEPS_PER_LIST,
        description="Steps as in codeship-steps.yml; the list runs in order (serial).",
    )
    source: Source | None = Field(
        None,
        description="The files the pipeline works on (a git checkout or an upload), placed at "
        "the root of the workspace before the first step; without it the workspace starts empty.",
    )
    workspace: Workspace = Field(
        default_factory=Workspace, description="The shared PersistentVolumeClaim."
    )
    ci: CIContext = Field(default_factory=CIContext, description="What is being built.")
    serviceAccountName: K8sName | None = Field(  # noqa: N815
        None, description="ServiceAccount the step pods run as (the namespace's default if unset)."
    )
    timeout: Duration | None = Field(
        None, description="Fail the pipeline and stop its pods after this long (e.g. 1h)."
    )
    cacheKey: (  # noqa: N815
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")] | None
    ) = Field(
        None,
        description="The project that cached builds share layers with (default: the git "
        "URL of spec.source, else the Pipeline's generateName, else its name).",
    )
    push: bool = Field(
        True,
        description="Run push steps; false skips each with reason PushDisabled (shipway run "
        "sets it unless --push, as jet steps pushes only with --push).",
    )
    dockercfgSecret: K8sName | None = Field(  # noqa: N815
        None,
        description="The kubernetes.io/dockerconfigjson Secret push steps use when neither they "
        "nor their groups name one.",
    )
    imagePullSecrets: list[SecretName] = Field(  # noqa: N815
        default_factory=list,
        max_length=20,
        description="dockerconfigjson Secrets every step pod pulls its services' images with "
        "(private images).",
    )
    approvers: Approvers | None = Field(
        None, description="Manual gates: only these users or groups may decide (and RBAC)."
    )
    approvalTimeout: Duration | None = Field(  # noqa: N815
        None, description="A manual gate undecided this long fails the pipeline (default 168h)."
    )
    approvals: list[Approval] = Field(
        default_factory=list,
        max_length=MAX_GATES,
        description="Decisions on manual gates, added by shipway approve/reject (the admission "
        "policy checks each one's user against the caller).",
    )
    cancel: bool = Field(
        False,
        description="Set to true to stop the pipeline: running pods stop, the rest is skipped.",
    )


Step.model_rebuild()
