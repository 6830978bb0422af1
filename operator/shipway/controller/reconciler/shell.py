"""One reconcile from start to end: read, plan, act, write, and what is left to do after."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from shipway.compiler.pipeline import CompiledPipeline
from shipway.controller import metrics
from shipway.controller.builder import BuildSecrets
from shipway.controller.claimwatch import workspace_problem
from shipway.controller.kube import EventTarget, KubeError
from shipway.controller.memory import Memory, pipeline_urgency
from shipway.controller.reconciler.api import KubeApi
from shipway.controller.reconciler.carry import CompileCache, carry_out, compiled_spec
from shipway.controller.reconciler.pods import pipeline_pods, trusted_pods
from shipway.controller.reconciler.status import read_status, write_status
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Key
from shipway.engine.observe import PodView
from shipway.engine.plan.claims import ClaimStore
from shipway.engine.plan.failures import abort_plan
from shipway.engine.plan.planner import EventToEmit, Plan, finished_plan
from shipway.engine.plan.steps import own
from shipway.engine.reasons import PipelineReason
from shipway.engine.settings import PodOptions, Settings
from shipway.engine.slots import NamespaceSlots
from shipway.engine.wakes import quiet_change, settled_pods

log = logging.getLogger("shipway")


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
        self.compiled: CompileCache = {}
        self.background: set[asyncio.Task[None]] = set()

    def forget(self, key: Key) -> None:
        if self.claims is not None:
            self.claims.release(key)
        if self.slots is not None:
            self.slots.forget(key)
        memory = self.memory.pop(key, None)
        if memory is not None:
            metrics.forget(memory.phase)
            self.compiled.pop(memory.uid, None)

    def follows(self, key: Key, uid: str) -> bool:
        """This process has read or written the pipeline's status: from now on it plans from
        its own last write, never from the status an event shows."""
        memory = self.memory.get(key)
        return memory is not None and memory.uid == uid and memory.seen

    def quiet(self, key: Key, old: PodView | None, new: PodView) -> bool:
        """A pod's view changed from ``old`` (None: not seen yet; then the view its create
        returned) to ``new`` in a way its pipeline's last plan says cannot change the next one
        (:mod:`shipway.engine.wakes`): no reconcile needed."""
        memory = self.memory.get(key)
        if memory is None or new.name not in memory.settled or new.owner_uid != memory.uid:
            return False
        old = old or memory.created.get(new.name)
        return old is not None and (old == new or quiet_change(old, new))

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
                memory.settled = frozenset()  # every change wakes until a reconcile succeeds
                raise
            except Exception as exc:
                log.exception("%s/%s: failed while handling it", snap.namespace, snap.name)
                why = f"the operator failed on this pipeline: {type(exc).__name__}: {exc}"
                result = await self.abort(
                    snap, indexed_pods, memory, reason=PipelineReason.INTERNAL_ERROR, message=why
                )
        if result.status.phase.terminal:  # over: it waits for no claim and no slot
            memory.settled = frozenset()
            if self.claims is not None:
                self.claims.release(key)
            if self.slots is not None:
                self.slots.forget(key)
        return result

    async def abort(
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
        status = read_status(snap, memory)
        known = {pod.name: pod for pod in (*indexed, *memory.created.values())}
        pods = trusted_pods(
            snap,
            status,
            own(known.values(), snap.uid),
            memory,
            seal_key=self.options.seal_key,
            emit=self._emit_later,
        )
        result = abort_plan(
            snap.ref,
            status,
            pods,
            reason=reason,
            message=message,
            now=self.clock(),
            keep_steps=keep_steps,
        )
        result = await write_status(
            self.kube, snap, memory, status, result=result, now=self.clock()
        )
        return await self._finish(snap, result)

    async def _reconcile(
        self, snap: PipelineSnapshot, indexed: Iterable[PodView], memory: Memory
    ) -> Plan:
        status = read_status(snap, memory)
        pods = await pipeline_pods(
            self.kube,
            snap,
            status,
            indexed,
            memory=memory,
            seal_key=self.options.seal_key,
            emit=self._emit_later,
        )
        if status.phase.terminal:
            return await self._finish(snap, finished_plan(status, pods, snap.uid))
        urgency = pipeline_urgency(status, memory)
        compiled = compiled_spec(self.compiled, snap, status)
        problem = await workspace_problem(
            self.kube,
            self.claims,
            snap,
            compiled,
            status=status,
            has_pods=bool(pods) or memory.claim,
        )
        if problem is not None:
            return await self.abort(
                snap, pods, memory, reason=problem.reason, message=problem.message
            )
        memory.waiting.clear()  # a quota may allow now what it refused a moment ago
        reserved: set[str] = set()
        try:
            carried = await carry_out(
                self,
                snap,
                compiled,
                status,
                pods=pods,
                memory=memory,
                urgency=urgency,
                reserved=reserved,
            )
        finally:  # a slot reserved for a pod that was not created is free again
            if self.slots is not None:
                self.slots.unexpect(snap.namespace, reserved - memory.created.keys())
        if carried.aborted is not None:
            return carried.aborted
        result, pods = carried.result, carried.pods
        if self.slots is not None:
            self.slots.settle((snap.namespace, snap.name), carried.took, result.namespace_held)
        pinned = isinstance(compiled, CompiledPipeline) and compiled.pinned
        # Settled already while the status is written: the watch shows the pods just made
        # during that write, and each such sighting woke a second reconcile that found
        # nothing to do (4 in 10 reconciles at 1000 x 5, counted). A failed write settles
        # nothing again (reconcile's except), and the end sets it from the written plan.
        memory.settled = settled_pods(result.status, pinned=pinned)
        try:
            result = await write_status(
                self.kube, snap, memory, status, result=result, now=self.clock()
            )
        except KubeError as exc:
            if not (exc.too_large or exc.status == 422):
                raise
            why = f"its status could not be stored ({exc}); the steps' results are not kept"
            reason = (
                PipelineReason.STATUS_TOO_LARGE if exc.too_large else PipelineReason.STATUS_REJECTED
            )
            return await self.abort(
                snap, pods, memory, reason=reason, message=why, keep_steps=False
            )
        if result.status.phase.terminal:
            # Done: from now on only a stray pod is stopped, which needs no spec.
            self.compiled.pop(snap.uid, None)
            if result.status.builds:
                await self.build_secrets.drop_pull(snap.ref)
        await self._finish(snap, result)
        memory.settled = settled_pods(result.status, pinned=pinned)
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

    async def _finish(self, snap: PipelineSnapshot, result: Plan) -> Plan:
        """The plan's last acts: stop and delete pods, then its Events in the background."""
        for name in result.stop:
            await self.kube.stop_pod(snap.namespace, name)
        for name in result.delete:
            await self.kube.delete_pod(snap.namespace, name)
        if result.events:
            self._emit_later(EventTarget(snap.name, snap.namespace, snap.uid), result.events)
        return result

    def _emit_later(self, target: EventTarget, events: tuple[EventToEmit, ...]) -> None:
        self.spawn(self._emit(target, events))

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
