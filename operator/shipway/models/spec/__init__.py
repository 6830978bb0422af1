"""The Pipeline spec: the one schema source for the CRD, the operator and the CLI.

``services`` and ``steps`` take Codeship's own keys verbatim (snake_case, as in
codeship-services.yml and codeship-steps.yml) so users can paste their files in. Everything
Kubernetes-specific follows Kubernetes conventions (camelCase). Rules that the API server can
check cheaply are attached as CEL rules (``x-kubernetes-validations``) and so reject bad input at
``kubectl apply``; the rest is checked by :mod:`shipway.compiler.pipeline` with the same messages.

By job: ``fields`` (shared field types and limits), ``services``, ``steps`` and ``pipeline``
(the spec itself and its admission rule); this package re-exports them all.
"""

from shipway.models.spec.fields import (
    ENV_NAME_PATTERN,
    MAX_STEP_DEPTH,
    MAX_STEPS_PER_LIST,
    SERVICE_NAME_PATTERN,
    ServiceName,
    StringOrList,
)
from shipway.models.spec.pipeline import (
    ADMISSION_RULES,
    IMMUTABLE_SPEC_FIELDS,
    PipelineSpec,
    immutable_rule,
)
from shipway.models.spec.services import (
    EnvFromSource,
    Healthcheck,
    LocalObjectRef,
    ResourceRequirements,
    Service,
)
from shipway.models.spec.steps import Step

__all__ = [
    "ADMISSION_RULES",
    "ENV_NAME_PATTERN",
    "IMMUTABLE_SPEC_FIELDS",
    "MAX_STEPS_PER_LIST",
    "MAX_STEP_DEPTH",
    "SERVICE_NAME_PATTERN",
    "EnvFromSource",
    "Healthcheck",
    "LocalObjectRef",
    "PipelineSpec",
    "ResourceRequirements",
    "Service",
    "ServiceName",
    "Step",
    "StringOrList",
    "immutable_rule",
]
