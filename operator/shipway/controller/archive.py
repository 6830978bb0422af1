"""The history's shell: run records flushed in batches, finished pods' logs archived, old
Pipelines pruned and old records expired, in one background task of the operator.

Nothing here stands in the way of a step: the reconciler never waits for the store. Records
are written every ``flush_seconds`` for the pipelines that changed meanwhile (one
transaction, whatever the number of events); a finished pod's logs are read once each
(one API call per container, in the history's own threads) and stored in one transaction per
pod, so an operator killed mid-way leaves either all of a pod's logs or none, and the next
one archives them once. When the store is down everything waits and is tried again with
backoff; a Pipeline whose logs are not archived is never pruned, and a metric and an Event
say the archive is behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter, Gauge

from shipway.controller.historyconfig import HistorySettings
from shipway.controller.kube import EventTarget, KubeError, LogRead
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Key, Manifest
from shipway.engine.observe import PodView, parse_time
from shipway.history.logs import Masker
from shipway.history.masking import masked_values, referenced_secrets
from shipway.history.records import RunRecord, build_record
from shipway.history.retention import (
    CONFIG_MAP,
    Policy,
    Run,
    decide,
    namespace_policy,
    record_cutoff,
)
from shipway.history.store import ArchivedLog, HistoryStore, SqlStore
from shipway.models.durations import parse_duration

log = logging.getLogger("shipway")
T = TypeVar("T")

PENDING_LOGS = Gauge("shipway_history_pending_pods", "Finished pods whose logs wait for archive.")
ARCHIVED = Counter("shipway_history_logs_archived_total", "Container logs archived.")
STORE_ERRORS = Counter("shipway_history_store_errors_total", "History store calls that failed.")
BEHIND = Gauge("shipway_history_behind_seconds", "Seconds the history store has been failing.")
PRUNED = Counter("shipway_history_pipelines_pruned_total", "Finished Pipelines deleted.")

BEHIND_EVENT_AFTER = 60.0
"""Seconds of failing store before each waiting pipeline gets a Warning Event (once)."""
PODS_PER_ROUND = 200
EXPIRE_EVERY = 3600.0


class HistoryApi(Protocol):
    async def read_log(
        self, namespace: str, pod: str, container: str, cap: int
    ) -> LogRead | None: ...
    async def get_secret(self, namespace: str, name: str) -> Manifest | None: ...
    async def get_config_map(self, namespace: str, name: str) -> Manifest | None: ...
    async def delete_pipeline(self, namespace: str, name: str, uid: str) -> None: ...
    async def emit_event(
        self, target: EventTarget, type_: str, reason: str, message: str
    ) -> None: ...


@dataclass(slots=True)
class _Pending:
    key: Key
    run_uid: str
    pod: str
    pod_uid: str
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Facts:
    """The few facts of a written record the archiver keeps (not its status: memory)."""

    project: str
    branch: str
    phase: str
    finished_at: datetime | None
    secrets: tuple[str, ...]
    """The Secrets its spec names: their values are masked in its logs."""

    @classmethod
    def of(cls, record: RunRecord) -> _Facts:
        names = referenced_secrets(json.loads(record.spec_json))
        return cls(
            record.project, record.branch, record.phase, record.finished_at, tuple(sorted(names))
        )


@dataclass(slots=True)
class _RunState:
    """What the archiver knows of one run."""

    pods_done: set[str] = field(default_factory=set)
    masker: Masker | None = None
    facts: _Facts | None = None
    """What retention and masking need of its record, once the record is written."""
    warned: bool = False


class Archiver:
    def __init__(
        self,
        settings: HistorySettings,
        kube: HistoryApi,
        open_store: Callable[[str], HistoryStore] = SqlStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.open_store = open_store
        self.clock = clock
        self.store: HistoryStore | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-store")
        self.dirty: dict[str, PipelineSnapshot] = {}
        """By UID: a Pipeline deleted and made again under its name is two runs."""
        self.pending: dict[str, _Pending] = {}
        self.runs: dict[str, _RunState] = {}
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
        state = self.runs.setdefault(snap.uid, _RunState())
        for pod in pods:
            if pod.owner_uid != snap.uid or pod.active:
                continue
            if pod.uid in state.pods_done or pod.uid in self.pending:
                continue
            containers = tuple(c.name for c in (pod.main, *pod.sidecars) if c is not None)
            self.pending[pod.uid] = _Pending(
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
            await asyncio.wait_for(self._flush_records(), timeout)
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

    async def _flush_records(self) -> None:
        if not self.dirty or self.store is None:
            return
        batch, self.dirty = self.dirty, {}
        try:
            records = await self._in_thread(_records, list(batch.values()))
            await self._in_thread(self.store.save_runs, [r for r, _ in records])
        except BaseException:
            for key, snap in batch.items():  # newer snapshots noted meanwhile win
                self.dirty.setdefault(key, snap)
            raise
        for record, facts in records:
            self.runs.setdefault(record.uid, _RunState()).facts = facts
            self._drop_if_done(record.uid)

    async def _archive(self) -> None:
        if not self.pending or self.store is None:
            return
        todo = list(self.pending.values())[:PODS_PER_ROUND]
        found = await self._in_thread(self.store.archived, [p.pod_uid for p in todo])
        for item in todo:
            if item.pod_uid in found:
                self._done(item)
        todo = [item for item in todo if item.pod_uid not in found]
        limit = asyncio.Semaphore(2)

        async def one(item: _Pending) -> None:
            async with limit:
                await self._archive_pod(item)

        results = await asyncio.gather(*(one(item) for item in todo), return_exceptions=True)
        PENDING_LOGS.set(len(self.pending))
        for item, result in zip(todo, results, strict=True):
            if isinstance(result, KubeError):  # this pod only: it waits, the others go on
                log.warning(
                    "history: logs of pod %s/%s not read: %s", item.key[0], item.pod, result
                )
            elif isinstance(result, BaseException):
                raise result  # the store: the whole round waits and is tried again

    async def _archive_pod(self, item: _Pending) -> None:
        namespace = item.key[0]
        masker = await self._masker(item)
        if masker is None:
            return  # next round, once its record is written
        logs: list[ArchivedLog] = []
        for container in item.containers:
            read = await self.kube.read_log(namespace, item.pod, container, self.settings.log_cap)
            if read is None:  # the pod is gone: its logs with it
                log.warning("history: pod %s/%s went before its log was read", namespace, item.pod)
                self.pending.pop(item.pod_uid, None)
                return
            text = read.data.decode("utf-8", errors="replace")
            text = masker.mask(text)
            logs.append(
                ArchivedLog(
                    item.run_uid, item.pod, item.pod_uid, container, text, read.size, read.truncated
                )
            )
        if not logs:  # no container ever started: remember the pod, with nothing to show
            logs.append(ArchivedLog(item.run_uid, item.pod, item.pod_uid, "", "", 0))
        assert self.store is not None
        await self._in_thread(self.store.save_logs, logs)
        ARCHIVED.inc(len(logs))
        self._done(item)

    def _done(self, item: _Pending) -> None:
        self.pending.pop(item.pod_uid, None)
        self.runs.setdefault(item.run_uid, _RunState()).pods_done.add(item.pod_uid)
        self._drop_if_done(item.run_uid)

    async def _masker(self, item: _Pending) -> Masker | None:
        """The values to mask in this run's logs: those of the Secrets its spec names,
        read once per run (a Secret the operator may not read is left unmasked, and said).
        None until the run's record is written: its spec names the Secrets."""
        state = self.runs.setdefault(item.run_uid, _RunState())
        if state.masker is not None:
            return state.masker
        if state.facts is None:
            return None
        secrets: list[Manifest] = []
        for name in state.facts.secrets:
            try:
                found = await self.kube.get_secret(item.key[0], name)
            except KubeError as exc:
                log.warning(
                    "history: Secret %s/%s not read for masking: %s", item.key[0], name, exc
                )
                continue
            if found is not None:
                secrets.append(found)
        state.masker = Masker(masked_values(secrets))
        return state.masker

    async def _prune(
        self,
        pipelines: Mapping[Key, PipelineSnapshot],
        pods: Callable[[Key], list[PodView]],
    ) -> None:
        policy = self.settings.policy
        runs: dict[Key, tuple[Run, PipelineSnapshot]] = {}
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
            runs[key] = (run, snap)
        namespaces = {run.namespace for run, _ in runs.values()}
        overrides = {ns: await self._namespace_policy(ns) for ns in sorted(namespaces)}
        decision = decide((r for r, _ in runs.values()), policy, self.clock(), overrides)
        for run in decision.prune:
            snap = runs[(run.namespace, run.name)][1]
            await self.kube.delete_pipeline(run.namespace, run.name, snap.uid)
            self.pruned.add(snap.uid)
            PRUNED.inc()
            log.info("history: pruned %s/%s (%s)", run.namespace, run.name, run.phase)

    async def _namespace_policy(self, namespace: str) -> Policy:
        """The namespace's ``shipway-retention`` ConfigMap over the operator's policy. A bad
        one stops pruning there (a typo must never prune more than asked), and says so."""
        found = await self.kube.get_config_map(namespace, CONFIG_MAP)
        if found is None:
            return self.settings.policy
        try:
            return namespace_policy(found.get("data") or {}, self.settings.policy, parse_duration)
        except ValueError as exc:
            log.warning("history: %s/%s; nothing is pruned there", namespace, exc)
            return replace(self.settings.policy, enabled=False)

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
            state = self.runs.setdefault(item.run_uid, _RunState())
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
        return await asyncio.get_running_loop().run_in_executor(self.thread, fn, *args)


def _records(snaps: list[PipelineSnapshot]) -> list[tuple[RunRecord, _Facts]]:
    """Records of the snapshots (in the store's thread: a status is parsed here, not in the
    event loop)."""
    records = []
    for snap in snaps:
        body = {
            "metadata": {
                "name": snap.name,
                "namespace": snap.namespace,
                "uid": snap.uid,
                "creationTimestamp": snap.created_at,
                "generateName": snap.generate_name,
                "annotations": {"shipway.dev/keep": "true"} if snap.keep else {},
            },
            "spec": json.loads(snap.spec_json),
            "status": json.loads(snap.status_json),
        }
        record = build_record(body)
        records.append((record, _Facts.of(record)))
    return records
