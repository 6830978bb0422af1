"""A Pipeline's run record, built from its object alone (pure).

The record is what the history keeps of a run once the Pipeline object is gone: who it was
(namespace, name, UID), what it built (project, branch, commit), how it ended (phase,
reason, message, times) and its whole status, the step tree with every attempt, build and
push, compressed. Keeping the status as written lets ``shipway status`` and ``shipway
logs`` print an archived run exactly as they print a live one, from the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipway.engine.naming import normalise_git_url
from shipway.engine.observe import parse_time

KEEP_ANNOTATION = "shipway.dev/keep"
"""A Pipeline carrying this annotation (any value but "false") is never pruned."""


@dataclass(frozen=True, slots=True)
class StepTiming:
    """What a step's record adds to its status: time spent waiting before it ran."""

    id: str
    waited_seconds: float | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run, as the history store keeps it (one row)."""

    uid: str
    namespace: str
    name: str
    project: str
    branch: str
    commit: str
    trigger: str
    """How it was started: "git" (a checkout), "upload" (``shipway run --dir``), "manifest"."""
    phase: str
    reason: str
    message: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    steps: int
    spec_json: str
    status_json: str
    """The status as the operator wrote it (compact JSON): the step tree, builds, pushes."""
    keep: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed", "Cancelled")


def project_of(spec: Mapping[str, Any], generate_name: str | None, name: str) -> str:
    """The project a run belongs to, readable: ``spec.cacheKey``, else the git repository
    (host/path, without credentials), else ``shipway run``'s generateName, else the name."""
    cache_key = spec.get("cacheKey")
    if isinstance(cache_key, str) and cache_key:
        return cache_key
    git = (spec.get("source") or {}).get("git") or {}
    if isinstance(git, Mapping) and git.get("url"):
        return normalise_git_url(str(git["url"]))
    if generate_name and generate_name.strip("-"):
        return generate_name.strip("-")
    return name


def trigger_of(spec: Mapping[str, Any]) -> str:
    source = spec.get("source") or {}
    if source.get("git"):
        return "git"
    if source.get("upload") is not None:
        return "upload"
    return "manifest"


def build_record(body: Mapping[str, Any], *, spec_json: str | None = None) -> RunRecord:
    """The record of a Pipeline object (metadata, spec and status as the API returns them).
    ``spec_json``: the spec as this function writes it, when the caller kept it from before
    (a spec does not change while its status does)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    ci = spec.get("ci") or {}
    source = status.get("source") or {}
    annotations = meta.get("annotations") or {}
    succeeded: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or () if c.get("type") == "Succeeded"), {}
    )
    return RunRecord(
        uid=meta.get("uid") or "",
        namespace=meta.get("namespace") or "",
        name=meta.get("name") or "",
        project=project_of(spec, meta.get("generateName"), meta.get("name") or ""),
        branch=source.get("tag") or source.get("branch") or ci.get("tag") or ci.get("branch") or "",
        commit=source.get("commit") or ci.get("commitId") or "",
        trigger=trigger_of(spec),
        phase=status.get("phase") or "Pending",
        reason=succeeded.get("reason") or "",
        message=status.get("message") or succeeded.get("message") or "",
        created_at=parse_time(meta.get("creationTimestamp")),
        started_at=parse_time(status.get("startedAt")),
        finished_at=parse_time(status.get("finishedAt")),
        steps=len(status.get("steps") or ()),
        spec_json=spec_json
        if spec_json is not None
        else json.dumps(spec, separators=(",", ":"), sort_keys=True),
        status_json=json.dumps(status, separators=(",", ":")),
        keep=kept(annotations),
    )


def kept(annotations: Mapping[str, str]) -> bool:
    value = annotations.get(KEEP_ANNOTATION)
    return value is not None and value.lower() not in ("false", "0", "no")


def step_timings(status: Mapping[str, Any]) -> list[StepTiming]:
    """Per step, the seconds between its pod's creation and its container's start: the time
    spent on scheduling, pulling images and waiting for linked services."""
    timings = []
    for step in status.get("steps") or ():
        created, started = parse_time(step.get("createdAt")), parse_time(step.get("startedAt"))
        waited = (started - created).total_seconds() if created and started else None
        timings.append(StepTiming(step.get("id") or "", waited))
    return timings


def body_of(record: RunRecord) -> dict[str, Any]:
    """The Pipeline object as the command line prints it, rebuilt from its record."""
    created = record.created_at
    status = json.loads(record.status_json or "{}")
    if not status:  # a page's row (no status read): what its columns say
        status = {
            "phase": record.phase,
            "message": record.message or None,
            "startedAt": _stamp(record.started_at),
            "finishedAt": _stamp(record.finished_at),
        }
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "name": record.name,
            "namespace": record.namespace,
            "uid": record.uid,
            "creationTimestamp": _stamp(created),
        },
        "spec": json.loads(record.spec_json or "{}"),
        "status": {k: v for k, v in status.items() if v is not None},
    }


def _stamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
