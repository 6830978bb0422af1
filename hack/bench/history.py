"""The history store at scale: ``shipway history`` pages and record lookups among 100,000
stored runs, and the store's size per 1,000 steps of 1 KiB logs (SQLite; no cluster needed).

Runs are written the way the operator writes them (batches of records, one transaction per
pod's logs), then each query is timed 200 times.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.stats import summary_ms
from shipway.history.records import RunRecord
from shipway.history.store import ArchivedLog, SqlStore, cursor

RUNS = 100_000
STEPS = 5
REPEATS = 200
WORDS = ("compiling", "module", "test", "passed", "ok", "GET", "/api/v1", "200", "cache", "hit")


def _record(n: int, template: RunRecord, start: datetime) -> RunRecord:
    return replace(
        template,
        uid=f"{n:08d}-0000-4000-8000-000000000000",
        namespace=f"team-{n % 5}",
        name=f"app-{n}",
        project=f"project-{n % 20}",
        branch=("main", "dev", "feature/x")[n % 3],
        phase="Failed" if n % 9 == 0 else "Succeeded",
        created_at=start + timedelta(seconds=30 * n),
        started_at=start + timedelta(seconds=30 * n + 2),
        finished_at=start + timedelta(seconds=30 * n + 60),
    )


def _template() -> RunRecord:
    steps = [
        {
            "id": str(i),
            "name": f"step {i}",
            "service": "app",
            "phase": "Succeeded",
            "pod": f"app-x-{i}",
            "exitCode": 0,
            "createdAt": "2026-12-06T11:00:05Z",
            "startedAt": "2026-12-06T11:00:06Z",
            "finishedAt": "2026-12-06T11:00:09Z",
        }
        for i in range(STEPS)
    ]
    spec = {
        "services": {"app": {"image": "busybox:1.36"}},
        "steps": [{"service": "app", "command": f"make step-{i}"} for i in range(STEPS)],
    }
    return RunRecord(
        uid="",
        namespace="",
        name="",
        project="",
        branch="",
        commit="3f2a9c81e0d1c0ffee",
        trigger="git",
        phase="",
        reason="",
        message="",
        created_at=None,
        started_at=None,
        finished_at=None,
        steps=STEPS,
        spec_json=json.dumps(spec, separators=(",", ":")),
        status_json=json.dumps({"phase": "Succeeded", "progress": "5/5", "steps": steps}),
    )


def _timed(fn: Callable[[], object]) -> dict[str, Any]:
    took = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        took.append(time.perf_counter() - started)
    return summary_ms(took)


def _log(rnd: random.Random) -> str:
    text = ""
    while len(text) < 1024:
        words = " ".join(rnd.choice(WORDS) for _ in range(8))
        text += f"2026-12-06T11:00:{rnd.randint(0, 59):02d}Z {words} {rnd.randint(0, 99999)}\n"
    return text[:1024]


def run(workdir: Path, runs: int = RUNS, url: str | None = None) -> dict[str, Any]:
    """The phase on a fresh SQLite file, or on an empty PostgreSQL database (``url``)."""
    path = workdir / "history-bench.db"
    path.unlink(missing_ok=True)
    store = SqlStore(url or f"sqlite:///{path}")

    def size() -> int:
        return _pg_size(store) if url else _file_size(path)

    template, start = _template(), datetime(2026, 9, 1, tzinfo=UTC)
    started = time.monotonic()
    for first in range(0, runs, 1000):
        store.save_runs(
            [_record(n, template, start) for n in range(first, min(runs, first + 1000))]
        )
    fill_s = time.monotonic() - started
    records_bytes = size()
    rnd = random.Random(1)
    newest = store.page("team-2", limit=20)
    results: dict[str, Any] = {
        "runs": runs,
        "fill_seconds": round(fill_s, 1),
        "page_ms": _timed(lambda: store.page("team-1", limit=20)),
        "page_filtered_ms": _timed(
            lambda: store.page("team-1", project="project-6", branch="main", phase="Failed")
        ),
        "next_page_ms": _timed(lambda: store.page("team-2", limit=20, before=cursor(newest[-1]))),
        "lookup_ms": _timed(
            lambda: store.run(f"team-{rnd.randrange(5)}", f"app-{rnd.randrange(runs)}")
        ),
    }
    results["bytes_per_run"] = round(records_bytes / runs)
    logs = [_log(rnd) for _ in range(1000)]
    before = size()
    for i, text in enumerate(logs):  # one pod's logs per transaction, as archived
        store.save_logs(
            [ArchivedLog("00000001-uid", f"pod-{i}", f"pod-uid-{i}", "app", text, 1024)]
        )
    results["bytes_per_1000_steps_1kib_logs"] = size() - before
    results["compressed_log_bytes_per_1000_steps"] = _stored(store)
    results["backend"] = store.dialect
    store.close()
    results["p95_page_ms"] = max(
        results["page_ms"]["p95"],
        results["page_filtered_ms"]["p95"],
        results["next_page_ms"]["p95"],
    )
    results["p95_lookup_ms"] = results["lookup_ms"]["p95"]
    path.unlink(missing_ok=True)
    return results


def _file_size(path: Path) -> int:
    """The SQLite file's size with its write-ahead log folded in."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def _pg_size(store: SqlStore) -> int:
    query = "select pg_total_relation_size('shipway_runs') + pg_total_relation_size('shipway_logs')"
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar() or 0)


def _stored(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text("select sum(stored) from shipway_logs")).scalar() or 0)


def rows(hi: dict[str, Any], mark: Any, fmt: Any) -> list[tuple[str, str, str]]:
    """The history phase's lines of the results table."""
    if not hi:
        return []
    kib = hi.get("bytes_per_1000_steps_1kib_logs", 0) / 1024
    return [
        (f"history ({hi.get('backend')}, {hi.get('runs')} stored runs)", "", ""),
        ("  history page p95 (any filter)", fmt(hi.get("p95_page_ms"), " ms"), mark("history_page_p95_ms")),
        ("  record lookup p95", fmt(hi.get("p95_lookup_ms"), " ms"), mark("history_lookup_p95_ms")),
        ("  store per 1000 steps of 1 KiB logs", f"{kib:.0f} KiB", ""),
        ("  store per run record (5 steps)", f"{hi.get('bytes_per_run')} B", ""),
    ]  # fmt: skip


if __name__ == "__main__":  # python -m bench.history: this phase alone
    out = run(
        Path(os.environ.get("TMPDIR", "/tmp")),
        int(os.environ.get("BENCH_HISTORY_RUNS", RUNS)),
        os.environ.get("BENCH_HISTORY_URL") or None,  # a PostgreSQL database, else SQLite
    )
    print(json.dumps(out, indent=1))
