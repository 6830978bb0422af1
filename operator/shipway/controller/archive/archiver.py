"""The archiver: one background task that writes records, archives logs, prunes and expires,
each round in that order, and backs off while the store fails."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from shipway.controller import metrics
from shipway.controller.archive import runs as run_records
from shipway.controller.archive.podlogs import masker_for, read_pods_logs
from shipway.controller.archive.pruning import prune
from shipway.controller.archive.runs import HistoryApi, Pending, RunState, retry_delay
from shipway.controller.historyconfig import HistorySettings
from shipway.controller.kube import EventTarget, KubeError
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Key
from shipway.engine.observe import PodView, parse_time
from shipway.history.logs import Masker
from shipway.history.retention import Run, record_cutoff
from shipway.history.store import HistoryStore, SqlStore

log = logging.getLogger("shipway")
T = TypeVar("T")

PENDING_LOGS = Gauge("shipway_history_pending_pods", "Finished pods whose logs wait for archive.")
ARCHIVED = Counter("shipway_history_logs_archived_total", "Container logs archived.")
STORE_ERRORS = Counter("shipway_history_store_errors_total", "History store calls that failed.")
BEHIND = Gauge("shipway_history_behind_seconds", "Seconds the history store has been failing.")

BEHIND_EVENT_AFTER = 60.0
"""Seconds of failing store before each waiting pipeline gets a Warning Event (once)."""
PODS_PER_ROUND = 200
PODS_PER_READ = 20
"""Pods whose logs one of the history's two threads reads in one go: handing each read to
a thread and back cost as much CPU as the read itself."""
EXPIRE_EVERY = 3600.0
RECORD_EVERY = 30.0
"""Seconds between two records of a running pipeline (its first record, its final one and
a deleted one's are written with the next batch)."""
LOG_BYTES_PER_WRITE = 8 * 1024 * 1024
"""A round's logs go to the store in one transaction, or one per this many bytes read (a
round of long logs is not held in memory whole)."""


class Archiver:
    def __init__(
        self,
        settings: HistorySettings,
        kube: HistoryApi,
        open_store: Callable[[str], HistoryStore] = SqlStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.open_store = open_store
        self.clock = clock
        self.monotonic = monotonic
        self.store: HistoryStore | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-store")
        self.dirty: dict[str, PipelineSnapshot] = {}
        """By UID: a Pipeline deleted and made again under its name is two runs."""
        self.pending: dict[str, Pending] = {}
        self.runs: dict[str, RunState] = {}
        self.failing_since: float | None = None
        self.gone: set[str] = set()
        """UIDs of Pipelines deleted: forgotten once written and read."""
        self.pruned: set[str] = set()
        """UIDs of Pipelines deleted, until their deletion is seen."""
        self.last_prune = 0.0
        self.last_expire = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- fed by the operator (event loop thread) --------------------------------------------
    def note(self, snap: PipelineSnapshot) -> None:
        """A Pipeline changed: its record is written with the next batch."""
        self.dirty[snap.uid] = snap

    def note_pods(self, snap: PipelineSnapshot, pods: Iterable[PodView]) -> None:
        """Queue the finished pods of a pipeline whose logs are not archived yet."""
        state = self.runs.setdefault(snap.uid, RunState())
        for pod in pods:
            if pod.owner_uid != snap.uid or pod.active:
                continue
            if pod.uid in state.pods_done or pod.uid in self.pending:
                continue
            containers = tuple(c.name for c in (pod.main, *pod.sidecars) if c is not None)
            self.pending[pod.uid] = Pending(
                (snap.namespace, snap.name), snap.uid, pod.name, pod.uid, containers
            )
        PENDING_LOGS.set(len(self.pending))

    def archived(self, snap: PipelineSnapshot, pods: Iterable[PodView]) -> bool:
        """Every pod of the run has finished and its logs are in the store, and so is its
        latest record: the Pipeline may go."""
        state = self.runs.get(snap.uid)
        if state is None or snap.uid in self.dirty:
            return False
        return all(
            not pod.active and pod.uid in state.pods_done
            for pod in pods
            if pod.owner_uid == snap.uid
        )

    # -- the background task ----------------------------------------------------------------
    def start(
        self,
        pipelines: Callable[[], Mapping[Key, PipelineSnapshot]],
        pods: Callable[[Key], list[PodView]],
    ) -> None:
        self._task = asyncio.ensure_future(self._run(pipelines, pods))

    async def stop(self, timeout: float = 5.0) -> None:
        """Write the records in hand (within ``timeout``), then stop."""
        if self._task is not None:
            self._task.cancel()
        try:
            await asyncio.wait_for(self._flush_records(every=0), timeout)
        except Exception as exc:  # the store may be down: the records are written next start
            log.warning("history: records not written at exit: %s", exc)
        if self.store is not None:
            await self._in_thread(self.store.close)
        self.thread.shutdown(wait=False, cancel_futures=True)

    async def _run(
        self,
        pipelines: Callable[[], Mapping[Key, PipelineSnapshot]],
        pods: Callable[[Key], list[PodView]],
    ) -> None:
        delay = self.settings.flush_seconds
        while True:
            await asyncio.sleep(delay)
            try:
                await self.round(pipelines(), pods)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(max(delay * 2, 1.0), 60.0)
                self._failing(exc, delay)
                await self._warn_behind(exc)
            else:
                delay = self.settings.flush_seconds
                self.failing_since = None
                BEHIND.set(0)

    async def round(
        self,
        pipelines: Mapping[Key, PipelineSnapshot],
        pods: Callable[[Key], list[PodView]],
    ) -> None:
        """One pass: open the store if needed, records, logs, then pruning and expiry."""
        if self.store is None:
            url = self.settings.url
            assert url is not None
            self.store = await self._in_thread(self.open_store, url)
        await self._flush_records()
        await self._archive()
        now = time.monotonic()
        if now - self.last_prune >= self.settings.prune_seconds:
            self.last_prune = now
            await self._prune(pipelines, pods)
        if now - self.last_expire >= EXPIRE_EVERY:
            self.last_expire = now
            policy = self.settings.policy
            cutoff = record_cutoff(policy, self.clock())
            store = self.store
            dropped = await self._in_thread(store.expire, cutoff, policy.store_bytes)
            if dropped:
                log.info("history: %d runs older than the retention left the store", dropped)

    async def _flush_records(self, every: float = RECORD_EVERY) -> None:
        """Write the records of the pipelines that changed, in one transaction; a running
        one whose record is younger than ``every`` seconds waits for a later batch."""
        if not self.dirty or self.store is None:
            return
        now = self.monotonic()
        recent, specs = set(), {}
        for uid in self.dirty:
            state = self.runs.get(uid)
            if state is None:
                continue
            if state.spec is not None:
                specs[uid] = state.spec
            written = state.written_at
            if written is not None and now - written < every and uid not in self.gone:
                recent.add(uid)
        batch, self.dirty = self.dirty, {}
        try:
            built = await self._in_thread(
                run_records.records, list(batch.values()), specs, frozenset(recent)
            )
            if built.records:
                await self._in_thread(self.store.save_runs, [r for r, _ in built.records])
        except BaseException:
            for key, snap in batch.items():  # newer snapshots noted meanwhile win
                self.dirty.setdefault(key, snap)
            raise
        for snap in built.held:
            self.dirty.setdefault(snap.uid, snap)
        for record, facts in built.records:
            state = self.runs.setdefault(record.uid, RunState())
            state.facts, state.written_at = facts, now
            state.spec = built.specs.get(record.uid, state.spec)
            self._drop_if_done(record.uid)

    async def _archive(self) -> None:
        """Read the logs of the pods due and store them, one transaction per round (or per
        :data:`LOG_BYTES_PER_WRITE`): a transaction holds whole pods, so a kill leaves each
        pod's logs all in or none."""
        if not self.pending or self.store is None:
            return
        now = self.monotonic()
        todo = [p for p in self.pending.values() if p.not_before <= now][:PODS_PER_ROUND]
        unchecked = [p.pod_uid for p in todo if not p.checked]
        if unchecked:  # once per pod: archived by an operator before this one?
            found = await self._in_thread(self.store.archived, unchecked)
            for item in todo:
                item.checked = True
                if item.pod_uid in found:
                    self._done(item)
            todo = [item for item in todo if item.pod_uid not in found]
        batch = _Batch(self._save)
        limit = asyncio.Semaphore(2)

        async def some(items: list[Pending]) -> None:
            unread = [item for item in items if item.logs is None]
            if unread:
                async with limit:
                    if batch.failed:
                        return  # the store fails: no more reads this round
                    await self._read(unread)
            for item in items:
                if item.logs is not None:
                    await batch.add(item)

        parts = [todo[i : i + PODS_PER_READ] for i in range(0, len(todo), PODS_PER_READ)]
        results = await asyncio.gather(*(some(part) for part in parts), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is None:
            await batch.flush()
        PENDING_LOGS.set(len(self.pending))
        if failure is not None:
            raise failure  # the store: the whole round waits and is tried again

    async def _read(self, items: list[Pending]) -> None:
        """Read the pods' logs into their ``logs``; a failed read waits (backoff), alone."""
        ready = []
        for item in items:
            masker = await self._masker(item)
            if masker is not None:  # else next round, once its record is written
                ready.append((item, masker))
        results = await read_pods_logs(self.kube, ready, self.settings.log_cap)
        for (item, _), logs in zip(ready, results, strict=True):
            if isinstance(logs, KubeError):  # this pod only: it waits, the others go on
                item.failures += 1
                delay = retry_delay(item.failures)
                item.not_before = self.monotonic() + delay
                log.warning(
                    "history: logs of pod %s/%s not read: %s; again in %.0fs",
                    item.key[0],
                    item.pod,
                    logs,
                    delay,
                )
            elif logs is None:  # the pod is gone: its logs with it
                self.pending.pop(item.pod_uid, None)
            else:
                item.failures, item.logs = 0, logs

    async def _save(self, items: list[Pending]) -> None:
        """Store the logs read of ``items`` in one transaction; they stay in memory (not read
        again) while the store fails."""
        assert self.store is not None
        logs = [entry for item in items for entry in item.logs or ()]
        await self._in_thread(self.store.save_logs, logs)
        ARCHIVED.inc(len(logs))
        for item in items:
            item.logs = None
            self._done(item)

    def _done(self, item: Pending) -> None:
        self.pending.pop(item.pod_uid, None)
        self.runs.setdefault(item.run_uid, RunState()).pods_done.add(item.pod_uid)
        self._drop_if_done(item.run_uid)

    async def _masker(self, item: Pending) -> Masker | None:
        """The run's masker, made once per run; None until its record is written (its spec
        names the Secrets)."""
        state = self.runs.setdefault(item.run_uid, RunState())
        if state.masker is None and state.facts is not None:
            state.masker = await masker_for(self.kube, item.key[0], state.facts)
        return state.masker

    async def _prune(
        self,
        pipelines: Mapping[Key, PipelineSnapshot],
        pods: Callable[[Key], list[PodView]],
    ) -> None:
        candidates = []
        for key, snap in pipelines.items():
            state = self.runs.get(snap.uid)
            record = state.facts if state is not None else None
            if record is None or snap.deleting or snap.uid in self.pruned:
                continue
            run = Run(
                namespace=snap.namespace,
                name=snap.name,
                project=record.project,
                branch=record.branch,
                phase=record.phase,
                finished_at=record.finished_at,
                created_at=parse_time(snap.created_at),
                keep=snap.keep,
                archived=self.archived(snap, pods(key)),
            )
            candidates.append((run, snap))
        await prune(self.kube, self.settings.policy, self.clock(), candidates, pruned=self.pruned)

    def forget(self, uid: str) -> None:
        """A Pipeline is gone: once its last record is written and its queued pods are read
        (while they last), nothing of it stays in memory."""
        self.pruned.discard(uid)
        self.gone.add(uid)
        self._drop_if_done(uid)

    def _drop_if_done(self, uid: str) -> None:
        if uid not in self.gone or uid in self.dirty:
            return
        if not any(p.run_uid == uid for p in self.pending.values()):
            self.runs.pop(uid, None)
            self.gone.discard(uid)

    def _failing(self, exc: Exception, delay: float) -> None:
        STORE_ERRORS.inc()
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        BEHIND.set(now - self.failing_since)
        log.warning("history: %s; again in %.0fs (%d pods wait)", exc, delay, len(self.pending))

    async def _warn_behind(self, exc: Exception) -> None:
        if self.failing_since is None or time.monotonic() - self.failing_since < BEHIND_EVENT_AFTER:
            return
        for item in list(self.pending.values()):
            state = self.runs.setdefault(item.run_uid, RunState())
            if state.warned:
                continue
            state.warned = True
            target = EventTarget(item.key[1], item.key[0], item.run_uid)
            message = f"its logs wait for the history store, which fails: {exc}"[:1024]
            try:
                await self.kube.emit_event(target, "Warning", "HistoryBehind", message)
            except KubeError as error:
                log.warning("history: event not recorded: %s", error)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        def timed() -> T:
            started = time.thread_time()
            try:
                return fn(*args)
            finally:
                metrics.HISTORY_CPU.labels("store").inc(time.thread_time() - started)

        return await asyncio.get_running_loop().run_in_executor(self.thread, timed)


class _Batch:
    """Pods whose logs are read, written together once enough bytes wait or at the end."""

    def __init__(self, save: Callable[[list[Pending]], Awaitable[None]]) -> None:
        self.save = save
        self.items: list[Pending] = []
        self.size = 0
        self.failed = False

    async def add(self, item: Pending) -> None:
        self.items.append(item)
        self.size += sum(len(entry.text) for entry in item.logs or ())
        if self.size >= LOG_BYTES_PER_WRITE:
            await self.flush()

    async def flush(self) -> None:
        items, self.items, self.size = self.items, [], 0
        if not items:
            return
        try:
            await self.save(items)
        except BaseException:
            self.failed = True
            raise
