"""What a page shows, from a Pipeline object (live, or rebuilt from its run record): pure.

The templates only lay these out; every string in them is data, escaped by Jinja2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipway.cli.format import format_age
from shipway.engine.observe import parse_time
from shipway.history.records import RunRecord
from shipway.models import StepStatus

FINISHED = ("Succeeded", "Failed", "Cancelled", "Rejected")


@dataclass(frozen=True)
class Row:
    """A line of the step tree: a group heading or a step."""

    kind: str  # "group" | "step"
    depth: int
    name: str
    phase: str
    id: str = ""
    service: str = ""
    duration: str = ""
    waited: str = ""
    pod: str = ""
    attempt: int = 0
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True)
class RunView:
    namespace: str
    name: str
    uid: str
    phase: str
    message: str
    project: str
    created: str
    duration: str
    source: dict[str, str]
    rows: list[Row]
    builds: list[dict[str, str]]
    pushes: list[dict[str, str]]
    gates: list[dict[str, str]]
    finished: bool
    live: bool
    """True: read from the API server now; False: from the history (the object is gone)."""


def seconds(start: str | None, end: str | None, now: datetime) -> float | None:
    begun = parse_time(start)
    if begun is None:
        return None
    ended = parse_time(end) or now
    return max(0.0, (ended - begun).total_seconds())


def _age(value: float | None) -> str:
    return format_age(value) if value is not None else ""


def group_phase(phases: Sequence[str]) -> str:
    """A group is as far as its steps: failed if one failed, running if one runs, passed
    when all did."""
    for phase in ("Failed", "Cancelled", "Running"):
        if phase in phases:
            return phase
    if phases and all(p in ("Succeeded", "Skipped") for p in phases):
        return "Succeeded"
    return "Pending"


def tree_rows(steps: Sequence[Mapping[str, Any]], now: datetime) -> list[Row]:
    """Steps in order, each group's heading before its first step (Codeship's tree)."""
    rows: list[Row] = []
    open_groups: list[str] = []
    heading_at: dict[str, int] = {}
    members: dict[str, list[str]] = {}
    for raw in steps:
        step = StepStatus.model_validate(raw)
        path = [p for p in (step.group or "").split("/") if p]
        common = 0
        while common < min(len(path), len(open_groups)) and path[common] == open_groups[common]:
            common += 1
        open_groups = open_groups[:common]
        for depth in range(common, len(path)):
            key = "/".join(path[: depth + 1]) + f"#{len(rows)}"
            open_groups.append(path[depth])
            heading_at["/".join(open_groups)] = len(rows)
            rows.append(Row("group", depth, path[depth], "Pending", id=key))
        phase = str(step.phase)
        for depth in range(len(path)):
            members.setdefault("/".join(path[: depth + 1]), []).append(phase)
        rows.append(
            Row(
                "step",
                len(path),
                step.name,
                phase,
                id=step.id,
                service=step.service,
                duration=_age(seconds(step.started_at, step.finished_at, now)),
                waited=_age(seconds(step.created_at, step.started_at, now))
                if step.started_at
                else "",
                pod=step.pod or "",
                attempt=step.attempt,
                exit_code=step.exit_code,
                message=step.message or "",
            )
        )
    for group, index in heading_at.items():
        row = rows[index]
        phase = group_phase(members.get(group, []))
        rows[index] = Row("group", row.depth, row.name, phase, id=row.id)
    return rows


def run_view(
    body: Mapping[str, Any], record: RunRecord | None, now: datetime, live: bool
) -> RunView:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    # what was checked out; else what the Pipeline says it builds (spec.ci, CI_* variables)
    source = dict((body.get("spec") or {}).get("ci") or {})
    source |= {k: v for k, v in (status.get("source") or {}).items() if v}
    if source.get("commitId") and not source.get("commit"):
        source["commit"] = source["commitId"]
    phase = str(status.get("phase") or "Pending")
    builds = [
        {
            "service": str(b.get("service") or ""),
            "phase": str(b.get("phase") or ""),
            "image": str(b.get("image") or ""),
            "digest": str(b.get("digest") or ""),
            "cached": f"{b.get('cachedSteps')}/{b.get('totalSteps')}"
            if b.get("totalSteps") is not None
            else "",
            "duration": _age(seconds(b.get("startedAt"), b.get("finishedAt"), now)),
        }
        for b in status.get("builds") or ()
    ]
    pushes = [
        {"step": str(s.get("name") or ""), "image": str(s["image"]), "phase": str(s.get("phase"))}
        for s in status.get("steps") or ()
        if s.get("image")
    ]
    gates = [
        {
            "gate": str(g.get("gate") or ""),
            "name": str(g.get("name") or ""),
            "phase": str(g.get("phase") or ""),
            "user": str(g.get("user") or ""),
        }
        for g in status.get("approvals") or ()
    ]
    created = parse_time(meta.get("creationTimestamp"))
    return RunView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        phase=phase,
        message=str(status.get("message") or ""),
        project=record.project if record else "",
        created=created.strftime("%Y-%m-%d %H:%M:%S UTC") if created else "",
        duration=_age(seconds(status.get("startedAt"), status.get("finishedAt"), now)),
        source={
            "commit": str(source.get("commit") or ""),
            "branch": str(source.get("branch") or source.get("tag") or ""),
            "message": str(source.get("commitMessage") or ""),
            "committer": " ".join(
                x
                for x in (
                    str(source.get("committerName") or ""),
                    f"<{source['committerEmail']}>" if source.get("committerEmail") else "",
                )
                if x
            ),
        },
        rows=tree_rows(status.get("steps") or (), now),
        builds=builds,
        pushes=pushes,
        gates=gates,
        finished=phase in FINISHED,
        live=live,
    )


def list_row(record: RunRecord, now: datetime) -> dict[str, str]:
    duration = ""
    if record.started_at:
        duration = format_age(((record.finished_at or now) - record.started_at).total_seconds())
    return {
        "namespace": record.namespace,
        "name": record.name,
        "project": record.project,
        "branch": record.branch,
        "commit": record.commit[:12],
        "phase": record.phase,
        "steps": str(record.steps),
        "duration": duration,
        "age": format_age((now - record.created_at).total_seconds()) if record.created_at else "",
    }


def status_json(view: RunView) -> dict[str, Any]:
    """What the run page's script polls: phases and times of the tree."""
    return {
        "phase": view.phase,
        "finished": view.finished,
        "duration": view.duration,
        "steps": [
            {
                "id": r.id,
                "phase": r.phase,
                "duration": r.duration,
                "waited": r.waited,
                "pod": r.pod,
            }
            for r in view.rows
            if r.kind == "step"
        ],
        "groups": [{"id": r.id, "phase": r.phase} for r in view.rows if r.kind == "group"],
    }
