"""Pydantic models of the Pipeline resource: the one schema source."""

from shipway.models.build import Build, BuildSecretSource
from shipway.models.spec import (
    CIContext,
    EnvFromSource,
    Healthcheck,
    LocalObjectRef,
    PipelineSpec,
    ResourceRequirements,
    Service,
    Step,
    Workspace,
)
from shipway.models.status import (
    BuildStatus,
    Condition,
    PipelinePhase,
    PipelineStatus,
    StepAttempt,
    StepPhase,
    StepStatus,
)

__all__ = [
    "Build",
    "BuildSecretSource",
    "BuildStatus",
    "CIContext",
    "Condition",
    "EnvFromSource",
    "Healthcheck",
    "LocalObjectRef",
    "PipelinePhase",
    "PipelineSpec",
    "PipelineStatus",
    "ResourceRequirements",
    "Service",
    "Step",
    "StepAttempt",
    "StepPhase",
    "StepStatus",
    "Workspace",
]
