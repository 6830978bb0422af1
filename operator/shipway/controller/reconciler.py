"""The imperative shell: read a pipeline and its pods, ask the planner, carry out the plan.

The caller runs one reconcile per pipeline at a time (the work queue sees to it); different
pipelines proceed concurrently. State lives in the cluster (the Pipeline's status and its
pods); the caches here only save API calls and are rebuilt from the cluster after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from shipway.controller import metrics
from shipway.controller.builder import BuildSecrets
from shipway.controller.callpool import Priority
from shipway.controller.kube import EventTarget, KubeError
from shipway.engine.manifests import PodOptions, build_manifest, claim_manifest, pod_manifest
from shipway.engine.objects import Key, Manifest, PipelineRef
from shipway.engine.observe import PodView, pod_view
from shipway.engine.planner import (
    EventToEmit,
    Plan,
    Settings,
    finished_plan,
    invalid_plan,
    plan,
)
from shipway.models import PipelinePhase, PipelineStatus
from shipway.spec.compiler import CompiledPipeline, compile_pipeline
from shipway.spec.errors import InvalidSpecError

log = logging.getLogger("shipway")


class KubeApi(Protocol):
    async def create_pod(
        self, namespace: str, manifest: Manifest, priority: Priority = Priority.STEP
    ) -> Manifest | None: ...
    async def get_pod(self, namespace: str, name: str) -> Manifest | None: ...
    async def create_claim(self, namespace: str, manifest: Manifest) -> None: ...
    async def get_secret(self, namespace: str, name: str) -> Manifest | None: ...
    async def create_secret(self, namespace: str, manifest: Manifest) -> None: ...
    async def delete_secret(self, namespace: str, name: str) -> None: ...
    async def stop_pod(self, namespace: str, name: str) -> None: ...
    async def delete_pod(self, namespace: str, name: str) -> None: ...
    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None: ...
    async def emit_event(
        self, target: EventTarget, type_: str, reason: str, message: str
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineSnapshot:
    """The parts of a Pipeline object the operator keeps in memory.

    Spec and status are kept as compact JSON: a few hundred bytes instead of kilobytes of
    dicts per pipeline. They are decoded only to compile a new generation of the spec and
    to read the status once after a (re)start; from then on the operator's own last write
    is the status it plans from.
    """

    name: str
    namespace: str
    uid: str
    generation: int
    created_at: str | None
    spec_json: str
    status_json: str
    deleting: bool
    generate_name: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PipelineSnapshot:
        meta = body.get("metadata") or {}
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 1),
            created_at=meta.get("creationTimestamp"),
            spec_json=_compact(body.get("spec")),
            status_json=_compact(body.get("status")),
            deleting=bool(meta.get("deletionTimestamp")),
            generate_name=meta.get("generateName") or None,
        )

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(self.spec_json)
        return spec

    @property
    def ref(self) -> PipelineRef:
        return PipelineRef(
            self.name,
            self.namespace,
            self.uid,
            self.generation,
            self.created_at,
            self.generate_name,
        )


def _compact(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), separators=(",", ":"))


def dump_status(status: PipelineStatus) -> Manifest:
    """The status as written: compact, since a 500-step pipeline has 500 entries."""
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for step in dumped.get("steps", ()):
        if not step.get("attempts"):
            step.pop("attempts", None)
        if step.get("attempt") == 0:
            step.pop("attempt")
    return dumped


@dataclass(slots=True)
class _Memory:
    """What the operator remembers about one pipeline between reconciles."""

    uid: str
    written: str | None = None
    """The last status written (or found), as JSON: smaller than the model by ten times."""
    phase: PipelinePhase | None = None
    claim: bool = False
    build_secret: bool = False
    created: dict[str, PodView] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)


class Reconciler:
    def __init__(
        self,
        kube: KubeApi,
        settings: Settings | None = None,
        options: PodOptions | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube = kube
        self.settings = settings or Settings()
        self.options = options or PodOptions()
        self.build_secrets = BuildSecrets(kube, self.settings.build)
        self.clock = clock
        self.memory: dict[Key, _Memory] = {}
        self.compiled: dict[tuple[str, int, str | None], CompiledPipeline | InvalidSpecError] = {}
        self.background: set[asyncio.Task[None]] = set()

    def forget(self, key: Key) -> None:
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
        return self.compiled[key]

    def _status(self, snap: PipelineSnapshot, memory: _Memory) -> PipelineStatus:
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
        memory: _Memory,
    ) -> list[PodView]:
        pods = {pod.name: pod for pod in indexed}
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
                found = pod_view(body) if body is not None else None
                if found is not None:
                    pods[known] = found
        return list(pods.values())

    def _plan(
        self,
        snap: PipelineSnapshot,
        compiled: CompiledPipeline | InvalidSpecError,
        status: PipelineStatus,
        pods: list[PodView],
        memory: _Memory,
    ) -> Plan:
        now = self.clock()
        if isinstance(compiled, InvalidSpecError):
            return invalid_plan(snap.ref, status, compiled, now)
        return plan(snap.ref, compiled, status, pods, now, self.settings, memory.rejected)

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
            memory = self.memory[key] = _Memory(snap.uid)
        with metrics.RECONCILE_SECONDS.time():
            return await self._reconcile(snap, indexed_pods, memory)

    async def _reconcile(
        self, snap: PipelineSnapshot, indexed: Iterable[PodView], memory: _Memory
    ) -> Plan:
        status = self._status(snap, memory)
        pods = await self._pods(snap, status, indexed, memory)
        if status.phase.terminal:
            return await self._finish(snap, finished_plan(status, pods))
        urgency = _urgency(status, memory)
        compiled = self._compile(snap, status)
        result = self._plan(snap, compiled, status, pods, memory)
        assert isinstance(compiled, CompiledPipeline) or not result.create
        for _ in range(3):  # creates rejected by admission fail their step; plan again
            if not (result.create or result.builds) or not isinstance(compiled, CompiledPipeline):
                break
            if result.ensure_claim and not memory.claim:
                await self.kube.create_claim(snap.namespace, claim_manifest(snap.ref, compiled))
                memory.claim = True
            rejected = await self._ensure_build_secret(snap, result, memory)
            rejected = rejected or await self._create_pods(snap, compiled, result, memory, urgency)
            if not rejected:
                break
            memory.rejected.update(rejected)
            pods = list({p.name: p for p in (*pods, *memory.created.values())}.values())
            result = self._plan(snap, compiled, status, pods, memory)
            result = _without_created(result, memory)
        new, old = dump_status(result.status), dump_status(status)
        if new != old and not _only_node_learned(new, old):
            await self.kube.patch_status(snap.namespace, snap.name, new)
        if memory.written is None:
            metrics.track_new(status.phase)
        metrics.record_transition(status, result.status, len(result.create))
        memory.written = json.dumps(new, separators=(",", ":"))
        memory.phase = result.status.phase
        if result.status.phase.terminal:
            # Done: from now on only a stray pod is stopped, which needs no spec.
            for done in [k for k in self.compiled if k[:2] == (snap.uid, snap.generation)]:
                del self.compiled[done]
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

    async def _create_pods(
        self,
        snap: PipelineSnapshot,
        compiled: CompiledPipeline,
        result: Plan,
        memory: _Memory,
        urgency: Priority,
    ) -> dict[str, str]:
        node = result.status.node_name

        async def create_one(name: str, manifest: Manifest) -> tuple[str, str | None]:
            try:
                body = await self.kube.create_pod(snap.namespace, manifest, urgency)
            except KubeError as exc:
                if exc.permanent:
                    return name, f"the pod was rejected: {exc}"
                raise
            if body is not None and (view := pod_view(body)) is not None:
                memory.created[name] = view
            return name, None

        manifests = [
            (b.name, build_manifest(snap.ref, compiled, b, self.settings.build, node, self.options))
            for b in result.builds
            if b.name not in memory.created
        ]
        manifests += [
            (c.name, pod_manifest(snap.ref, compiled, c, node, self.options, result.status.source))
            for c in result.create
            if c.name not in memory.created
        ]
        outcomes = await asyncio.gather(*(create_one(n, m) for n, m in manifests))
        return {name: message for name, message in outcomes if message is not None}

    async def _ensure_build_secret(
        self, snap: PipelineSnapshot, result: Plan, memory: _Memory
    ) -> dict[str, str]:
        """The builder's certificate is copied before the first build pod, or the builds are
        refused (their pods would wait for a missing Secret forever)."""
        if not result.build_secret or memory.build_secret:
            return {}
        problem = await self.build_secrets.ensure(snap.ref)
        memory.build_secret = problem is None
        return {b.name: problem for b in result.builds} if problem else {}

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


def _urgency(status: PipelineStatus, memory: _Memory) -> Priority:
    """How soon this pipeline's new pods should go, when API calls have to queue.

    A pipeline found running after a restart first, then steps of started pipelines; a
    pipeline not started yet last, behind even status patches: under a burst, pipelines
    already running finish at full speed instead of all of them slowing down together.
    """
    if not any(step.pod for step in status.steps):
        return Priority.START
    if memory.written is None and status.phase == PipelinePhase.RUNNING:
        return Priority.RESUME  # running before this operator process saw it
    return Priority.STEP


def _only_node_learned(new: Manifest, old: Manifest) -> bool:
    """The one change is the node a ReadWriteOnce workspace is pinned to, just scheduled.

    Not worth a write of its own: the planner finds the node again from the pods, and the
    next real change (the step's end) writes it with the rest of the status.
    """
    return (
        "nodeName" in new
        and "nodeName" not in old
        and {**new, "nodeName": None} == {**old, "nodeName": None}
    )


def _without_created(result: Plan, memory: _Memory) -> Plan:
    """After a re-plan, pods created in the first round are not created again."""
    return replace(
        result,
        create=tuple(c for c in result.create if c.name not in memory.created),
        builds=tuple(b for b in result.builds if b.name not in memory.created),
    )
