"""The running operator in one object: the Pipeline snapshots, the pod watches, the work
queue and the reconciler. The Pipeline watch (:mod:`shipway.controller.pipelinewatch`),
pod watch events and timers reach it directly; kopf's part is peering: which replica acts.

No pipeline is planned before the pods of its namespace have been listed once, so after a
(re)start the first decisions already see every existing pod and never recreate a step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from shipway.controller import callpool, heap, metrics
from shipway.controller.config import OperatorConfig
from shipway.controller.kube import KubeError
from shipway.controller.reconciler import KubeApi, Reconciler
from shipway.controller.snapshot import PipelineSnapshot
from shipway.controller.workqueue import WorkQueue
from shipway.engine.objects import Key
from shipway.engine.plan.claims import ClaimStore
from shipway.engine.podstore import PodStore
from shipway.engine.slots import NamespaceSlots

if TYPE_CHECKING:  # the history stack (SQLAlchemy, ~20 MB) is imported only when it is on
    from shipway.controller.archive import Archiver, HistoryApi
    from shipway.controller.pipelinewatch import PipelineWatches

log = logging.getLogger("shipway")


class Watches(Protocol):
    """The step pods' list and watch (:class:`~shipway.controller.podwatch.PodWatches`)."""

    store: PodStore

    async def ready(self, namespace: str) -> None: ...
    def stop(self) -> None: ...


if TYPE_CHECKING:

    class OperatorApi(KubeApi, HistoryApi, Protocol):
        """Every call the operator makes: the reconciler's and the history's."""


class ClaimWatches(Protocol):
    """The claims' list and watch (:class:`~shipway.controller.claimwatch.ClaimWatches`)."""

    store: ClaimStore

    async def ready(self, namespace: str) -> None: ...
    def stop(self) -> None: ...


class Operator:
    def __init__(
        self,
        config: OperatorConfig,
        kube: OperatorApi,
        watches: Callable[[Callable[[Key], None]], Watches] | None = None,
    ) -> None:
        """``watches`` makes the pod watches (tests give fakes; then no claim is watched,
        the reconciler reads a pipeline's claim when it needs it)."""
        self.config = config
        self.kube = kube
        self.pipelines: dict[Key, PipelineSnapshot] = {}
        """The latest snapshot of every Pipeline, from the Pipeline watch."""
        # Namespaces take turns: a pipeline due again at once lets other namespaces' runs go.
        self.queue: WorkQueue[Key] = WorkQueue(self._work, self._failed, group=_namespace)
        self.claims: ClaimWatches | None = None
        if watches is None:
            from shipway.controller.claimwatch import ClaimWatches as RealClaimWatches
            from shipway.controller.podwatch import PodWatches

            self.watches: Watches = PodWatches(self.queue.add, config.clusterwide)
            self.claims = RealClaimWatches(self.queue.add, config.clusterwide)
        else:
            self.watches = watches(self.queue.add)
        # Every pod the watch shows is counted by namespace; a freed slot wakes a pipeline
        # held by the namespace cap.
        self.slots = NamespaceSlots(config.max_namespace_pods, wake=self.queue.add)
        self.watches.store.slots = self.slots
        self.reconciler = Reconciler(
            kube,
            config.settings,
            config.pods,
            claims=self.claims.store if self.claims is not None else None,
            slots=self.slots,
        )
        # A pod change the pipeline's last plan says cannot matter wakes no reconcile.
        self.watches.store.quiet = self.reconciler.quiet
        self._trim: asyncio.Task[None] | None = None
        self.following: PipelineWatches | None = None
        self.archiver: Archiver | None = None
        if config.history.url is not None:
            from shipway.controller.archive import Archiver

            self.archiver = Archiver(config.history, kube)

    def start(self) -> None:
        """Start the background chores (in the event loop)."""
        heap.limit_arenas()  # before the API thread pools start
        self._trim = asyncio.ensure_future(heap.trim_every(10.0))
        if self.archiver is not None:
            self.archiver.start(lambda: self.pipelines, self.watches.store.pods)

    def follow(self) -> None:
        """Watch the Pipelines of the operator's namespaces (from a fresh list): this
        replica acts. Called at start, or by kopf peering's gate when it lets this one on."""
        if self.following is None:
            from shipway.controller.pipelinewatch import PipelineFeed, PipelineWatches

            feed = PipelineFeed(self.pipeline_changed, self.pipeline_gone, self.pipelines.keys)
            self.following = PipelineWatches(
                feed,
                self.config.namespaces,
                clusterwide=self.config.clusterwide,
                scanning=self.config.scanning,
            )
        self.following.start()

    def unfollow(self) -> None:
        """Stop watching the Pipelines (peering paused this replica)."""
        if self.following is not None:
            self.following.stop()

    def pipeline_gone(self, key: Key) -> None:
        """A Pipeline found missing from a relist: deleted while the watch was away."""
        snap = self.pipelines.pop(key, None)
        if snap is None:
            return
        if self.archiver is not None:
            self.archiver.forget(snap.uid)  # its last state noted already is its record
        self.queue.add(key)

    def pipeline_changed(self, body: Mapping[str, Any], deleted: bool) -> None:
        """Note a Pipeline's latest state and queue its reconcile."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        previous = self.pipelines.get(key)
        snap = PipelineSnapshot.from_body(body, previous)
        if self.archiver is not None:
            self.archiver.note(snap)  # a deleted one too: its last state is its record
        if deleted:
            self.pipelines.pop(key, None)
            if self.archiver is not None:
                self.archiver.forget(snap.uid)
        else:
            self.pipelines[key] = snap
            if snap.only_status_changed(previous) and self.reconciler.follows(key, snap.uid):
                # The echo of its own status write: the reconciler plans from what it wrote,
                # so a reconcile would find nothing to do (a third of all reconciles, measured).
                metrics.ECHOES_SKIPPED.inc()
                return
        self.queue.add(key)

    async def _work(self, key: Key) -> float | None:
        callpool.GROUP.set(key[0])  # its API calls take the namespace's turns (this task's)
        await self.watches.ready(key[0])
        if self.claims is not None:
            await self.claims.ready(key[0])
        snap = self.pipelines.get(key)
        pods = self.watches.store.pods(key)
        result = await self.reconciler.reconcile(snap, pods, key)
        if self.archiver is not None and snap is not None:
            self.archiver.note_pods(snap, pods)
        if result is None:  # gone
            self.queue.forget(key)
            return None
        return result.requeue_after

    def _failed(self, key: Key, error: Exception, delay: float) -> None:
        namespace, name = key
        if isinstance(error, KubeError):
            metrics.API_ERRORS.labels(str(error.status)).inc()
            log.warning(
                "%s/%s: %s (HTTP %s); again in %.1fs", namespace, name, error, error.status, delay
            )
        else:
            log.error("%s/%s: %r; again in %.1fs", namespace, name, error, delay, exc_info=error)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop watching, let reconciles in progress and queued Events end within ``timeout``."""
        if self._trim is not None:
            self._trim.cancel()
        self.unfollow()
        self.watches.stop()
        if self.claims is not None:
            self.claims.stop()
        await self.queue.close(timeout)
        if self.archiver is not None:
            await self.archiver.stop(timeout)
        background = list(self.reconciler.background)
        if background:
            _, pending = await asyncio.wait(background, timeout=timeout)
            for task in pending:
                task.cancel()
        close = getattr(self.kube, "close", None)
        if callable(close):
            close()


def _namespace(key: Key) -> str:
    return key[0]
