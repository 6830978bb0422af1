"""The PipelineSpec itself: services and steps plus how to run them on Kubernetes, and the
admission rule that keeps a created spec immutable."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from shipway.models.approval import MAX_GATES, Approval, Approvers
from shipway.models.base import Duration, K8sName, Strict
from shipway.models.build import SecretName
from shipway.models.context import CIContext, Workspace
from shipway.models.source import Source
from shipway.models.spec.fields import MAX_STEPS_PER_LIST, SERVICE_NAME_PATTERN, ServiceName
from shipway.models.spec.services import Service
from shipway.models.spec.steps import Step

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


class PipelineSpec(Strict):
    """Services and steps in Codeship's form, plus how to run them on Kubernetes."""

    model_config = ConfigDict(  # merged with Strict's
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
