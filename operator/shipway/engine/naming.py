"""Deterministic Kubernetes names: the same pipeline and step always give the same pod name.

Determinism is what makes the operator idempotent: creating a step's pod twice fails with
AlreadyExists instead of running the step twice, whatever the operator crashed in between.
Names carry a short hash of the Pipeline's UID, so they are unique per pipeline *instance*:
pipeline ``foo`` with step ``1 y`` and pipeline ``foo-1`` with step ``y`` do not meet, nor a
pipeline and the one of the same name that replaced it. A name alone never proves ownership,
though: an object is a pipeline's only if its controller ownerReference names its UID.
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
ANNOTATION_PIPELINE_UID = "shipway.dev/pipeline-uid"
"""On the workspace claim: whose it is, also when it is kept (and has no ownerReference)."""
ANNOTATION_SEAL = "shipway.dev/seal"
"""On every pod the operator creates: an HMAC only it can make (see engine.ownership)."""
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


def instance_tag(uid: str) -> str:
    """Five hex digits of the Pipeline's UID: tells instances of one name apart."""
    return short_hash(uid)


def pvc_name(pipeline: str, uid: str) -> str:
    """The workspace claim the operator creates (``<pipeline>-<tag>-workspace``)."""
    return f"{pipeline}-{instance_tag(uid)}-workspace"


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


def pod_name(pipeline: str, uid: str, step_id: str, step_name: str, attempt: int) -> str:
    """``<pipeline>-<tag>-<id>[-r<attempt>]-<step slug>``, at most 63 characters.

    The tag (a hash of the Pipeline's UID) makes it unique per pipeline instance, the id
    unique within the pipeline; a long pipeline name is cut, the tag still tells it apart.
    """
    suffix = f"{instance_tag(uid)}-{step_id}" + (f"-r{attempt}" if attempt else "")
    prefix = pipeline
    if len(prefix) + 1 + len(suffix) > MAX_POD_NAME - 6:
        prefix = pipeline[: MAX_POD_NAME - 6 - 1 - len(suffix)].rstrip("-")
    base = f"{prefix}-{suffix}" if prefix else suffix
    room = MAX_POD_NAME - len(base) - 1
    slug = dns_label(step_name, room) if room >= 3 else ""
    return f"{base}-{slug}" if slug and slug != "x" else base
