"""``shipway status``: the pipeline as an indented tree of groups and steps (pure).

One row per step (and per group, and the checkout first): its phase, exit code, duration, the
time it waited to start and why it is where it is, aligned in columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shipway.cli.format import (
    PHASE_SYMBOL,
    Style,
    elapsed,
    format_duration,
    full_name,
    phase_of,
    pipeline_status,
    restart_of,
    step_duration,
    step_wait,
)
from shipway.cli.sanitize import printable
from shipway.cli.tree import TreeNode, build_tree, group_duration, group_phase, is_build
from shipway.engine.plan.builds.result import summary
from shipway.engine.plan.report import SOURCE_TITLES
from shipway.engine.reasons import StepReason
from shipway.models import PrepStatus, SourceStatus, StepPhase, StepStatus

WAITING_FOR_SERVICE = StepReason.WAITING_FOR_SERVICE


def step_detail(step: StepStatus) -> str:
    """Why a step is where it is: the failure message, the skip reason, the retry.

    For a build: its digest and cache hits, or BuildKit's last error line.
    """
    if is_build(step) and step.message:
        return summary(step.message)
    if step.phase == StepPhase.SUCCEEDED:
        retried = f"after {len(step.attempts) + 1} attempts" if step.attempts else ""
        pushed = f"pushed {step.image} ({step.digest})" if step.digest else ""
        return " · ".join(part for part in (pushed, retried) if part)
    if step.phase in (StepPhase.FAILED, StepPhase.CANCELLED):
        return step.message or step.reason or ""
    if step.phase == StepPhase.SKIPPED:
        return step.reason or ""
    if step.phase == StepPhase.RUNNING and step.reason:
        # What it waits for, when that is a linked service's health check.
        return step.message if step.reason == WAITING_FOR_SERVICE and step.message else step.reason
    return ""


@dataclass(frozen=True)
class _Row:
    prefix: str
    symbol: str
    label: str
    phase: str
    exit: str
    duration: str
    detail: str
    wait: str = ""


def _waited(step: StepStatus | PrepStatus) -> str:
    wait = step_wait(step)
    return f"waited {format_duration(wait)}" if wait is not None else ""


def source_detail(source: SourceStatus) -> str:
    """What the checkout found (or the upload brought), or why it failed."""
    if source.phase in (StepPhase.FAILED, StepPhase.CANCELLED, StepPhase.SKIPPED):
        return source.message or source.reason or ""
    if source.phase != StepPhase.SUCCEEDED:
        return source.reason or ""
    if source.kind == "upload":
        return f"{source.files or 0} files, {source.bytes or 0} bytes"
    where = source.branch or source.tag
    subject = (source.commit_message or "").split("\n", 1)[0]
    text = (source.commit or "")[:12] + (f" ({where})" if where else "")
    return f"{text} {subject}".strip()


def _source_row(source: SourceStatus, now: datetime) -> _Row:
    phase = str(source.phase)
    duration = step_duration(source, now)
    return _Row(
        "├─ ",
        PHASE_SYMBOL.get(phase, "?"),
        SOURCE_TITLES.get(source.kind, source.kind),
        phase,
        "",
        format_duration(duration) if duration is not None else "",
        source_detail(source),
        _waited(source),
    )


def _rows(nodes: Sequence[TreeNode], prefix: str, now: datetime) -> list[_Row]:
    rows: list[_Row] = []
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        branch = prefix + ("└─ " if last else "├─ ")
        below = prefix + ("   " if last else "│  ")
        if node.step is not None:
            step = node.step
            phase = str(step.phase)
            exit_code = f"exit {step.exit_code}" if step.exit_code is not None else ""
            duration = step_duration(step, now)
            rows.append(
                _Row(
                    branch,
                    PHASE_SYMBOL.get(phase, "?"),
                    node.name,
                    phase,
                    exit_code,
                    format_duration(duration) if duration is not None else "",
                    step_detail(step),
                    _waited(step),
                )
            )
        else:
            phase = group_phase(node)
            label = node.name if node.kind in ("group", "on_fail") else f"{node.name} ({node.kind})"
            duration = group_duration(node, now)
            rows.append(
                _Row(
                    branch,
                    PHASE_SYMBOL.get(phase, "?"),
                    label,
                    phase,
                    "",
                    format_duration(duration) if duration is not None else "",
                    "",
                )
            )
        rows.extend(_rows(node.children, below, now))
    return rows


def status_tree(
    pipeline: Mapping[str, Any], now: datetime, style: Style | None = None
) -> list[str]:
    """``shipway status``: a header line, the message, then the tree of groups and steps."""
    style = style or Style()
    status = pipeline_status(pipeline)
    phase = phase_of(pipeline)
    took = elapsed(status.started_at, status.finished_at, now)
    header = f"Pipeline {full_name(pipeline)}: {style.phase(phase)}"
    if status.progress:
        header += f" ({status.progress})"
    if took is not None:
        header += (
            f" in {format_duration(took)}" if status.finished_at else f", {format_duration(took)}"
        )
    lines = [header]
    if restarted := restart_of(pipeline):
        lines.append(f"  restart of {restarted}")
    if status.message:
        lines.append(f"  {printable(status.message)}")
    rows = _rows(build_tree(pipeline.get("spec"), status), "", now)
    if status.source is not None:
        rows.insert(0, _source_row(status.source, now))
    if not rows:
        return lines
    rows = [replace(r, label=printable(r.label), detail=printable(r.detail)) for r in rows]
    label_width = max(len(r.prefix) + 2 + len(r.label) for r in rows)
    phase_width = max(len(r.phase) for r in rows)
    exit_width = max(len(r.exit) for r in rows)
    dur_width = max(len(r.duration) for r in rows)
    wait_width = max(len(r.wait) for r in rows)
    for r in rows:
        label = f"{r.prefix}{style.phase(r.phase, r.symbol)} {r.label}"
        pad = " " * (label_width - len(r.prefix) - 2 - len(r.label))
        cells = [
            style.phase(r.phase, r.phase.ljust(phase_width)),
            r.exit.ljust(exit_width),
            r.duration.rjust(dur_width),
            *([style.paint(r.wait.ljust(wait_width), "dim")] if wait_width else []),
            style.paint(r.detail, "dim") if r.phase != "Failed" else style.paint(r.detail, "red"),
        ]
        lines.append(f"{label}{pad}  " + "  ".join(cells).rstrip())
    return lines
