"""Plans that fail a whole pipeline at once, whatever its steps were doing (pure).

An invalid spec fails before any pod exists; a refused claim, a status too large to store,
a forbidden ServiceAccount or a bug of the operator's fail a pipeline that may have pods
running, which are stopped. Neither needs a compiled spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shipway.compiler.errors import InvalidSpecError
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, format_time
from shipway.engine.plan.planner import Plan, finished_plan
from shipway.engine.plan.report import EventToEmit, diff_events, succeeded_condition
from shipway.engine.plan.steps import own
from shipway.engine.plan.task import halt
from shipway.engine.reasons import EventReason, PipelineReason
from shipway.models import PipelinePhase, PipelineStatus, StepPhase


def invalid_plan(
    ref: PipelineRef, status: PipelineStatus, error: InvalidSpecError, now: datetime
) -> Plan:
    """A spec that cannot run: Failed, with a message naming every bad field, and no pods."""
    stamp = format_time(now)
    message = str(error)[:4096]
    if status.phase.terminal:
        return Plan(status=status)
    new = PipelineStatus(
        phase=PipelinePhase.FAILED,
        message=message,
        finished_at=stamp,
        observed_generation=ref.generation,
        conditions=[
            succeeded_condition(
                status,
                PipelinePhase.FAILED,
                message,
                stamp,
                ref=ref,
                reason=PipelineReason.INVALID_SPEC,
            )
        ],
    )
    return Plan(
        status=new, events=(EventToEmit("Warning", EventReason.INVALID_SPEC, message[:1024]),)
    )


def abort_plan(
    ref: PipelineRef,
    status: PipelineStatus,
    pods: Sequence[PodView],
    *,
    reason: str,
    message: str,
    now: datetime,
    keep_steps: bool = True,
) -> Plan:
    """Fail the whole pipeline at once, saying why: its claim was refused, its status will
    not fit, the operator failed on it. Its running pods are stopped; steps that had not
    finished end Failed (if their pod ran) or Skipped. Needs no spec, so it also serves a
    pipeline whose spec the operator cannot handle.

    ``keep_steps=False`` writes no steps at all, for a status too large to be stored.
    """
    if status.phase.terminal:
        return finished_plan(status, pods, ref.uid)
    stamp = format_time(now)
    message = message[:4096]
    live = {pod.name: pod for pod in own(pods, ref.uid)}
    stop: list[str] = []
    delete: list[str] = []
    steps = []
    for step in status.steps if keep_steps else ():
        if step.phase.terminal:
            steps.append(step)
            continue
        pod = live.get(step.pod) if step.pod else None
        action = halt(pod)
        if pod is not None and action == "stop":
            stop.append(pod.name)
        elif pod is not None and action == "delete":
            delete.append(pod.name)
        phase = StepPhase.FAILED if pod is not None else StepPhase.SKIPPED
        steps.append(
            step.model_copy(
                update={"phase": phase, "reason": reason, "message": message[:1024]}
                | ({"finished_at": stamp} if phase == StepPhase.FAILED else {})
            )
        )
    recorded_pods = {step.pod for step in steps}
    for pod in live.values():  # pods the status does not record (or no longer records)
        if pod.name not in recorded_pods:
            action = halt(pod)
            if action == "stop":
                stop.append(pod.name)
            elif action == "delete":
                delete.append(pod.name)
    regular = [s for s in steps if s.on_fail_of is None]
    new = PipelineStatus(
        phase=PipelinePhase.FAILED,
        progress=f"{sum(1 for s in regular if s.phase.terminal)}/{len(regular)}"
        if regular
        else None,
        message=message,
        started_at=status.started_at,
        finished_at=stamp,
        node_name=status.node_name,
        observed_generation=ref.generation,
        conditions=[
            succeeded_condition(
                status, PipelinePhase.FAILED, message, stamp, ref=ref, reason=reason
            )
        ],
        steps=steps,
    )
    events = diff_events(status, new) if keep_steps else []
    if not events or events[-1].reason != EventReason.PIPELINE_FAILED:
        events.append(EventToEmit("Warning", EventReason.PIPELINE_FAILED, message[:1024]))
    return Plan(
        status=new,
        stop=tuple(dict.fromkeys(stop)),
        delete=tuple(dict.fromkeys(delete)),
        events=tuple(events),
    )
