"""The few names every layer above the spec shares: a Kubernetes object, a pipeline's key,
the identity of the Pipeline being handled. Defined once here, used by engine, controller
and cli alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]
"""A Kubernetes object as the API reads and writes it: plain JSON-like dicts."""

Key = tuple[str, str]
"""A pipeline's key in the operator's memory: (namespace, name)."""


@dataclass(frozen=True)
class PipelineRef:
    """Identity of the Pipeline object being planned."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    created_at: str | None = None
    generate_name: str | None = None
    """``metadata.generateName``: the project a run of ``shipway run`` belongs to."""
    approvals_at: str | None = None
    """When ``spec.approvals`` was last written: the API server's time, from managedFields."""
