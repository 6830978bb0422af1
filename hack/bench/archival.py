"""Phase 2c: the same burst with archival off, then on, side by side in one run.

Both runs are the scale phase's burst (``count`` pipelines x ``steps`` steps on the bench's
kwok nodes). With archival on the operator writes run records to a SQLite store and reads
every finished pod's log through the API server (kwok serves a 1 KiB file as each pod's
log: bench.kwoklogs), and the run is measured until every pod's log is in the store.
Retention is off in both, so only archival differs. Compared: throughput (steps/s), the
operator's CPU per step, counted from its readiness on both sides (its start, e.g. importing
SQLAlchemy, is paid once, not per step; the figure with it is given too), and API calls per
step (its writes, plus the log reads).
"""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import scale
from bench.kube import Kube
from bench.load import delete_namespace
from bench.procs import FakeNodes, free_port


def _archived_pods(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            (count,) = conn.execute("SELECT COUNT(DISTINCT pod_uid) FROM shipway_logs").fetchone()
    except sqlite3.Error:  # the operator has not made the table yet
        return 0
    return int(count)


def run(
    kube: Kube,
    run_id: str,
    workdir: Path,
    nodes: FakeNodes,
    *,
    count: int,
    steps: int,
    timeout: float,
) -> dict[str, Any]:
    common = {"SHIPWAY_RETENTION": "off"}
    port = free_port()
    off = scale.run_scale(
        kube, run_id, workdir, nodes, count=count, steps=steps, timeout=timeout,
        label="archival-off", env={**common, "SHIPWAY_HISTORY": "off"},
    )  # fmt: skip
    off["cleanup_s"] = round(scale_cleanup(kube, run_id, off["namespace"]), 1)
    db = workdir / "archival.db"
    expected = count * steps
    waited: dict[str, Any] = {}

    def settle() -> float:
        """Until every step pod's log is archived (or ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            done = _archived_pods(db)
            if done >= expected:
                break
            time.sleep(1)
        waited["archived_pods"] = _archived_pods(db)
        waited["history_cpu_s"] = history_cpu(port)
        return time.monotonic() - started

    on = scale.run_scale(
        kube, run_id, workdir, nodes, count=count, steps=steps, timeout=timeout,
        label="archival-on",
        env={**common, "SHIPWAY_HISTORY": f"sqlite:///{db}", "SHIPWAY_METRICS_PORT": str(port)},
        settle=settle,
    )  # fmt: skip
    on["archived_pods"] = waited.get("archived_pods", 0)
    on["history_cpu_s"] = waited.get("history_cpu_s", {})
    on["store_bytes"] = db.stat().st_size if db.exists() else 0
    on["cleanup_s"] = round(scale_cleanup(kube, run_id, on["namespace"]), 1)
    return {"off": off, "on": on, **compare(off, on)}


def history_cpu(port: int) -> dict[str, float]:
    """CPU seconds of the history's own threads (log reads, store writes), from the
    operator's metrics: archival's cost apart from the noise of two runs on a shared machine."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    found = re.findall(r'^shipway_history_cpu_seconds_total\{part="(\w+)"\} (\S+)$', text, re.M)
    return {part: round(float(value), 2) for part, value in found}


def scale_cleanup(kube: Kube, run_id: str, namespace: str) -> float:
    return delete_namespace(kube, run_id, namespace)


def _calls(result: dict[str, Any]) -> int:
    writes: dict[str, int] = result.get("operator_writes", {})
    return sum(writes.values()) + int(result.get("log_reads", 0))


def compare(off: dict[str, Any], on: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue's targets are about, from the two runs."""
    steps_off, steps_on = off.get("steps_completed") or 0, on.get("steps_completed") or 0
    if not steps_off or not steps_on:
        return {"throughput_ratio": None, "cpu_ms_per_step_added": None}
    rate_off, rate_on = off["steps_per_second"], on["steps_per_second"]
    # From the operator's readiness on, both sides alike: its start (imports, SQLAlchemy's
    # 0.9 s with archival on) is paid once per operator, not per step.
    cpu_off = 1000 * off["operator_cpu_burst_s"] / steps_off
    cpu_on = 1000 * on["operator_cpu_burst_s"] / steps_on
    life_off = 1000 * off["operator_cpu_s"] / steps_off
    life_on = 1000 * on["operator_cpu_s"] / steps_on
    return {
        "throughput_ratio": round(rate_on / rate_off, 3) if rate_off else None,
        "cpu_ms_per_step_off": round(cpu_off, 2),
        "cpu_ms_per_step_on": round(cpu_on, 2),
        "cpu_ms_per_step_added": round(cpu_on - cpu_off, 2),
        "cpu_ms_per_step_added_with_start": round(life_on - life_off, 2),
        "calls_per_step_off": round(_calls(off) / steps_off, 2),
        "calls_per_step_on": round(_calls(on) / steps_on, 2),
        "calls_per_step_added": round(_calls(on) / steps_on - _calls(off) / steps_off, 2),
        "log_reads_per_step": round(int(on.get("log_reads", 0)) / steps_on, 2),
        "archived_per_step": round(int(on.get("archived_pods", 0)) / steps_on, 3),
        "history_threads_cpu_ms_per_step": round(
            1000 * sum((on.get("history_cpu_s") or {}).values()) / steps_on, 2
        ),
    }


def rows(result: dict[str, Any], mark: Any, fmt: Any) -> list[tuple[str, str, str]]:
    """The phase's lines of the results table."""
    if not result:
        return []
    off, on = result.get("off") or {}, result.get("on") or {}
    pipelines, steps = on.get("pipelines"), on.get("steps_per_pipeline")
    return [
        (f"archival on vs off ({pipelines} x {steps} burst)", "", ""),
        ("  steps/s off / on", f"{off.get('steps_per_second')} / {on.get('steps_per_second')}", ""),
        ("  throughput ratio on/off", fmt(result.get("throughput_ratio")), mark("archival_throughput_ratio")),
        ("  operator CPU per step added (from ready)", fmt(result.get("cpu_ms_per_step_added"), " ms"), mark("archival_cpu_ms_per_step_added")),
        ("  of which the history's threads (reads, store)", fmt(result.get("history_threads_cpu_ms_per_step"), " ms"), ""),
        ("  the same with the operator's start", fmt(result.get("cpu_ms_per_step_added_with_start"), " ms"), ""),
        ("  API calls per step added", fmt(result.get("calls_per_step_added")), mark("archival_calls_per_step_added")),
        ("  log reads per step", fmt(result.get("log_reads_per_step")), ""),
        ("  pods archived / steps", fmt(result.get("archived_per_step")), ""),
    ]  # fmt: skip
