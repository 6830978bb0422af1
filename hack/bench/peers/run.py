"""``python -m bench.peers`` (``make bench-peers``): Shipway and Argo Workflows, same work, same run.

Environment: ``BENCH_OUT`` (default bench-peers.json), ``BENCH_PEERS_PHASES`` (default
``serial,workspace,burst``), ``BENCH_PEERS_STEPS`` (default 20: steps of the serial and
workspace pipelines), ``BENCH_PEERS_PIPELINES`` (default 200: pipelines of 5 steps in the
burst), ``KUBECONFIG`` (default: the local cluster's).

Order: Argo is built (or its cached binaries reused), its image imported, its CRDs applied; then
for each phase Shipway runs it, then Argo, each engine started for the phase alone; raw pods run
the serial work and the burst (``rawburst``) first, as the limit. Argo's CRDs and namespace are removed at the end, whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import demo_operator
from bench import overhead, scale
from bench.kube import Kube, operator_writes, write_json
from bench.load import delete_namespace
from bench.peers import argo, argobuild, argoimage, rawburst, work
from bench.peers.measure import (
    ARGO_WRITES,
    ArgoPodWatch,
    FakeExecutor,
    collect,
    finished,
    wait,
)
from bench.procs import FakeNodes, Operator
from bench.watch import PodWatch
from localkube.config import Paths
from localkube.toolchain import build

PHASES = ("serial", "workspace", "burst")
BURST_STEPS = 5
SHIPWAY_WRITES = tuple(
    p for p in ("POST core/pods ", "PATCH core/pods ", "DELETE core/pods ",
                "PATCH shipway.dev/pipelines/status ", "PUT shipway.dev/pipelines/status ",
                "PATCH shipway.dev/pipelines ", "PUT shipway.dev/pipelines ",
                "POST core/events ", "POST core/persistentvolumeclaims ")
)  # fmt: skip


def _shipway_one(
    kube: Kube, namespace: str, workdir: Path, phase: str, *, body: dict[str, Any], steps: int
) -> dict[str, Any]:
    """One Pipeline through a freshly started operator."""
    watch = PodWatch(kube.fresh_api(), namespace)
    watch.start()
    watch.ready.wait(30)
    operator = Operator([namespace], workdir / f"shipway-{phase}.log")
    try:
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        before, cpu = kube.request_counts(), operator.usage().cpu_s
        started = time.monotonic()
        kube.create_pipeline(namespace, body)
        name = body["metadata"]["name"]
        wait(watch, finished(watch, "shipway", {name: steps}), 60 + 10 * steps, f"shipway {phase}")
        time.sleep(1)  # the last status write lands
        figures = collect(kube, watch, "shipway", started, before=before, cpu_before=cpu,
                          usage=operator.usage(), prefixes=SHIPWAY_WRITES)  # fmt: skip
    finally:
        operator.stop()
        watch.stop()
    return figures.as_dict()


def _argo_run(
    kube: Kube,
    namespace: str,
    workdir: Path,
    paths: Paths,
    *,
    image: str,
    phase: str,
    bodies: list[dict[str, Any]],
    steps: int,
    fake: bool = False,
    submit_first: bool = False,
) -> dict[str, Any]:
    """Workflows through a freshly started controller (``fake``: on kwok, with FakeExecutor)."""
    watch = ArgoPodWatch(kube.fresh_api(), namespace)
    executor = FakeExecutor(kube, namespace) if fake else None
    watch.executor = executor
    watch.start()
    watch.ready.wait(30)
    controller = argo.Controller(namespace, image, workdir / f"argo-{phase}.log", paths)
    expected = {b["metadata"]["name"]: steps for b in bodies}

    def submit() -> None:
        kube.parallel(
            lambda b: kube.custom.create_namespaced_custom_object(
                "argoproj.io", "v1alpha1", namespace, "workflows", b, _preload_content=False
            ),
            bodies,
        )

    try:
        if submit_first:
            submit()
        controller.start(kube.kubeconfig)
        controller.wait_ready(kube)
        before, cpu = kube.request_counts(), controller.usage().cpu_s
        started = time.monotonic()
        if not submit_first:
            submit()
        timeout = max(180.0, len(bodies) * steps / 2)
        wait(watch, finished(watch, "argo", expected), timeout, f"argo {phase}")
        _wait_workflows_done(kube, namespace, len(bodies), 60)
        figures = collect(kube, watch, "argo", started, before=before, cpu_before=cpu,
                          usage=controller.usage(), prefixes=ARGO_WRITES)  # fmt: skip
    finally:
        controller.stop()
        watch.stop()
        if executor is not None:
            executor.stop()
    result = figures.as_dict()
    if executor is not None:
        result["fake_executor_errors"] = executor.errors[:5]
    return result


def _wait_workflows_done(kube: Kube, namespace: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = kube.list_json(
            kube.custom.list_namespaced_custom_object,
            "argoproj.io", "v1alpha1", namespace, "workflows",
        )["items"]  # fmt: skip
        done = [
            i
            for i in items
            if (i.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error")
        ]
        if len(done) >= count:
            failed = [i["metadata"]["name"] for i in done if i["status"]["phase"] != "Succeeded"]
            if failed:
                raise RuntimeError(f"Argo workflows did not succeed: {failed[:5]}")
            return
        time.sleep(0.5)
    raise RuntimeError(f"{count} Argo workflows not finished in {timeout:.0f}s")


def _raw_serial(kube: Kube, namespace: str, steps: int) -> dict[str, Any]:
    watch = PodWatch(kube.fresh_api(), namespace)
    watch.start()
    watch.ready.wait(30)
    try:
        raw = overhead.run_raw(kube, namespace, steps, watch, timeout=60 + 10 * steps)
    finally:
        watch.stop()
    from bench.stats import summary_ms

    return {
        "wall_s": round(raw.wall_s, 2),
        "steps": steps,
        "transition_gap_ms": summary_ms(raw.gaps),
        "steps_per_second": round(steps / raw.wall_s, 2),
    }


def _raw_burst(
    kube: Kube, namespace: str, run_id: str, nodes: FakeNodes, *, count: int, timeout: float
) -> dict[str, Any]:
    """The burst's chains of pods with no engine (``rawburst``), in a namespace of their own,
    deleted (and waited for) before the engines run, so its pods weigh on neither."""
    kube.create_namespace(namespace, run_id)
    try:
        return rawburst.run(
            kube, namespace, count=count, steps=BURST_STEPS, toleration=nodes.toleration,
            selector=nodes.selector, timeout=timeout,
        )  # fmt: skip
    finally:
        delete_namespace(kube, run_id, namespace, timeout=180)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> int:
    out = Path(os.environ.get("BENCH_OUT") or "bench-peers.json")
    phases = [
        p.strip() for p in (os.environ.get("BENCH_PEERS_PHASES") or ",".join(PHASES)).split(",")
    ]
    steps = int(os.environ.get("BENCH_PEERS_STEPS") or 20)
    count = int(os.environ.get("BENCH_PEERS_PIPELINES") or 200)
    demo_operator.stop("make bench-peers measures the only operator here", say=print)
    paths = Paths.default()
    run_id = secrets.token_hex(3)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"shipway-bench-peers-{run_id}"
    workdir.mkdir(parents=True)
    print(f"bench-peers {run_id}: phases {', '.join(phases)}; logs in {workdir}", flush=True)
    cold = not build.is_built(argobuild.ARGO, paths, build.go_version(paths))
    t0 = time.monotonic()
    argobuild.ensure_built(paths)
    built_s = time.monotonic() - t0
    build_record = json.loads((argobuild.ARGO.bin_dir(paths).parent / "build.json").read_text())
    image = argoimage.ensure_image(paths)
    kube = Kube.connect()
    results: dict[str, Any] = {
        "run_id": run_id,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "argo": {"version": argobuild.ARGO_VERSION, "built_now": cold,
                 "build_s": round(built_s, 1), "cold_build_s": build_record.get("seconds"),
                 "image": image, "settings": argo.SETTINGS},
        "shipway_settings": {"operator": "python -m shipway operator -n NS (defaults)",
                             "burst": "SHIPWAY_MAX_NAMESPACE_PODS=0 (as make bench's scale)"},
        "phases": {},
    }  # fmt: skip
    crds = Path(__file__).resolve().parents[3] / "crds"
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    ship_ns, argo_ns = f"bench-peers-{run_id}", f"bench-argo-{run_id}"
    raw_ns = f"bench-raw-{run_id}"
    nodes: FakeNodes | None = None
    failed = False
    try:
        argo.install_crds(kube, paths)
        for ns in (ship_ns, argo_ns):
            kube.create_namespace(ns, run_id)
        objects = argo.namespace_objects(argo_ns, argo_metrics_port())
        kube.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
        )
        for phase in phases:
            print(f"phase {phase} ...", flush=True)
            if phase == "serial":
                row: dict[str, Any] = {
                    "raw": _raw_serial(kube, ship_ns, steps),
                    "shipway": _shipway_one(kube, ship_ns, workdir, phase,
                                            body=work.shipway_serial("serial", steps), steps=steps),
                    "argo": _argo_run(kube, argo_ns, workdir, paths, image=image, phase=phase,
                                      bodies=[work.argo_serial("serial", steps)], steps=steps),
                }  # fmt: skip
            elif phase == "workspace":
                row = {
                    "shipway": _shipway_one(kube, ship_ns, workdir, phase,
                                            body=work.shipway_workspace("workspace", steps), steps=steps),
                    "argo": _argo_run(kube, argo_ns, workdir, paths, image=image, phase=phase,
                                      bodies=[work.argo_workspace("workspace", steps)], steps=steps),
                }  # fmt: skip
            elif phase == "burst":
                if nodes is None:
                    nodes = FakeNodes(kube, run_id, workdir)
                    nodes.start(max(4, math.ceil(count / 100)), pods_per_node=2000)
                timeout = max(180.0, count * BURST_STEPS / 5)
                raw = _raw_burst(kube, raw_ns, run_id, nodes, count=count, timeout=timeout)
                sc = scale.run_scale(
                    kube, run_id, workdir, nodes, count=count, steps=BURST_STEPS, timeout=timeout
                )
                delete_namespace(kube, run_id, sc["namespace"], timeout=180)
                bodies = [
                    work.argo_burst(f"p-{i:04d}", BURST_STEPS, nodes.toleration, nodes.selector)
                    for i in range(count)
                ]
                row = {
                    "raw": raw,
                    "shipway": {
                        "wall_s": sc["elapsed_s"],
                        "steps": sc["steps_completed"],
                        "transition_gap_ms": sc["transition_gap_ms"],
                        "steps_per_second": sc["steps_per_second"],
                        "controller_cpu_s": sc["operator_cpu_s"],
                        "controller_cpu_ms_per_step": round(1000 * sc["operator_cpu_s"] / sc["steps_completed"], 2) if sc["steps_completed"] else None,
                        "controller_peak_rss_mb": sc["operator_peak_rss_mb"],
                        "api_writes_per_step": sc["api_writes_per_step"],
                        "api_writes": operator_writes(sc["all_writes"]),
                    },
                    "argo": _argo_run(kube, argo_ns, workdir, paths, image=image, phase=phase, bodies=bodies,
                                      steps=BURST_STEPS, fake=True, submit_first=True),
                }  # fmt: skip
            else:
                raise RuntimeError(f"unknown phase {phase}; known: {', '.join(PHASES)}")
            sw, ar = row["shipway"], row["argo"]
            row["shipway_vs_argo_wall"] = _ratio(sw["wall_s"], ar["wall_s"])
            row["shipway_vs_argo_throughput"] = _ratio(
                sw["steps_per_second"], ar["steps_per_second"]
            )
            results["phases"][phase] = row
            print(table({"phases": {phase: row}}), flush=True)
    except Exception:
        failed = True
        results["error"] = traceback.format_exc()
        print(results["error"], file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            for ns in (ship_ns, argo_ns, raw_ns):
                delete_namespace(kube, run_id, ns, timeout=180)
        with contextlib.suppress(Exception):
            argo.remove_crds(kube, paths)
        if nodes is not None:
            with contextlib.suppress(Exception):
                nodes.stop()
    results["load_average_at_end"] = os.getloadavg()
    write_json(out, results)
    print()
    print(table(results))
    print(f"\n{out} written")
    return 1 if failed else 0


def argo_metrics_port() -> int:
    from bench.procs import free_port

    return free_port()


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}" if value < 10 else f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def table(results: dict[str, Any]) -> str:
    """One table: each phase, each engine, raw pods as the limit where measured."""
    head = ("phase / engine", "wall", "gap p50", "gap p95", "steps/s", "CPU s", "CPU ms/step",
            "peak RSS", "writes/step")  # fmt: skip
    lines = ["{:<22}{:>9}{:>10}{:>10}{:>9}{:>8}{:>12}{:>10}{:>12}".format(*head)]
    for phase, row in (results.get("phases") or {}).items():
        for engine in ("raw", "shipway", "argo"):
            fig = row.get(engine)
            if not fig:
                continue
            gap = fig.get("transition_gap_ms") or {}
            lines.append(
                "{:<22}{:>9}{:>10}{:>10}{:>9}{:>8}{:>12}{:>10}{:>12}".format(
                    f"{phase} / {engine}",
                    _f(fig.get("wall_s"), " s"),
                    _f(gap.get("p50"), " ms"),
                    _f(gap.get("p95"), " ms"),
                    _f(fig.get("steps_per_second")),
                    _f(fig.get("controller_cpu_s")),
                    _f(fig.get("controller_cpu_ms_per_step")),
                    _f(fig.get("controller_peak_rss_mb"), " MB"),
                    _f(fig.get("api_writes_per_step")),
                )
            )
        lines.append(
            f"{'':<22}shipway / argo: wall {_f(row.get('shipway_vs_argo_wall'))},"
            f" throughput {_f(row.get('shipway_vs_argo_throughput'))}"
        )
    return "\n".join(lines)
