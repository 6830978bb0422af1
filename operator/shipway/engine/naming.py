"""Deterministic Kubernetes names: the same pipeline and step always give the same pod name.

Determinism is what makes the operator idempotent: creating a step's pod twice fails with
AlreadyExists instead of running the step twice, whatever the operator crashed in between.
"""

from __future__ import annotations

import hashlib
import re

LABEL_PIPELINE = "shipway.dev/pipeline"
LABEL_STEP = "shipway.dev/step"
LABEL_ATTEMPT = "shipway.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "shipway"
ANNOTATION_STEP_NAME = "shipway.dev/step-name"
ANNOTATION_DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
"""Names the step's container, so that `kubectl logs POD` and the planner read that one."""

MAX_POD_NAME = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str, limit: int = 63) -> str:
    """Lower-case, dashes for anything else, trimmed to ``limit``; never empty."""
    slug = _NOT_DNS.sub("-", text.lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[:limit].strip("-")
    return slug or "x"


def short_hash(text: str, length: int = 5) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def pvc_name(pipeline: str) -> str:
    return f"{pipeline}-workspace"


def container_name(service: str) -> str:
    """Service names may hold '_' and '.', container names may not."""
    return dns_label(service)


def host_names(service: str) -> list[str]:
    """Host names a linked service answers to: its name, with '_' as '-' where needed."""
    names = [service] if re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", service) else []
    dashed = dns_label(service)
    if dashed not in names:
        names.append(dashed)
    return names


def pod_name(pipeline: str, step_id: str, step_name: str, attempt: int) -> str:
    """``<pipeline>-<id>[-r<attempt>]-<step slug>``, at most 63 characters.

    The id makes it unique within the pipeline; a long pipeline name is shortened with a hash
    of the full name so two long pipelines cannot collide either.
    """
    suffix = f"{step_id}" + (f"-r{attempt}" if attempt else "")
    prefix = pipeline
    if len(prefix) + 1 + len(suffix) > MAX_POD_NAME - 6:
        keep = MAX_POD_NAME - 6 - 1 - len(suffix) - 6
        prefix = f"{pipeline[:keep].rstrip('-')}-{short_hash(pipeline)}"
    base = f"{prefix}-{suffix}"
    room = MAX_POD_NAME - len(base) - 1
    slug = dns_label(step_name, room) if room >= 3 else ""
    return f"{base}-{slug}" if slug and slug != "x" else base
