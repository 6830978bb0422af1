"""Deterministic Kubernetes names: the same pipeline and step always give the same pod name.

Determinism is what makes the operator idempotent: creating a step's pod twice fails with
AlreadyExists instead of running the step twice, whatever the operator crashed in between.
Names carry a short hash of the Pipeline's UID, so they are unique per pipeline *instance*:
pipeline ``foo`` with step ``1 y`` and pipeline ``foo-1`` with step ``y`` do not meet, nor a
pipeline and the one of the same name that replaced it. A name alone never proves ownership,
though: an object is a pipeline's only if its controller ownerReference names its UID.
"""

from __future__ import annotations

import re

# They live in spec, below the engine (the compiler checks names with them), re-exported here.
from shipway.compiler.dnsnames import dns_label as dns_label
from shipway.compiler.dnsnames import short_hash as short_hash

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


def instance_tag(uid: str) -> str:
    """Five hex digits of the Pipeline's UID: tells instances of one name apart."""
    return short_hash(uid)


def pvc_name(pipeline: str, uid: str) -> str:
    """The workspace claim the operator creates (``<pipeline>-<tag>-workspace``)."""
    return f"{pipeline}-{instance_tag(uid)}-workspace"


def container_name(service: str) -> str:
    """Service names may hold '_', '.', upper case and '/', container names may not."""
    return dns_label(service)


_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def host_names(service: str) -> list[str]:
    """Host names a linked service answers to: its name where it is one, else its forms that
    are (``hostAliases`` take lower-case DNS names only).

    ``webApp`` is listed as ``webapp``: glibc and Go look /etc/hosts up ignoring case, so
    ``webApp`` reaches it there (musl compares exactly: use ``webapp`` on Alpine). A name with
    ``/`` (``test/php-7.2``) is no host name at all; it answers to ``test-php-7.2`` and
    ``test-php-7-2``. ``my_db`` answers to ``my-db``.
    """
    lower = service.lower()
    candidates = [lower, re.sub(r"[^a-z0-9.-]+", "-", lower).strip("-."), dns_label(service)]
    names: list[str] = []
    for name in candidates:
        if len(name) <= 253 and _SUBDOMAIN.fullmatch(name) and name not in names:
            names.append(name)
    return names


def label_value(text: str) -> str:
    """``text`` as a label value (63 characters of ``[A-Za-z0-9_.-]``); a hash when it had
    to change, so two texts never share one."""
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:56].strip("-_.")
    return f"{slug}-{short_hash(text)}" if slug else short_hash(text)


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
