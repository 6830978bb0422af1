"""Pydantic models of the Pipeline resource: the one schema source."""

from shipway.models.build import Build, BuildSecretSource
from shipway.models.context import CIContext, Workspace
from shipway.models.source import GitSource, Source, UploadSource
from shipway.models.spec import (
    EnvFromSource,
    Healthcheck,
    LocalObjectRef,
    PipelineSpec,
    ResourceRequirements,
    Service,
    Step,
)
from shipway.models.status import (
    BuildStatus,
    Condition,
    ImageHealthcheck,
    PipelinePhase,
    PipelineStatus,
    PrepStatus,
    SourceStatus,
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
    "GitSource",
    "Healthcheck",
    "ImageHealthcheck",
    "LocalObjectRef",
    "PipelinePhase",
    "PipelineSpec",
    "PipelineStatus",
    "PrepStatus",
    "ResourceRequirements",
    "Service",
    "Source",
    "SourceStatus",
    "Step",
    "StepAttempt",
    "StepPhase",
    "StepStatus",
    "UploadSource",
    "Workspace",
]
