"""Pure formatting for the command line: progress lines, step results, tables (the status
tree is :mod:`shipway.cli.statustree`).

Nothing here talks to a cluster or a terminal: every function takes the Pipeline object (a
plain dict, as the API returns it), the current time and a :class:`Style`, and returns text.
Colours come only from the Style, which is plain unless the caller saw a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shipway.cli.sanitize import printable, printable_tree
from shipway.cli.tree import is_build
from shipway.engine.observe import parse_time
from shipway.models import (
    PipelinePhase,
    PipelineStatus,
    PrepStatus,
    StepPhase,
    StepStatus,
)

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}

PHASE_SYMBOL = {
    "Succeeded": "✔",
    "Failed": "✗",
    "Running": "●",
    "Pending": "○",
    "Skipped": "-",
    "Cancelled": "■",
}
PHASE_COLOUR = {
    "Succeeded": "green",
    "Failed": "red",
    "Running": "cyan",
    "Pending": "dim",
    "Skipped": "dim",
    "Cancelled": "magenta",
}


@dataclass(frozen=True)
class Style:
    """ANSI colours when ``colour`` is set, plain text otherwise."""

    colour: bool = False

    def paint(self, text: str, *names: str) -> str:
        if not self.colour or not names or not text:
            return text
        codes = ";".join(_CODES[name] for name in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def phase(self, phase: str, text: str | None = None) -> str:
        return self.paint(text if text is not None else phase, PHASE_COLOUR.get(phase, "bold"))


# -- times -------------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``45s``, ``1m05s``, ``2h03m``; never negative."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_age(seconds: float) -> str:
    """kubectl's AGE column: ``12s``, ``5m``, ``3h``, ``4d``."""
    total = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size * (2 if unit != "m" else 1):
            return f"{total // size}{unit}"
    return f"{total}s"


def elapsed(started: str | None, finished: str | None, now: datetime) -> float | None:
    """Seconds from ``started`` to ``finished`` (or to now while it runs)."""
    start = parse_time(started)
    if start is None:
        return None
    end = parse_time(finished) or now
    return (end - start).total_seconds()


def step_duration(step: StepStatus | PrepStatus, now: datetime) -> float | None:
    """How long the step's container ran; while it runs, the time since its pod was made."""
    if step.phase in (StepPhase.PENDING, StepPhase.SKIPPED):
        return None
    end = step.finished_at if step.phase.terminal else None
    if step.phase.terminal and end is None:
        return None
    return elapsed(step.started_at or step.created_at, end, now)


def step_wait(step: StepStatus | PrepStatus) -> float | None:
    """How long the pod waited before its container started (claim, node, image, sidecars)."""
    created, started = parse_time(step.created_at), parse_time(step.started_at)
    if created is None or started is None:
        return None
    return max(0.0, (started - created).total_seconds())


# -- reading a Pipeline object ------------------------------------------------------------------


def pipeline_status(pipeline: Mapping[str, Any]) -> PipelineStatus:
    """The status of a Pipeline object; an empty status when it has none (or an unreadable one)."""
    try:
        return PipelineStatus.model_validate(printable_tree(pipeline.get("status") or {}))
    except ValidationError:
        return PipelineStatus()


def phase_of(pipeline: Mapping[str, Any]) -> str:
    return str((pipeline.get("status") or {}).get("phase") or "Pending")


def is_finished(pipeline: Mapping[str, Any]) -> bool:
    try:
        return PipelinePhase(phase_of(pipeline)).terminal
    except ValueError:  # a phase this version does not know
        return False


LABEL_RESTART_OF = "shipway.dev/restart-of"
"""On a Pipeline made by ``shipway restart``: the name of the one it runs again."""


def restart_of(pipeline: Mapping[str, Any]) -> str | None:
    labels = (pipeline.get("metadata") or {}).get("labels") or {}
    value = labels.get(LABEL_RESTART_OF)
    return str(value) if value else None


def full_name(pipeline: Mapping[str, Any]) -> str:
    meta = pipeline.get("metadata") or {}
    return printable(f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/"))


# -- progress, step lines -----------------------------------------------------------------------


def progress_line(
    pipeline: Mapping[str, Any], now: datetime, style: Style | None = None, *, timed: bool = True
) -> str:
    """One line: ``[3/5] Running: unit, lint (1m05s)`` (without the time unless ``timed``)."""
    style = style or Style()
    status = pipeline_status(pipeline)
    phase = phase_of(pipeline)
    if not status.progress and not status.steps:
        return f"{style.phase(phase)}: waiting for the operator"
    running = [s for s in status.steps if s.phase == StepPhase.RUNNING]
    building = [f"build {b.service}" for b in status.builds if b.phase == StepPhase.RUNNING]
    text = f"[{status.progress or '?'}] {style.phase(phase)}"
    if running or building:
        names = building
        for step in running:
            name = f"{step.group}/{step.name}" if step.group else step.name
            if step.reason:
                name += f" ({step.reason})"
            names.append(printable(name))
        text += ": " + ", ".join(names)
    took = elapsed(status.started_at, status.finished_at, now)
    if timed and took is not None:
        text += f" ({format_duration(took)})"
    return text


def step_prefix(name: str, style: Style | None = None, kind: str = "step") -> str:
    """``(step: NAME)``, or ``(build: SERVICE)`` for an image build."""
    return (style or Style()).paint(f"({kind}: {printable(name)})", "cyan")


def kind_of(step: StepStatus) -> str:
    return "build" if is_build(step) else "step"


def log_line(name: str, line: str, style: Style | None = None, kind: str = "step") -> str:
    """A step's log line as jet shows it: ``(step: NAME) line`` (``(build: demo) #5 ...``)."""
    return f"{step_prefix(name, style, kind)} {printable(line)}"


def step_header(step: StepStatus, style: Style | None = None) -> str:
    text = step_prefix(step.name, style, kind_of(step))
    notes = []
    if step.group:
        notes.append(printable(step.group))
    if step.on_fail_of:
        notes.append("on_fail")
    if step.attempt:
        notes.append(f"attempt {step.attempt + 1}")
    return f"{text} {' · '.join(notes)}".rstrip() if notes else text


def result_line(
    name: str,
    phase: str,
    reason: str | None,
    message: str | None,
    *,
    style: Style | None = None,
    retrying: bool = False,
    kind: str = "step",
) -> str:
    """``(step: NAME) success ✔`` or ``(step: NAME) error ✗ container exited with a 1 code``."""
    style = style or Style()
    prefix = step_prefix(name, style, kind)
    if phase == "Succeeded":
        return f"{prefix} {style.paint('success ✔', 'green')}"
    why = printable(message or reason or "")
    if phase == "Cancelled":
        return f"{prefix} {style.paint('cancelled ■', 'magenta')} {why}".rstrip()
    if phase == "Skipped":
        return f"{prefix} {style.paint('skipped', 'dim')} {why}".rstrip()
    suffix = " (retrying)" if retrying else ""
    return f"{prefix} {style.paint('error ✗', 'red')} {why}{suffix}".rstrip()


def summary_line(pipeline: Mapping[str, Any], now: datetime, style: Style | None = None) -> str:
    """The last line of ``shipway run``."""
    style = style or Style()
    status = pipeline_status(pipeline)
    phase = phase_of(pipeline)
    took = elapsed(status.started_at, status.finished_at, now)
    text = f"Pipeline {full_name(pipeline)} {style.phase(phase, phase.lower())}"
    if took is not None:
        text += f" in {format_duration(took)}"
    if status.message and phase != "Succeeded":
        text += f" ({printable(status.message)})"
    return text


# -- the list -----------------------------------------------------------------------------------


def phase_table(header: Sequence[str], rows: Sequence[Sequence[str]], style: Style) -> list[str]:
    """Columns padded to their widest cell, three spaces apart, the PHASE column in its
    phase's color (``shipway list``, ``shipway history``)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    phase_column = header.index("PHASE")
    lines = ["   ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        cells[phase_column] = style.phase(row[phase_column], cells[phase_column])
        lines.append("   ".join(cells).rstrip())
    return lines


def pipeline_table(
    pipelines: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    namespaces: bool = False,
    style: Style | None = None,
) -> list[str]:
    """``shipway list``: NAME PHASE PROGRESS STEP AGE, like ``kubectl get pipelines``, and
    RESTART-OF when a Pipeline listed is a restart."""
    style = style or Style()
    header = (["NAMESPACE"] if namespaces else []) + ["NAME", "PHASE", "PROGRESS", "STEP", "AGE"]
    restarts = any(restart_of(item) for item in pipelines)
    if restarts:
        header.append("RESTART-OF")
    rows: list[list[str]] = []
    for item in pipelines:
        meta = item.get("metadata") or {}
        status = item.get("status") or {}
        created = parse_time(meta.get("creationTimestamp"))
        age = format_age((now - created).total_seconds()) if created else "?"
        row = [
            str(meta.get("name", "")),
            phase_of(item),
            str(status.get("progress") or ""),
            str(status.get("currentStep") or ""),
            age,
        ]
        if restarts:
            row.append(restart_of(item) or "")
        row = ([str(meta.get("namespace", ""))] if namespaces else []) + row
        rows.append([printable(cell) for cell in row])
    return phase_table(header, rows, style)
