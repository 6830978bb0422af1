"""Patterns and field types every part of the spec shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shipway.models.durations import DURATION_PATTERN

UNION_SCHEMA_NOTE = "x-shipway-union"
"""Marks a field that takes several JSON types: the CRD keeps it untyped, the operator checks it."""
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
QUANTITY_PATTERN = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN, max_length=32)]
K8sName = Annotated[str, StringConstraints(pattern=K8S_NAME_PATTERN, max_length=253)]
ShortText = Annotated[str, StringConstraints(max_length=253)]
LongText = Annotated[str, StringConstraints(max_length=4096)]


class Strict(BaseModel):
    """Unknown keys are errors, values are not coerced, models are immutable."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, strict=True)
