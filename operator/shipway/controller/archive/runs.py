"""What the archiver knows of each run: pods waiting for their logs, the few facts of its
written record, and the records themselves built from the operator's snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shipway.controller.kube import EventTarget, LogRead
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Key, Manifest
from shipway.history.logs import Masker
from shipway.history.masking import referenced_secrets
from shipway.history.records import RunRecord, build_record


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
class Pending:
    """A finished pod whose logs wait to be archived."""

    key: Key
    run_uid: str
    pod: str
    pod_uid: str
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """The few facts of a written record the archiver keeps (not its status: memory)."""

    project: str
    branch: str
    phase: str
    finished_at: datetime | None
    secrets: tuple[str, ...]
    """The Secrets its spec names: their values are masked in its logs."""

    @classmethod
    def of(cls, record: RunRecord) -> Facts:
        names = referenced_secrets(json.loads(record.spec_json))
        return cls(
            record.project, record.branch, record.phase, record.finished_at, tuple(sorted(names))
        )


@dataclass(slots=True)
class RunState:
    """What the archiver knows of one run."""

    pods_done: set[str] = field(default_factory=set)
    masker: Masker | None = None
    facts: Facts | None = None
    """What retention and masking need of its record, once the record is written."""
    warned: bool = False


def records(snaps: list[PipelineSnapshot]) -> list[tuple[RunRecord, Facts]]:
    """Records of the snapshots (in the store's thread: a status is parsed here, not in the
    event loop)."""
    found = []
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
        found.append((record, Facts.of(record)))
    return found
