"""What the dashboard reads of the history: the small read interface, and its implementation
over the history store's tables (SQLAlchemy Core, SQLite or PostgreSQL).

The dashboard needs four reads, every one bounded by an index: a page of runs (newest first,
in the namespaces the user may see, filtered by project, branch and phase), one run with its
step tree, one step's archived log, and the last run of a project's branch (the badge). An
aggregated history API can implement :class:`RunReader` too; the dashboard does not care.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from shipway.history.logs import unpack
from shipway.history.records import RunRecord
from shipway.history.store import ArchivedLog, SqlStore, _record, logs, runs

NAMESPACES_TTL = 10.0


class RunReader(Protocol):
    def namespaces(self) -> list[str]: ...
    def page(
        self,
        namespaces: Sequence[str] | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]: ...
    def run(self, namespace: str, name: str) -> RunRecord | None: ...
    def step_log(self, run_uid: str, pod: str, container: str) -> ArchivedLog | None: ...
    def latest(self, namespace: str, project: str, branch: str) -> RunRecord | None: ...


def parse_cursor(before: str) -> tuple[datetime, str]:
    """``shipway history``'s cursor: ``<created ISO time>/<uid>``; ValueError if not one."""
    moment, sep, uid = before.partition("/")
    if not sep:
        raise ValueError(f"not a cursor: {before!r}")
    return datetime.fromisoformat(moment), uid


class SqlRunReader:
    """Over the store's own tables; read-only."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self._namespaces: tuple[float, list[str]] | None = None

    def namespaces(self) -> list[str]:
        """Every namespace with runs (an index scan; cached a few seconds)."""
        now = time.monotonic()
        if self._namespaces is not None and now - self._namespaces[0] < NAMESPACES_TTL:
            return self._namespaces[1]
        with self.store.engine.connect() as conn:
            found = sorted(conn.execute(sa.select(runs.c.namespace).distinct()).scalars())
        self._namespaces = (now, found)
        return found

    def page(
        self,
        namespaces: Sequence[str] | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        """Newest first, without spec and status; ``namespaces`` None: all of them."""
        if namespaces is not None and not namespaces:
            return []
        columns = [c for c in runs.c if c.name not in ("spec", "status")]
        query = sa.select(*columns)
        if namespaces is not None:
            query = query.where(runs.c.namespace.in_(list(namespaces)))
        if project:
            query = query.where(runs.c.project == project)
        if branch:
            query = query.where(runs.c.branch == branch)
        if phase:
            query = query.where(runs.c.phase == phase)
        if before:
            at, uid = parse_cursor(before)
            query = query.where(
                sa.or_(runs.c.created_at < at, sa.and_(runs.c.created_at == at, runs.c.uid < uid))
            )
        query = query.order_by(runs.c.created_at.desc(), runs.c.uid.desc()).limit(limit)
        with self.store.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def run(self, namespace: str, name: str) -> RunRecord | None:
        return self.store.run(namespace, name)

    def step_log(self, run_uid: str, pod: str, container: str) -> ArchivedLog | None:
        query = sa.select(logs).where(
            logs.c.run_uid == run_uid, logs.c.pod == pod, logs.c.container == container
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query.limit(1)).mappings().first()
        if row is None:
            return None
        return ArchivedLog(
            run_uid=row["run_uid"],
            pod=row["pod"],
            pod_uid=row["pod_uid"],
            container=row["container"],
            text=unpack(row["data"]),
            size=row["size"],
            truncated=row["truncated"],
        )

    def latest(self, namespace: str, project: str, branch: str) -> RunRecord | None:
        found = self.page([namespace], project=project, branch=branch, limit=1)
        return found[0] if found else None
