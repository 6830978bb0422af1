"""The imperative shell: read a pipeline and its pods, ask the planner, carry out the plan.

The caller runs one reconcile per pipeline at a time (the work queue sees to it); different
pipelines proceed concurrently. State lives in the cluster (the Pipeline's status and its
pods); the caches here only save API calls and are rebuilt from the cluster after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from shipway.compiler.errors import FieldError, InvalidSpecError
from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline
from shipway.controller import metrics
from shipway.controller.builder import BuildSecrets
from shipway.controller.callpool import Priority
from shipway.controller.claimwatch import workspace_problem
from shipway.controller.creates import ClaimFailure, CreatingApi, create_pods, ensure_claim
from shipway.controller.kube import EventTarget, KubeError
from shipway.controller.memory import (
    Carried,
    Memory,
    only_node_learned,
    pipeline_urgency,
    without_created,
)
from shipway.controller.snapshot import PipelineSnapshot, dump_status, merge_patch
from shipway.engine.objects import Key, Manifest
from shipway.engine.observe import PodView, safe_pod_view
from shipway.engine.ownership import record_uids, sort_pods
from shipway.engine.plan.claims import ClaimStore
from shipway.engine.plan.failures import abort_plan, invalid_plan
from shipway.engine.plan.planner import EventToEmit, Plan, PlanInput, Refusal, finished_plan, plan
from shipway.engine.plan.steps import own
from shipway.engine.pods import docker
from shipway.engine.pods.manifests import service_account_refusal
from shipway.engine.reasons import EventReason, PipelineReason, StepReason
from shipway.engine.settings import PodOptions, Settings
from shipway.engine.slots import NamespaceSlots
from shipway.models import PipelineStatus

log = logging.getLogger("shipway")


class KubeApi(CreatingApi, Protocol):
    async def get_secret(self, namespace: str, name: str) -> Manifest | None: ...
    async def create_secret(self, namespace: str, manifest: Manifest) -> None: ...
    async def delete_secret(self, namespace: str, name: str) -> None: ...
    async def stop_pod(self, namespace: str, name: str) -> None: ...
    async def delete_pod(self, namespace: str, name: str) -> None: ...
    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None: ...
    async def emit_event(
        self, target: EventTarget, type_: str, reason: str, message: str
    ) -> None: ...


class Reconciler:
    def __init__(
        self,
        kube: KubeApi,
        settings: Settings | None = None,
        options: PodOptions | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        claims: ClaimStore | None = None,
        slots: NamespaceSlots | None = None,
    ) -> None:
        self.kube = kube
        self.claims = claims
        """The watched claims; None: a claim is read from the API server when needed."""
        self.slots = slots
        """Each namespace's step pods, for the namespace cap; None: only this pipeline's."""
        self.settings = settings or Settings()
        self.options = options or PodOptions()
        self.build_secrets = BuildSecrets(kube, self.settings.build)
        self.clock = clock
        self.memory: dict[Key, Memory] = {}
        self.compiled: dict[tuple[str, int, str | None], CompiledPipeline | InvalidSpecError] = {}
        self.background: set[asyncio.Task[None]] = set()

    def forget(self, key: Key) -> None:
        if self.claims is not None:
            self.claims.release(key)
        if self.slots is not None:
            self.slots.forget(key)
        memory = self.memory.pop(key, None)
        if memory is not None:
            metrics.forget(memory.phase)
            for cache_key in [k for k in self.compiled if k[0] == memory.uid]:
                del self.compiled[cache_key]

    def _compile(
        self, snap: PipelineSnapshot, status: PipelineStatus
    ) -> CompiledPipeline | InvalidSpecError:
        """The spec compiled once per generation, and once more when a checkout has told
        which branch or tag it is (the build tag of ``tag``/``exclude`` filters)."""
        checked_out = status.source.tag or status.source.branch if status.source else None
        key = (snap.uid, snap.generation, checked_out)
        if key not in self.compiled:
            for stale in [k for k in self.compiled if k[:2] == key[:2]]:
                del self.compiled[stale]
            try:
                self.compiled[key] = compile_pipeline(snap.spec, checked_out)
            except InvalidSpecError as exc:
                self.compiled[key] = exc
            except Exception as exc:
                log.exception("%s/%s: the spec broke the compiler", snap.namespace, snap.name)
                problem = f"the operator could not compile it: {type(exc).__name__}: {exc}"
                self.compiled[key] = InvalidSpecError([FieldError("spec", problem[:2048])])
        return self.compiled[key]

    def _status(self, snap: PipelineSnapshot, memory: Memory) -> PipelineStatus:
        try:
            return PipelineStatus.model_validate_json(memory.written or snap.status_json)
        except ValidationError:
            log.warning(
                "%s/%s: unreadable status, starting from scratch", snap.namespace, snap.name
            )
            return PipelineStatus()

    async def _pods(
        self,
        snap: PipelineSnapshot,
        status: PipelineStatus,
        indexed: Iterable[PodView],
        memory: Memory,
    ) -> list[PodView]:
        pods = {pod.name: pod for pod in own(indexed, snap.uid)}
        for name in [n for n in memory.created if n in pods]:
            del memory.created[name]
        for name, view in memory.created.items():
            pods.setdefault(name, view)
        # A pod the status says we created but the watch has not shown: ask before concluding
        # it was deleted (the watch may simply lag behind our own create).
        recorded = [(s.pod, s.phase) for s in status.steps]
        recorded += [(b.pod, b.phase) for b in status.builds]
        for known, phase in recorded:
            if known and not phase.terminal and known not in pods:
                body = await self.kube.get_pod(snap.namespace, known)
                found = safe_pod_view(body) if body is not None else None
                if found is not None and found.owner_uid == snap.uid:
                    pods[known] = found
        return self._trusted(snap, status, pods.values(), memory)

    def _trusted(
        self,
        snap: PipelineSnapshot,
        status: PipelineStatus,
        pods: Iterable[PodView],
        memory: Memory,
    ) -> list[PodView]:
        """The pods the operator created: a pod that only claims the pipeline (its name,
        labels and owner reference copied) is never read, and is named in an Event once."""
        found = sort_pods(snap.uid, status, pods, self.options.seal_key)
        for pod in found.strangers:
            if pod.uid in memory.strangers:
                continue
            memory.strangers.add(pod.uid)
            metrics.FOREIGN_PODS.inc()
            why = (
                f"pod {pod.name!r} (uid {pod.uid}) names this pipeline as its owner but the "
                "operator did not create it: it is ignored, its result is not the step's"
            )
            log.warning("%s/%s: %s", snap.namespace, snap.name, why)
            target = EventTarget(snap.name, snap.namespace, snap.uid)
            event = EventToEmit("Warning", EventReason.FOREIGN_POD, why)
            self.spawn(self._emit(target, (event,)))
        memory.trusted = {pod.name: pod.uid for pod in found.trusted if pod.uid}
        return found.trusted

    def _plan(
        self,
        snap: PipelineSnapshot,
        compiled: CompiledPipeline | InvalidSpecError,
        status: PipelineStatus,
        *,
        pods: list[PodView],
        memory: Memory,
    ) -> Plan:
        now = self.clock()
        if isinstance(compiled, InvalidSpecError):
            return invalid_plan(snap.ref, status, compiled, now)
        refusal = service_account_refusal(snap.ref, compiled, self.options)
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
        refusal = docker.refusal(snap.ref.namespace, wanting, self.options.docker)
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
                settings=self.settings,
                rejected=memory.rejected,
                waiting=memory.waiting,
                namespace_busy=self.slots.others(key) if self.slots is not None else 0,
            )
        )

    async def reconcile(
        self, snap: PipelineSnapshot | None, indexed_pods: Iterable[PodView], key: Key
    ) -> Plan | None:
        """Bring one pipeline one step closer to done. Safe to call at any time, repeatedly.

        None when the pipeline is gone (it is forgotten). A failed API call raises
        :class:`KubeError`: the caller tries again later, and the next run starts over from
        the cluster's state.
        """
        if snap is None or snap.deleting:
            self.forget(key)
            return None
        memory = self.memory.get(key)
        if memory is None or memory.uid != snap.uid:
            self.forget(key)
            memory = self.memory[key] = Memory(snap.uid)
        with metrics.RECONCILE_SECONDS.time():
            try:
                result = await self._reconcile(snap, indexed_pods, memory)
            except KubeError:
                raise
            except Exception as exc:
                log.exception("%s/%s: failed while handling it", snap.namespace, snap.name)
                why = f"the operator failed on this pipeline: {type(exc).__name__}: {exc}"
                result = await self._abort(
                    snap, indexed_pods, memory, reason=PipelineReason.INTERNAL_ERROR, message=why
                )
        if result.status.phase.terminal:  # over: it waits for no claim and no slot
            if self.claims is not None:
                self.claims.release(key)
            if self.slots is not None:
                self.slots.forget(key)
        return result

    async def _abort(
        self,
        snap: PipelineSnapshot,
        indexed: Iterable[PodView],
        memory: Memory,
        *,
        reason: str,
        message: str,
        keep_steps: bool = True,
    ) -> Plan:
        """Fail the pipeline at once with ``reason`` (and stop its pods)."""
        status = self._status(snap, memory)
        known = {pod.name: pod for pod in (*indexed, *memory.created.values())}
        pods = self._trusted(snap, status, own(known.values(), snap.uid), memory)
        result = abort_plan(
            snap.ref,
            status,
            pods,
            reason=reason,
            message=message,
            now=self.clock(),
            keep_steps=keep_steps,
        )
        await self._write(snap, memory, status, result)
        return await self._finish(snap, result)

    async def _reconcile(
        self, snap: PipelineSnapshot, indexed: Iterable[PodView], memory: Memory
    ) -> Plan:
        status = self._status(snap, memory)
        pods = await self._pods(snap, status, indexed, memory)
        if status.phase.terminal:
            return await self._finish(snap, finished_plan(status, pods, snap.uid))
        urgency = pipeline_urgency(status, memory)
        compiled = self._compile(snap, status)
        problem = await workspace_problem(
            self.kube,
            self.claims,
            snap,
            compiled,
            status=status,
            has_pods=bool(pods) or memory.claim,
        )
        if problem is not None:
            return await self._abort(
                snap, pods, memory, reason=problem.reason, message=problem.message
            )
        memory.waiting.clear()  # a quota may allow now what it refused a moment ago
        reserved: set[str] = set()
        try:
            carried = await self._carry_out(
                snap, compiled, status, pods=pods, memory=memory, urgency=urgency, reserved=reserved
            )
        finally:  # a slot reserved for a pod that was not created is free again
            if self.slots is not None:
                self.slots.unexpect(snap.namespace, reserved - memory.created.keys())
        if carried.aborted is not None:
            return carried.aborted
        result, pods = carried.result, carried.pods
        if self.slots is not None:
            self.slots.settle((snap.namespace, snap.name), carried.took, result.namespace_held)
        try:
            await self._write(snap, memory, status, result)
        except KubeError as exc:
            if not (exc.too_large or exc.status == 422):
                raise
            why = f"its status could not be stored ({exc}); the steps' results are not kept"
            reason = (
                PipelineReason.STATUS_TOO_LARGE if exc.too_large else PipelineReason.STATUS_REJECTED
            )
            return await self._abort(
                snap, pods, memory, reason=reason, message=why, keep_steps=False
            )
        if result.status.phase.terminal:
            # Done: from now on only a stray pod is stopped, which needs no spec.
            for done in [k for k in self.compiled if k[:2] == (snap.uid, snap.generation)]:
                del self.compiled[done]
            if result.status.builds:
                await self.build_secrets.drop_pull(snap.ref)
        await self._finish(snap, result)
        if result.build_secret is False:
            await self.build_secrets.drop(snap.ref)
            memory.build_secret = False
        if result.status.phase != status.phase or result.create:
            log.info(
                "%s/%s: %s %s%s",
                snap.namespace,
                snap.name,
                result.status.phase.value,
                result.status.progress or "",
                f"; started {', '.join(c.name for c in result.create)}" if result.create else "",
            )
        return result

    async def _carry_out(
        self,
        snap: PipelineSnapshot,
        compiled: CompiledPipeline | InvalidSpecError,
        status: PipelineStatus,
        *,
        pods: list[PodView],
        memory: Memory,
        urgency: Priority,
        reserved: set[str],
    ) -> Carried:
        """Plan, then make the claim and the pods; refused creates fail or hold their step,
        and the pipeline is planned again (at most three rounds)."""
        result = self._planned(snap, compiled, status, pods=pods, memory=memory, reserved=reserved)
        took = 0
        assert isinstance(compiled, CompiledPipeline) or not result.create
        for _ in range(3):  # refused creates fail or hold their step; plan again
            if not (result.create or result.builds) or not isinstance(compiled, CompiledPipeline):
                break
            if result.ensure_claim and not memory.claim:
                claim = await ensure_claim(self.kube, snap.ref, compiled)
                if isinstance(claim, ClaimFailure):
                    aborted = await self._abort(
                        snap, pods, memory, reason=claim.reason, message=claim.message
                    )
                    return Carried(result, pods, took, aborted)
                if claim is not None:  # a quota holds the claim up: every create waits
                    names = [c.name for c in result.create] + [b.name for b in result.builds]
                    memory.waiting.update(dict.fromkeys(names, claim))
                    result = without_created(
                        self._planned(
                            snap, compiled, status, pods=pods, memory=memory, reserved=reserved
                        ),
                        memory,
                    )
                    break
                memory.claim = True
            refused = await self._ensure_build_secret(snap, result, memory)
            todo = [c for c in result.create if c.name not in memory.created]
            builds = [b for b in result.builds if b.name not in memory.created]
            node = result.status.node_name
            outcome = await create_pods(
                self.kube,
                snap.ref,
                compiled,
                [] if refused else todo,
                node=node,
                options=self.options,
                urgency=urgency,
                source=result.status.source,
                builds=[] if refused else builds,
                build=self.settings.build,
            )
            memory.created.update(outcome.created)
            took += sum(1 for c in todo if c.name in outcome.created)
            outcome.rejected.update(refused)
            if not outcome.rejected and not outcome.waiting:
                break
            memory.rejected.update(outcome.rejected)
            memory.waiting.update(outcome.waiting)
            pods = list({p.name: p for p in (*pods, *memory.created.values())}.values())
            result = self._planned(
                snap, compiled, status, pods=pods, memory=memory, reserved=reserved
            )
            result = without_created(result, memory)
        return Carried(result, pods, took)

    def _planned(
        self,
        snap: PipelineSnapshot,
        compiled: CompiledPipeline | InvalidSpecError,
        status: PipelineStatus,
        *,
        pods: list[PodView],
        memory: Memory,
        reserved: set[str],
    ) -> Plan:
        """A plan whose new step pods count against the namespace cap at once, before any
        other pipeline plans: the slots are reserved (``reserved``) until the watch shows
        the pods, or freed by the caller if they are not created."""
        result = self._plan(snap, compiled, status, pods=pods, memory=memory)
        if self.slots is not None:
            names = [c.name for c in result.create if c.name not in memory.created]
            reserved.update(names)
            self.slots.expect((snap.namespace, snap.name), names)
        return result

    async def _write(
        self, snap: PipelineSnapshot, memory: Memory, status: PipelineStatus, result: Plan
    ) -> None:
        """Write the plan's status if it says something new, and remember it."""
        uids = {**memory.trusted, **{v.name: v.uid for v in memory.created.values() if v.uid}}
        result = replace(result, status=record_uids(result.status, status, uids))
        new, old = dump_status(result.status), dump_status(status)
        if new != old and not only_node_learned(new, old):
            await self.kube.patch_status(snap.namespace, snap.name, merge_patch(old, new))
        if memory.written is None:
            metrics.track_new(status.phase)
        metrics.record_transition(status, result.status, len(result.create))
        memory.written = json.dumps(new, separators=(",", ":"))
        memory.phase = result.status.phase

    async def _finish(self, snap: PipelineSnapshot, result: Plan) -> Plan:
        """The plan's last acts: stop and delete pods, then its Events in the background."""
        for name in result.stop:
            await self.kube.stop_pod(snap.namespace, name)
        for name in result.delete:
            await self.kube.delete_pod(snap.namespace, name)
        if result.events:
            target = EventTarget(snap.name, snap.namespace, snap.uid)
            self.spawn(self._emit(target, result.events))
        return result

    async def _ensure_build_secret(
        self, snap: PipelineSnapshot, result: Plan, memory: Memory
    ) -> dict[str, Refusal]:
        """The builder's certificate is copied before the first build pod, or the builds are
        refused (their pods would wait for a missing Secret forever)."""
        if not result.build_secret or memory.build_secret:
            return {}
        problem = await self.build_secrets.ensure(snap.ref)
        memory.build_secret = problem is None
        if problem is None:
            return {}
        return {b.name: Refusal(StepReason.POD_REJECTED, problem) for b in result.builds}

    async def _emit(self, target: EventTarget, events: tuple[EventToEmit, ...]) -> None:
        """Record Events in the background: under load they queue up by the thousand, so
        each holds only its own few strings, never the plan or the pipeline."""
        for event in events:
            try:
                await self.kube.emit_event(target, event.type, event.reason, event.message)
            except KubeError as exc:
                log.warning("%s/%s: event not recorded: %s", target.namespace, target.name, exc)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background; a failure is logged, never lost."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background work failed: %r", exc, exc_info=exc)
