"""The history store: run records and archived logs in SQLite or PostgreSQL (SQLAlchemy Core).

One code path for both: SQLAlchemy 2 Core tables, each dialect's ``INSERT ... ON CONFLICT``
for idempotent writes. The schema is made with ``metadata.create_all`` and its version kept
in ``shipway_schema``; a later version adds a step to :data:`MIGRATIONS`, run once in a
transaction by the first process to open the store (Alembic's ``Operations`` can be used
inside a step without its environment files: two tables do not need its autogeneration or
its branches). Every call is synchronous; the operator makes them in one thread of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shipway.history.logs import pack, unpack
from shipway.history.records import RunRecord

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}
"""version → the step that brings the schema from version-1 to it."""

metadata = sa.MetaData()
schema = sa.Table("shipway_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
runs = sa.Table(
    "shipway_runs",
    metadata,
    sa.Column("uid", sa.String(64), primary_key=True),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("project", sa.String(512), nullable=False),
    sa.Column("branch", sa.String(256), nullable=False),
    sa.Column("commit", sa.String(128), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(128), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("steps", sa.Integer, nullable=False),
    sa.Column("keep", sa.Boolean, nullable=False),
    sa.Column("spec", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("shipway_runs_by_time", "namespace", "created_at"),
    sa.Index("shipway_runs_by_branch", "namespace", "project", "branch", "created_at"),
    sa.Index("shipway_runs_by_name", "namespace", "name", "created_at"),
    sa.Index("shipway_runs_created", "created_at"),
)
logs = sa.Table(
    "shipway_logs",
    metadata,
    sa.Column("pod_uid", sa.String(64), primary_key=True),
    sa.Column("container", sa.String(253), primary_key=True),
    sa.Column("run_uid", sa.String(64), nullable=False, index=True),
    sa.Column("pod", sa.String(253), nullable=False),
    # size: the log's whole size as read (more than what is kept when truncated);
    # stored: the bytes of data (compressed), what the size cap counts.
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False),
    sa.Column("stored", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class ArchivedLog:
    run_uid: str
    pod: str
    pod_uid: str
    container: str
    text: str
    size: int
    truncated: bool = False


class HistoryStore(Protocol):
    """What the operator and the command line ask of the history."""

    def save_runs(self, records: Sequence[RunRecord]) -> None: ...
    def save_logs(self, pod_logs: Sequence[ArchivedLog]) -> None: ...
    def archived(self, pod_uids: Iterable[str]) -> set[str]: ...
    def run(self, namespace: str, name: str) -> RunRecord | None: ...
    def run_by_uid(self, uid: str) -> RunRecord | None: ...
    def page(
        self,
        namespace: str | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]: ...
    def logs(self, run_uid: str) -> list[ArchivedLog]: ...
    def expire(self, cutoff: datetime | None, max_bytes: int | None) -> int: ...
    def close(self) -> None: ...


def default_url() -> str:
    """A SQLite file in the user's state directory: what a host-run operator and the command
    line on the same machine share without any setting."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"sqlite:///{Path(state) / 'shipway' / 'history.db'}"


def store_url(value: str | None) -> str | None:
    """``SHIPWAY_HISTORY``'s meaning: unset → the default file, ``off`` → no history."""
    if value is None or not value.strip():
        return default_url()
    if value.strip().lower() in ("off", "false", "no", "0", "none"):
        return None
    url = value.strip()
    if url.startswith(("postgres://", "postgresql://")):  # the usual spelling: use psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class SqlStore:
    """The store through SQLAlchemy: ``sqlite:///PATH`` or ``postgresql+psycopg://...``."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(url, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._migrate()

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            version = conn.execute(sa.select(schema.c.version)).scalar()
            if version is None:
                conn.execute(schema.insert().values(version=SCHEMA_VERSION))
                return
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the history store has schema version {version}, newer than this "
                    f"operator's {SCHEMA_VERSION}: upgrade the operator"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[step](conn)
            conn.execute(schema.update().values(version=SCHEMA_VERSION))

    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def save_runs(self, records: Sequence[RunRecord]) -> None:
        """Insert or update a batch of records in one transaction."""
        if not records:
            return
        now = datetime.now(UTC)
        rows = [_row(record, now) for record in records]
        stmt = self._insert(runs)
        stmt = stmt.on_conflict_do_update(
            index_elements=[runs.c.uid],
            set_={c.name: stmt.excluded[c.name] for c in runs.c if c.name != "uid"},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def save_logs(self, pod_logs: Sequence[ArchivedLog]) -> None:
        """One pod's logs, all or none (a kill in between leaves none: archived again, once)."""
        if not pod_logs:
            return
        now = datetime.now(UTC)
        rows = []
        for item in pod_logs:
            data = pack(item.text)
            rows.append(
                {
                    "pod_uid": item.pod_uid,
                    "container": item.container,
                    "run_uid": item.run_uid,
                    "pod": item.pod,
                    "size": item.size,
                    "truncated": item.truncated,
                    "stored": len(data),
                    "data": data,
                    "archived_at": now,
                }
            )
        stmt = self._insert(logs).on_conflict_do_nothing(
            index_elements=[logs.c.pod_uid, logs.c.container]
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def archived(self, pod_uids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(pod_uids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                query = sa.select(logs.c.pod_uid).where(logs.c.pod_uid.in_(chunk)).distinct()
                found.update(conn.execute(query).scalars())
        return found

    def run(self, namespace: str, name: str) -> RunRecord | None:
        """The newest run of that name in the namespace (a name may be used again)."""
        query = (
            sa.select(runs)
            .where(runs.c.namespace == namespace, runs.c.name == name)
            .order_by(runs.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _record(row) if row is not None else None

    def run_by_uid(self, uid: str) -> RunRecord | None:
        """One run by its Pipeline's UID (a name may be used again; the UID never)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.uid == uid)).mappings().first()
        return _record(row) if row is not None else None

    def page(
        self,
        namespace: str | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, without their spec and status; ``before`` is the cursor
        (:func:`cursor`) of the last run of the previous page."""
        columns = [c for c in runs.c if c.name not in ("spec", "status")]
        query = sa.select(*columns)
        if namespace is not None:
            query = query.where(runs.c.namespace == namespace)
        if project:
            query = query.where(runs.c.project == project)
        if branch:
            query = query.where(runs.c.branch == branch)
        if phase:
            query = query.where(runs.c.phase == phase)
        if before:
            moment, _, uid = before.partition("/")
            at = datetime.fromisoformat(moment)
            query = query.where(
                sa.or_(runs.c.created_at < at, sa.and_(runs.c.created_at == at, runs.c.uid < uid))
            )
        query = query.order_by(runs.c.created_at.desc(), runs.c.uid.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def logs(self, run_uid: str) -> list[ArchivedLog]:
        query = sa.select(logs).where(logs.c.run_uid == run_uid)
        with self.engine.connect() as conn:
            return [
                ArchivedLog(
                    run_uid=row["run_uid"],
                    pod=row["pod"],
                    pod_uid=row["pod_uid"],
                    container=row["container"],
                    text=unpack(row["data"]),
                    size=row["size"],
                    truncated=row["truncated"],
                )
                for row in conn.execute(query).mappings()
            ]

    def expire(self, cutoff: datetime | None, max_bytes: int | None) -> int:
        """Drop runs created before ``cutoff`` and, while the logs take more than
        ``max_bytes``, the oldest runs; their logs with them. The runs dropped."""
        dropped = 0
        with self.engine.begin() as conn:
            if cutoff is not None:
                old = sa.select(runs.c.uid).where(runs.c.created_at < cutoff)
                conn.execute(logs.delete().where(logs.c.run_uid.in_(old)))
                dropped += conn.execute(runs.delete().where(runs.c.created_at < cutoff)).rowcount
            if max_bytes is not None:
                total = conn.execute(sa.select(sa.func.sum(logs.c.stored))).scalar() or 0
                if total > max_bytes:
                    per_run = (
                        sa.select(runs.c.uid, sa.func.coalesce(sa.func.sum(logs.c.stored), 0))
                        .select_from(runs.outerjoin(logs, logs.c.run_uid == runs.c.uid))
                        .group_by(runs.c.uid, runs.c.created_at)
                        .order_by(runs.c.created_at)
                    )
                    victims = []
                    for uid, stored in conn.execute(per_run):
                        if total <= max_bytes:
                            break
                        victims.append(uid)
                        total -= stored
                    for start in range(0, len(victims), 500):
                        chunk = victims[start : start + 500]
                        conn.execute(logs.delete().where(logs.c.run_uid.in_(chunk)))
                        dropped += conn.execute(runs.delete().where(runs.c.uid.in_(chunk))).rowcount
        return dropped

    def close(self) -> None:
        self.engine.dispose()


def cursor(record: RunRecord) -> str:
    """Where the next page starts: after this run."""
    moment = record.created_at.isoformat() if record.created_at else "0001-01-01T00:00:00+00:00"
    return f"{moment}/{record.uid}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets the command line read while the operator writes; a writer waits for another
    (two operators on one file) instead of failing at once."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _row(record: RunRecord, now: datetime) -> dict[str, Any]:
    return {
        "uid": record.uid,
        "namespace": record.namespace,
        "name": record.name,
        "project": record.project[:512],
        "branch": record.branch[:256],
        "commit": record.commit[:128],
        "trigger": record.trigger,
        "phase": record.phase,
        "reason": record.reason[:128],
        "message": record.message,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "steps": record.steps,
        "keep": record.keep,
        "spec": pack(record.spec_json),
        "status": pack(record.status_json),
        "updated_at": now,
    }


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _record(row: Any) -> RunRecord:
    return RunRecord(
        uid=row["uid"],
        namespace=row["namespace"],
        name=row["name"],
        project=row["project"],
        branch=row["branch"],
        commit=row["commit"],
        trigger=row["trigger"],
        phase=row["phase"],
        reason=row["reason"],
        message=row["message"],
        created_at=_aware(row["created_at"]),
        started_at=_aware(row["started_at"]),
        finished_at=_aware(row["finished_at"]),
        steps=row["steps"],
        spec_json=unpack(row["spec"]) if "spec" in row else "",
        status_json=unpack(row["status"]) if "status" in row else "",
        keep=row["keep"],
    )


def open_store(url: str) -> SqlStore:
    return SqlStore(url)


__all__ = ["ArchivedLog", "HistoryStore", "SqlStore", "cursor", "open_store", "store_url"]
