"""What the archiver knows of each run: pods waiting for their logs, the few facts of its
written record, and the records themselves built from the operator's snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shipway.controller.kube import EventTarget, KubeError, LogRead, PodLogs
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Key, Manifest
from shipway.history.logs import Masker
from shipway.history.masking import referenced_secrets
from shipway.history.records import RunRecord, build_record
from shipway.history.store import ArchivedLog


class HistoryApi(Protocol):
    async def read_log(
        self, namespace: str, pod: str, container: str, cap: int
    ) -> LogRead | None: ...
    async def read_logs(
        self, pods: list[PodLogs], cap: int
    ) -> list[list[LogRead] | KubeError | None]: ...
    async def get_secret(self, namespace: str, name: str) -> Manifest | None: ...
    async def get_config_map(self, namespace: str, name: str) -> Manifest | None: ...
    async def delete_pipeline(self, namespace: str, name: str, uid: str) -> None: ...
    async def emit_event(
        self, target: EventTarget, type_: str, reason: str, message: str
    ) -> None: ...


@dataclass(slots=True)
class Pending:
    """A finished pod whose logs wait to be archived."""

    key: Key
    run_uid: str
    pod: str
    pod_uid: str
    containers: tuple[str, ...]
    failures: int = 0
    """Reads of its logs that failed in a row: the next waits :func:`retry_delay` of it."""
    not_before: float = 0.0
    """The monotonic time before which its logs are not read again."""
    checked: bool = False
    """The store was asked whether its logs are in already (once: after a restart)."""
    logs: list[ArchivedLog] | None = None
    """Its logs once read, until they are in the store (a store that fails does not make
    them read again)."""


RETRY_FIRST = 2.0
RETRY_MAX = 60.0


def retry_delay(failures: int) -> float:
    """Seconds before a failed log read is tried again: 2 s doubling to 60 s, as the
    store's own retries (a pod whose log cannot be read must not cost a call per round)."""
    return min(RETRY_FIRST * 2.0 ** max(failures - 1, 0), RETRY_MAX)


@dataclass(frozen=True, slots=True)
class Facts:
    """The few facts of a written record the archiver keeps (not its status: memory)."""

    project: str
    branch: str
    phase: str
    finished_at: datetime | None
    secrets: tuple[str, ...]
    """The Secrets its spec names: their values are masked in its logs."""


@dataclass(slots=True)
class RunState:
    """What the archiver knows of one run."""

    pods_done: set[str] = field(default_factory=set)
    masker: Masker | None = None
    facts: Facts | None = None
    """What retention and masking need of its record, once the record is written."""
    warned: bool = False
    written_at: float | None = None
    """When its record was last written (monotonic): a running one waits a while for the next."""
    spec: SpecFacts | None = None


FINISHED = ("Succeeded", "Failed", "Cancelled")


@dataclass(frozen=True, slots=True)
class SpecFacts:
    """What a record takes of a spec, derived once per spec (a spec seldom changes; its
    status changes with every step)."""

    spec_json: str
    """The snapshot's spec JSON it was derived from."""
    spec: dict[str, Any]
    record_json: str
    secrets: tuple[str, ...]

    @classmethod
    def of(cls, spec_json: str) -> SpecFacts:
        spec = json.loads(spec_json)
        record_json = json.dumps(spec, separators=(",", ":"), sort_keys=True)
        return cls(spec_json, spec, record_json, tuple(sorted(referenced_secrets(spec))))


@dataclass(slots=True)
class Written:
    """A batch of records built (in the store's thread) and the snapshots held back."""

    records: list[tuple[RunRecord, Facts]] = field(default_factory=list)
    held: list[PipelineSnapshot] = field(default_factory=list)
    """Running pipelines whose record was written lately: written later."""
    specs: dict[str, SpecFacts] = field(default_factory=dict)
    """The spec facts of each record built, by UID, to be kept for the next batch."""


def records(
    snaps: list[PipelineSnapshot],
    specs: dict[str, SpecFacts],
    recent: frozenset[str] = frozenset(),
) -> Written:
    """Records of the snapshots (in the store's thread: a status is parsed here, not in the
    event loop). A snapshot of a run in ``recent`` (its record written lately) is held back
    unless it is finished or being deleted: a running pipeline's record is refreshed now and
    then, not at every batch. ``specs``: each run's spec facts from its last batch (by UID)."""
    out = Written()
    for snap in snaps:
        status = json.loads(snap.status_json)
        finished = status.get("phase") in FINISHED or snap.deleting
        if snap.uid in recent and not finished:
            out.held.append(snap)
            continue
        spec = specs.get(snap.uid)
        if spec is None or spec.spec_json != snap.spec_json:
            spec = SpecFacts.of(snap.spec_json)
        out.specs[snap.uid] = spec
        body = {
            "metadata": {
                "name": snap.name,
                "namespace": snap.namespace,
                "uid": snap.uid,
                "creationTimestamp": snap.created_at,
                "generateName": snap.generate_name,
                "annotations": {"shipway.dev/keep": "true"} if snap.keep else {},
            },
            "spec": spec.spec,
            "status": status,
        }
        record = build_record(body, spec_json=spec.record_json)
        facts = Facts(record.project, record.branch, record.phase, record.finished_at, spec.secrets)
        out.records.append((record, facts))
    return out
