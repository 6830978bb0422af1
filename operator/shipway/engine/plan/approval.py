"""Manual gates while planning (pure): reached, waiting, decided, timed out.

The walk asks :meth:`Gates.passes` at each manual group it reaches; a gate passes once its
decision in ``spec.approvals`` says Approved. Decisions come from the spec only, where the
API server's admission policy put them after checking who wrote them; ``status.approvals``
only remembers when each gate was reached and how it ended, so a restarted operator finds a
gate still waiting (and its clock) and honours a decision written while it was down.

A gate's wait does not count against the pipeline's own timeout (Codeship's five hours are
for running): :meth:`Gates.waited` is added to that deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shipway.compiler.approval import gates
from shipway.compiler.pipeline import CompiledPipeline
from shipway.compiler.tree import GroupNode
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import format_time, parse_time
from shipway.engine.plan.report import EventToEmit
from shipway.engine.reasons import EventReason, PipelineReason, StepReason
from shipway.models import PipelinePhase, PipelineStatus
from shipway.models.approval import Approval
from shipway.models.durations import parse_duration
from shipway.models.status import GatePhase, GateStatus


@dataclass(frozen=True)
class GateEnd:
    """How a decided gate ends the pipeline (rejected, or timed out)."""

    phase: PipelinePhase
    condition: PipelineReason
    step_reason: StepReason
    message: str


class Gates:
    """The manual gates of one pipeline at one instant."""

    def __init__(
        self,
        nodes: list[GroupNode],
        decisions: list[Approval],
        previous: PipelineStatus,
        now: datetime,
        *,
        timeout: float | None,
        written_at: str | None = None,
    ) -> None:
        """``timeout``: seconds a gate may wait (None: for ever); ``written_at``: when
        ``spec.approvals`` was last written (the API server's time, from managedFields)."""
        self.nodes = {node.field: node for node in nodes}
        self.decisions: dict[str, Approval] = {}
        for decision in decisions:
            self.decisions.setdefault(decision.gate, decision)
        self.now = now
        self.stamp = format_time(now)
        self.timeout = timeout
        self.written_at = written_at
        self.recheck: list[float] = []
        self.entries: dict[str, GateStatus] = {
            entry.gate: entry for entry in previous.approvals if entry.gate in self.nodes
        }
        for gate, entry in list(self.entries.items()):
            if entry.phase == GatePhase.WAITING:
                self.entries[gate] = self._settle(entry)

    def _settle(self, entry: GateStatus) -> GateStatus:
        """A waiting gate with its decision applied, or timed out, or still waiting."""
        decision = self.decisions.get(entry.gate)
        if decision is not None:
            phase = GatePhase.APPROVED if decision.decision == "Approved" else GatePhase.REJECTED
            when = self.written_at or self.stamp
            since = parse_time(entry.waiting_since)
            if since is not None and (parse_time(when) or self.now) < since:
                when = self.stamp  # a write older than the wait is not this decision's
            return entry.model_copy(
                update={"phase": phase, "user": decision.user, "decided_at": when}
            )
        since = parse_time(entry.waiting_since) or self.now
        if self.timeout is None:
            return entry
        left = (since - self.now).total_seconds() + self.timeout
        if left > 0:
            self.recheck.append(left)
            return entry
        return entry.model_copy(
            update={
                "phase": GatePhase.TIMED_OUT,
                "decided_at": self.stamp,
                "message": f"no decision within {_duration(self.timeout)}",
            }
        )

    def passes(self, node: GroupNode, reached: bool) -> bool:
        """Whether the walk may enter the gate; ``reached``: everything before it is over
        and nothing stops the pipeline, so an undecided gate starts (or goes on) waiting."""
        entry = self.entries.get(node.field)
        if entry is None and reached:
            entry = GateStatus(
                gate=node.field,
                name=node.name,
                phase=GatePhase.WAITING,
                waiting_since=self.stamp,
            )
            entry = self.entries[node.field] = self._settle(entry)
        return entry is not None and entry.phase == GatePhase.APPROVED

    def ended(self) -> GateEnd | None:
        """A rejected or timed-out gate: the pipeline ends, nothing after it runs."""
        for entry in self.entries.values():
            if entry.phase == GatePhase.REJECTED:
                return GateEnd(
                    PipelinePhase.REJECTED,
                    PipelineReason.REJECTED,
                    StepReason.REJECTED,
                    f"{entry.name!r} was rejected by {entry.user}",
                )
            if entry.phase == GatePhase.TIMED_OUT:
                return GateEnd(
                    PipelinePhase.FAILED,
                    PipelineReason.APPROVAL_TIMEOUT,
                    StepReason.APPROVAL_TIMEOUT,
                    f"{entry.name!r} got {entry.message}",
                )
        return None

    def waiting(self) -> GateStatus | None:
        return next((e for e in self.entries.values() if e.phase == GatePhase.WAITING), None)

    def waited(self) -> float:
        """Seconds the pipeline has spent at its gates (added to its own deadline)."""
        total = timedelta(0)
        for entry in self.entries.values():
            since = parse_time(entry.waiting_since)
            until = self.now if entry.phase == GatePhase.WAITING else parse_time(entry.decided_at)
            if since is not None and until is not None and until > since:
                total += until - since
        return total.total_seconds()

    def statuses(self) -> list[GateStatus]:
        """The gates reached, in the order of the spec."""
        return [self.entries[gate] for gate in self.nodes if gate in self.entries]


def plan_gates(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    status: PipelineStatus,
    now: datetime,
    *,
    default_timeout: float | None,
) -> Gates:
    """The gates of a compiled pipeline; ``spec.approvalTimeout`` (already a valid Go
    duration) wins over the operator's default."""
    spec = compiled.spec
    timeout = default_timeout
    if spec.approvalTimeout is not None:
        timeout = parse_duration(spec.approvalTimeout)
    return Gates(
        gates(compiled.root),
        list(spec.approvals),
        status,
        now,
        timeout=timeout,
        written_at=ref.approvals_at,
    )


def awaiting_message(entry: GateStatus, pipeline: str) -> str:
    return (
        f"waiting for approval of {entry.name!r} ({entry.gate}): shipway approve {pipeline} "
        f"or shipway reject {pipeline}"
    )


def gate_events(old: PipelineStatus, new: PipelineStatus) -> list[EventToEmit]:
    """One Event when a gate starts waiting, one when it is decided or times out."""
    before = {entry.gate: entry.phase for entry in old.approvals}
    events: list[EventToEmit] = []
    for entry in new.approvals:
        if before.get(entry.gate) == entry.phase:
            continue
        what = f"{entry.name!r} ({entry.gate})"
        if entry.phase == GatePhase.WAITING:
            events.append(
                EventToEmit(
                    "Normal", EventReason.WAITING_FOR_APPROVAL, f"{what} waits for approval"
                )
            )
        elif entry.phase == GatePhase.APPROVED:
            events.append(
                EventToEmit(
                    "Normal",
                    EventReason.APPROVED,
                    f"{what} approved by {entry.user} at {entry.decided_at}",
                )
            )
        elif entry.phase == GatePhase.REJECTED:
            events.append(
                EventToEmit(
                    "Warning",
                    EventReason.REJECTED,
                    f"{what} rejected by {entry.user} at {entry.decided_at}",
                )
            )
        else:
            events.append(
                EventToEmit("Warning", EventReason.APPROVAL_TIMEOUT, f"{what}: {entry.message}")
            )
    return events


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
