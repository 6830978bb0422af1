"""The dashboard at scale: the run list and a run page among 100,000 stored runs (SQLite),
server time as the dashboard measures it, and live log latency on the real cluster.

The dashboard runs in this process (aiohttp's test server) with the bench's kubeconfig, so
its authorization reviews and Pipeline reads go to the real API server. Live log latency is
from the container runtime's timestamp of a line (``kubectl logs --timestamps``: when the
runtime read it from the step's stdout) to that line's server-sent event arriving at a client
on this machine: what a browser's EventSource gets; appending it takes well under a
millisecond more.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bench.history import RUNS, _record, _template
from bench.kube import Kube
from bench.procs import Operator
from bench.stats import summary_ms
from shipway.cli.follow import log_container
from shipway.dashboard.app import Settings, make_app
from shipway.dashboard.kube import from_kubeconfig
from shipway.dashboard.reader import SqlRunReader
from shipway.history.store import SqlStore
from shipway.models import StepStatus

REPEATS = 200
LINES = 100
INTERVAL_US = 100_000


def fill(path: Path, runs: int) -> SqlStore:
    path.unlink(missing_ok=True)
    store = SqlStore(f"sqlite:///{path}")
    template, start = _template(), datetime(2026, 9, 1, tzinfo=UTC)
    for first in range(0, runs, 1000):
        store.save_runs(
            [_record(n, template, start) for n in range(first, min(runs, first + 1000))]
        )
    return store


async def _pages(client: TestClient[Any, Any], runs: int) -> None:
    rnd = random.Random(7)
    first = await (await client.get("/?namespace=team-2")).text()
    older = first.split('id="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    for _ in range(REPEATS):
        for url in (
            "/",
            "/?namespace=team-1&project=project-6&branch=main&phase=Failed",
            older,
        ):
            response = await client.get(url)
            assert response.status == 200, (url, response.status)
            await response.read()
        n = rnd.randrange(runs)
        response = await client.get(f"/runs/team-{n % 5}/app-{n}")
        assert response.status == 200, response.status
        await response.read()


def _pipeline(name: str) -> dict[str, Any]:
    ticks = f"for i in $(seq 1 {LINES}); do echo tick-$i; usleep {INTERVAL_US}; done"
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [{"name": "ticks", "service": "app", "command": f'sh -c "{ticks}"'}],
        },
    }


async def _live(client: TestClient[Any, Any], kube: Kube, namespace: str) -> dict[str, Any]:
    name = "ticks"
    kube.create_pipeline(namespace, _pipeline(name))
    deadline = time.monotonic() + 180
    step: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = json.loads(kube.kubectl("get", "pipeline", name, "-n", namespace, "-o", "json"))
        steps = (body.get("status") or {}).get("steps") or []
        if steps and steps[0].get("phase") == "Running":
            step = steps[0]
            break
        await asyncio.sleep(0.1)
    if not step:
        raise RuntimeError("the ticks pipeline's step did not start in 180 s")
    received: dict[str, float] = {}
    connected = time.time()
    async with client.get(f"/runs/{namespace}/{name}/steps/{step['id']}/log/events") as resp:
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: tick-"):
                received.setdefault(line.removeprefix("data: "), time.time())
            elif line.startswith("event: end"):
                break
    container = log_container(StepStatus.model_validate(step))
    logs = kube.kubectl(
        "logs", "-n", namespace, step["pod"], "-c", container, "--timestamps"
    ).splitlines()
    latencies = []
    for entry in logs:
        stamp, _, text = entry.partition(" ")
        printed = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        if text in received and printed >= connected:  # lines printed before we listened
            latencies.append(received[text] - printed)
    if len(latencies) < LINES // 2:
        raise RuntimeError(f"only {len(latencies)} live lines measured")
    return {"lines": len(latencies), "latency_ms": summary_ms(latencies)}


def run(kube: Kube, run_id: str, workdir: Path, runs: int = RUNS) -> dict[str, Any]:
    store = fill(workdir / "dashboard-bench.db", runs)
    timings: list[tuple[str, float]] = []
    settings = Settings(
        reader=SqlRunReader(store),
        credentials=from_kubeconfig(kube.kubeconfig),
        timings=timings,
    )
    namespace = f"bench-dash-{run_id}"
    kube.create_namespace(namespace, run_id)
    operator = Operator([namespace], workdir / "operator-dashboard.log")

    async def main() -> dict[str, Any]:
        async with TestClient(TestServer(make_app(settings))) as client:
            await _pages(client, runs)
            by_route: dict[str, list[float]] = defaultdict(list)
            for route, seconds in timings:
                by_route[route].append(seconds)
            operator.start(kube.kubeconfig)
            operator.wait_ready()
            live = await _live(client, kube, namespace)
            return {"routes": by_route, "live": live}

    try:
        found = asyncio.run(main())
    finally:
        operator.stop()
        store.close()
        (workdir / "dashboard-bench.db").unlink(missing_ok=True)
    routes = found["routes"]
    listing = summary_ms(routes["/"])
    run_page = summary_ms(routes["/runs/{namespace}/{name}"])
    live = found["live"]
    return {
        "namespace": namespace,
        "runs": runs,
        "list_page_ms": listing,
        "run_page_ms": run_page,
        "p95_list_ms": listing["p95"],
        "p95_run_ms": run_page["p95"],
        "live_log_ms": live["latency_ms"],
        "live_lines": live["lines"],
        "p95_live_log_ms": live["latency_ms"]["p95"],
        "median_list_ms": round(statistics.median(routes["/"]) * 1000, 1),
    }


def rows(da: dict[str, Any], mark: Any, fmt: Any) -> list[tuple[str, str, str]]:
    if not da:
        return []
    return [
        (f"dashboard ({da.get('runs')} stored runs, SQLite)", "", ""),
        ("  run list page p95 (server)", fmt(da.get("p95_list_ms"), " ms"), mark("dashboard_list_p95_ms")),
        ("  run page p95 (server)", fmt(da.get("p95_run_ms"), " ms"), mark("dashboard_run_p95_ms")),
        ("  live log line to browser p95", fmt(da.get("p95_live_log_ms"), " ms"), mark("dashboard_live_log_p95_ms")),
    ]  # fmt: skip


if __name__ == "__main__":  # python -m bench.dashboard: this phase alone, on the local cluster
    import os
    import secrets
    import tempfile

    from bench.load import delete_namespace

    kube = Kube.connect()
    run_id = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="shipway-bench-dashboard-") as tmp:
        try:
            out = run(kube, run_id, Path(tmp), int(os.environ.get("BENCH_DASHBOARD_RUNS", RUNS)))
        finally:
            delete_namespace(kube, run_id, f"bench-dash-{run_id}", timeout=120)
    print(json.dumps(out, indent=1))
