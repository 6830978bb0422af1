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
import shutil
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
from shipway.dashboard.app import make_app
from shipway.dashboard.context import Settings
from shipway.dashboard.kube import from_kubeconfig
from shipway.dashboard.reader import SqlRunReader
from shipway.history.store import SqlStore
from shipway.models import StepStatus

REPEATS = 200
LINES = 100
BROWSER_LINES = 300
"""The browser's step prints for 30 s: Chromium takes seconds to start and load the page."""
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


def _pipeline(name: str, lines: int) -> dict[str, Any]:
    ticks = f"for i in $(seq 1 {lines}); do echo tick-$i; usleep {INTERVAL_US}; done"
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [{"name": "ticks", "service": "app", "command": f'sh -c "{ticks}"'}],
        },
    }


async def _running_step(kube: Kube, namespace: str, name: str, lines: int) -> dict[str, Any]:
    kube.create_pipeline(namespace, _pipeline(name, lines))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        body = json.loads(kube.kubectl("get", "pipeline", name, "-n", namespace, "-o", "json"))
        steps = (body.get("status") or {}).get("steps") or []
        if steps and steps[0].get("phase") == "Running":
            return dict(steps[0])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the {name} pipeline's step did not start in 180 s")


def _latencies(
    kube: Kube, namespace: str, step: dict[str, Any], seen: dict[str, float], *, since: float
) -> dict[str, Any]:
    """Per line printed after ``since``: the runtime's timestamp to when it was ``seen``."""
    container = log_container(StepStatus.model_validate(step))
    logs = kube.kubectl(
        "logs", "-n", namespace, step["pod"], "-c", container, "--timestamps"
    ).splitlines()
    latencies = []
    for entry in logs:
        stamp, _, text = entry.partition(" ")
        printed = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        if text in seen and printed >= since:  # not the lines printed before we looked
            latencies.append(seen[text] - printed)
    if len(latencies) < LINES // 2:  # the browser's phase prints more: it starts slower
        raise RuntimeError(f"only {len(latencies)} live lines measured")
    return {"lines": len(latencies), "latency_ms": summary_ms(latencies)}


async def _live(client: TestClient[Any, Any], kube: Kube, namespace: str) -> dict[str, Any]:
    """The event stream as a client on this machine reads it."""
    step = await _running_step(kube, namespace, "ticks", LINES)
    received: dict[str, float] = {}
    connected = time.time()
    async with client.get(f"/runs/{namespace}/ticks/steps/{step['id']}/log/events") as resp:
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: tick-"):
                received.setdefault(line.removeprefix("data: "), time.time())
            elif line.startswith("event: end"):
                break
    return _latencies(kube, namespace, step, received, since=connected)


#: Run in the page (through WebDriver, which the page's CSP does not restrict): the moment
#: each log line is added to the page.
OBSERVE = """
window.benchSeen = {};
new MutationObserver((mutations) => {
  for (const m of mutations) for (const node of m.addedNodes) {
    const text = node.textContent || "";
    if (text.startsWith("tick-") && !(text in window.benchSeen)) window.benchSeen[text] = Date.now();
  }
}).observe(document.body, {childList: true, subtree: true});
"""


def _browser(url: str, last: str) -> tuple[float, dict[str, float]]:
    """Headless Chromium on the run page until the last line shows: when each line showed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or ""))
    try:
        driver.get(url)
        driver.execute_script(OBSERVE)
        since = time.time()
        deadline = time.monotonic() + 120
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and last not in seen:
            time.sleep(0.5)
            seen = driver.execute_script("return window.benchSeen") or {}
        return since, {text: ms / 1000 for text, ms in seen.items()}
    finally:
        driver.quit()


async def _live_browser(
    client: TestClient[Any, Any], kube: Kube, namespace: str
) -> dict[str, Any] | None:
    """The same in a real browser: printed → shown on the run page (None: no Chromium)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    step = await _running_step(kube, namespace, "ticks-browser", BROWSER_LINES)
    url = str(client.make_url(f"/runs/{namespace}/ticks-browser"))
    since, seen = await asyncio.to_thread(_browser, url, f"tick-{BROWSER_LINES}")
    return _latencies(kube, namespace, step, seen, since=since)


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
            browser = await _live_browser(client, kube, namespace)
            return {"routes": by_route, "live": live, "browser": browser}

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
    browser = found["browser"] or {}
    shown = (browser.get("latency_ms") or {}).get("p95")
    return {
        "browser_log_ms": browser.get("latency_ms"),
        "browser_lines": browser.get("lines"),
        "p95_browser_log_ms": shown,
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
        ("  live log line printed → event at a client p95", fmt(da.get("p95_live_log_ms"), " ms"), ""),
        ("  live log line printed → shown in Chromium p95", fmt(da.get("p95_browser_log_ms"), " ms"), mark("dashboard_live_log_p95_ms")),
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
