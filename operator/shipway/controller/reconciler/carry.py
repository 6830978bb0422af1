"""Compile the spec, plan, and carry the plan's creates out: the claim, the build Secret,
the pods. Refused creates fail or hold their step, and the pipeline is planned again."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shipway.compiler.errors import FieldError, InvalidSpecError
from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline
from shipway.controller.callpool import Priority
from shipway.controller.creates import ClaimFailure, create_pods, ensure_claim
from shipway.controller.memory import Carried, Memory, without_created
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.observe import PodView
from shipway.engine.plan.failures import abort_plan, invalid_plan
from shipway.engine.plan.planner import Plan, PlanInput, Refusal, plan
from shipway.engine.pods import docker
from shipway.engine.pods.manifests import service_account_refusal
from shipway.engine.reasons import PipelineReason, StepReason
from shipway.models import PipelineStatus

if TYPE_CHECKING:
    from shipway.controller.reconciler.shell import Reconciler

log = logging.getLogger("shipway")

Compiled = CompiledPipeline | InvalidSpecError
CompileCache = dict[str, tuple[tuple[int, str | None], Compiled]]
"""Per pipeline UID: its spec compiled for one generation and build tag (the latest asked)."""


def compiled_spec(cache: CompileCache, snap: PipelineSnapshot, status: PipelineStatus) -> Compiled:
    """The spec compiled once per generation, and once more when a checkout has told
    which branch or tag it is (the build tag of ``tag``/``exclude`` filters).

    One entry per pipeline, replaced when either changes: finding or dropping a pipeline's
    entry never walks the others' (a thousand pipelines made that quadratic)."""
    checked_out = status.source.tag or status.source.branch if status.source else None
    key = (snap.generation, checked_out)
    kept = cache.get(snap.uid)
    if kept is not None and kept[0] == key:
        return kept[1]
    compiled: Compiled
    try:
        compiled = compile_pipeline(snap.spec, checked_out)
    except InvalidSpecError as exc:
        compiled = exc
    except Exception as exc:
        log.exception("%s/%s: the spec broke the compiler", snap.namespace, snap.name)
        problem = f"the operator could not compile it: {type(exc).__name__}: {exc}"
        compiled = InvalidSpecError([FieldError("spec", problem[:2048])])
    cache[snap.uid] = (key, compiled)
    return compiled


def plan_once(
    rec: Reconciler,
    snap: PipelineSnapshot,
    compiled: Compiled,
    status: PipelineStatus,
    *,
    pods: list[PodView],
    memory: Memory,
) -> Plan:
    now = rec.clock()
    if isinstance(compiled, InvalidSpecError):
        return invalid_plan(snap.ref, status, compiled, now)
    refusal = service_account_refusal(snap.ref, compiled, rec.options)
    if refusal is not None:
        return abort_plan(
            snap.ref,
            status,
            pods,
            reason=PipelineReason.SERVICE_ACCOUNT_NOT_ALLOWED,
            message=refusal,
            now=now,
        )
    wanting = [name for name, service in compiled.services.items() if service.docker]
    refusal = docker.refusal(snap.ref.namespace, wanting, rec.options.docker)
    if refusal is not None:
        return abort_plan(
            snap.ref,
            status,
            pods,
            reason=PipelineReason.DOCKER_NOT_ALLOWED,
            message=refusal,
            now=now,
        )
    key = (snap.namespace, snap.name)
    return plan(
        PlanInput(
            snap.ref,
            compiled,
            status,
            pods,
            now,
            settings=rec.settings,
            rejected=memory.rejected,
            waiting=memory.waiting,
            namespace_busy=rec.slots.others(key) if rec.slots is not None else 0,
        )
    )


def planned(
    rec: Reconciler,
    snap: PipelineSnapshot,
    compiled: Compiled,
    status: PipelineStatus,
    *,
    pods: list[PodView],
    memory: Memory,
    reserved: set[str],
) -> Plan:
    """A plan whose new step pods count against the namespace cap at once, before any
    other pipeline plans: the slots are reserved (``reserved``) until the watch shows
    the pods, or freed by the caller if they are not created."""
    result = plan_once(rec, snap, compiled, status, pods=pods, memory=memory)
    if rec.slots is not None:
        names = [c.name for c in result.create if c.name not in memory.created]
        reserved.update(names)
        rec.slots.expect((snap.namespace, snap.name), names)
    return result


async def carry_out(
    rec: Reconciler,
    snap: PipelineSnapshot,
    compiled: Compiled,
    status: PipelineStatus,
    *,
    pods: list[PodView],
    memory: Memory,
    urgency: Priority,
    reserved: set[str],
) -> Carried:
    """Plan, then make the claim and the pods; refused creates fail or hold their step,
    and the pipeline is planned again (at most three rounds)."""

    def again(pods: list[PodView]) -> Plan:
        return planned(rec, snap, compiled, status, pods=pods, memory=memory, reserved=reserved)

    result = again(pods)
    took = 0
    assert isinstance(compiled, CompiledPipeline) or not result.create
    for _ in range(3):  # refused creates fail or hold their step; plan again
        if not (result.create or result.builds) or not isinstance(compiled, CompiledPipeline):
            break
        if result.ensure_claim and not memory.claim:
            claim = await ensure_claim(rec.kube, snap.ref, compiled)
            if isinstance(claim, ClaimFailure):
                aborted = await rec.abort(
                    snap, pods, memory, reason=claim.reason, message=claim.message
                )
                return Carried(result, pods, took, aborted)
            if claim is not None:  # a quota holds the claim up: every create waits
                names = [c.name for c in result.create] + [b.name for b in result.builds]
                memory.waiting.update(dict.fromkeys(names, claim))
                result = without_created(again(pods), memory)
                break
            memory.claim = True
        refused = await build_secret_refusals(rec, snap, result, memory)
        todo = [c for c in result.create if c.name not in memory.created]
        builds = [b for b in result.builds if b.name not in memory.created]
        outcome = await create_pods(
            rec.kube,
            snap.ref,
            compiled,
            [] if refused else todo,
            node=result.status.node_name,
            options=rec.options,
            urgency=urgency,
            source=result.status.source,
            builds=[] if refused else builds,
            build=rec.settings.build,
        )
        memory.created.update(outcome.created)
        took += sum(1 for c in todo if c.name in outcome.created)
        outcome.rejected.update(refused)
        if not outcome.rejected and not outcome.waiting:
            break
        memory.rejected.update(outcome.rejected)
        memory.waiting.update(outcome.waiting)
        pods = list({p.name: p for p in (*pods, *memory.created.values())}.values())
        result = without_created(again(pods), memory)
    return Carried(result, pods, took)


async def build_secret_refusals(
    rec: Reconciler, snap: PipelineSnapshot, result: Plan, memory: Memory
) -> dict[str, Refusal]:
    """The builder's certificate is copied before the first build pod, or the builds are
    refused (their pods would wait for a missing Secret forever)."""
    if not result.build_secret or memory.build_secret:
        return {}
    problem = await rec.build_secrets.ensure(snap.ref)
    memory.build_secret = problem is None
    if problem is None:
        return {}
    return {b.name: Refusal(StepReason.POD_REJECTED, problem) for b in result.builds}
