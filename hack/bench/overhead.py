"""Phase 1: step-to-step overhead on the real kubelet, against raw pods created back to back.

Both runs use the same pods: the raw script creates exactly what ``shipway render`` gives for
the pipeline (the same claim, images, arguments and environment), minus the owner reference
and Shipway's labels, one after the other as soon as its own watch shows the previous one
terminated. Gaps are read from one separate measuring watch for both.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.kube import Kube
from bench.procs import Operator
from bench.stats import summary_ms
from bench.watch import PodRecord, PodWatch
from localkube.config import BUSYBOX_IMAGE
from shipway import GROUP, KIND, VERSION
from shipway.compiler.pipeline import compile_pipeline
from shipway.engine.intents import StepToCreate
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.pods.manifests import claim_manifest, pod_manifest

RAW_LABEL = "shipway.dev/bench-raw"


def pipeline_body(name: str, steps: int, workspace: dict[str, Any] | None = None) -> Manifest:
    """No-op steps; with a ``workspace`` the service also mounts it (so it gets a claim)."""
    service: Manifest = {"image": BUSYBOX_IMAGE}
    if workspace:
        service["volumes"] = ["./:/ws"]
    spec: Manifest = {
        "services": {"noop": service},
        "steps": [
            {"name": f"s{i:02d}", "service": "noop", "command": "true"} for i in range(1, steps + 1)
        ],
    }
    if workspace:
        spec["workspace"] = workspace
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def raw_manifests(namespace: str, name: str, steps: int) -> tuple[Manifest, list[Manifest]]:
    """The claim and pods Shipway would create, as plain objects nobody owns."""
    body = pipeline_body(name, steps)
    ref = PipelineRef(name, namespace, "00000000-0000-0000-0000-000000000000", 1, None)
    compiled = compile_pipeline(body["spec"])
    claim = claim_manifest(ref, compiled)
    claim["metadata"].pop("ownerReferences", None)
    claim["metadata"]["labels"] = {RAW_LABEL: name}
    pods = []
    for run in compiled.runs:
        pod = pod_manifest(ref, compiled, StepToCreate(run.id, 0, f"{name}-{int(run.id):02d}"))
        pod["metadata"].pop("ownerReferences")
        pod["metadata"]["labels"] = {RAW_LABEL: name, "step": run.id}
        pod["spec"].pop("affinity", None)  # one node; Shipway's own pinning is its business
        pods.append(pod)
    return claim, pods


@dataclass
class Run:
    wall_s: float
    gaps: list[float]
    pods: list[PodRecord]


def _gaps(pods: list[PodRecord]) -> list[float]:
    gaps = []
    for before, after in itertools.pairwise(pods):
        if before.terminated_at is not None and after.added_at is not None:
            gaps.append(after.added_at - before.terminated_at)
    return gaps


def run_raw(kube: Kube, namespace: str, steps: int, measure: PodWatch, *, timeout: float) -> Run:
    """The minimal script: create a pod, wait for its termination on a watch, create the next."""
    name = "raw"
    claim, pods = raw_manifests(namespace, name, steps)
    driver = PodWatch(kube.fresh_api(), namespace, f"{RAW_LABEL}={name}")
    driver.start()
    driver.ready.wait(30)
    started = time.monotonic()
    kube.core.create_namespaced_persistent_volume_claim(namespace, claim, _preload_content=False)
    try:
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            kube.create_pod(namespace, pod)
            done = driver.wait_for(
                lambda n=pod_name: (
                    (r := driver.pods.get(n)) is not None  # type: ignore[misc]
                    and r.terminated_at is not None
                ),
                timeout,
            )
            if not done:
                raise RuntimeError(f"raw pod {pod_name} did not finish in {timeout:.0f}s")
    finally:
        driver.stop()
    names = [p["metadata"]["name"] for p in pods]
    measure.wait_for(lambda: all(measure.pods.get(n, _NONE).terminated_at for n in names), 30)
    with measure.lock:
        records = [measure.pods[n] for n in names]
    last = records[-1].terminated_at or time.monotonic()
    return Run(last - started, _gaps(records), records)


_NONE = PodRecord("")


def run_shipway(
    kube: Kube, namespace: str, steps: int, measure: PodWatch, *, timeout: float
) -> Run:
    name = "overhead"
    started = time.monotonic()
    kube.create_pipeline(namespace, pipeline_body(name, steps))

    def finished() -> bool:
        mine = [p for p in measure.pods.values() if p.pipeline == name]
        return len(mine) == steps and all(p.terminated_at for p in mine)

    if not measure.wait_for(finished, timeout):
        raise RuntimeError(f"the {steps}-step pipeline did not finish in {timeout:.0f}s")
    with measure.lock:
        records = sorted(
            (p for p in measure.pods.values() if p.pipeline == name),
            key=lambda p: int(p.step or 0),
        )
    last = records[-1].terminated_at or time.monotonic()
    return Run(last - started, _gaps(records), records)


def run(kube: Kube, run_id: str, workdir: Path, steps: int = 20) -> dict[str, Any]:
    namespace = f"bench-overhead-{run_id}"
    kube.create_namespace(namespace, run_id)
    operator = Operator([namespace], workdir / "operator-overhead.log")
    measure = PodWatch(kube.fresh_api(), namespace)
    measure.start()
    measure.ready.wait(30)
    try:
        operator.start(kube.kubeconfig)
        ready_s = operator.wait_ready()
        timeout = 60 + 10 * steps
        raw = run_raw(kube, namespace, steps, measure, timeout=timeout)
        shipway = run_shipway(kube, namespace, steps, measure, timeout=timeout)
        usage = operator.usage()
    finally:
        operator.stop()
        measure.stop()
    return {
        "namespace": namespace,
        "steps": steps,
        "operator_ready_s": round(ready_s, 2),
        "transition_gap_ms": summary_ms(shipway.gaps),
        "raw_gap_ms": summary_ms(raw.gaps),
        "shipway_wall_s": round(shipway.wall_s, 2),
        "raw_wall_s": round(raw.wall_s, 2),
        "shipway_vs_raw_ratio": round(shipway.wall_s / raw.wall_s, 3),
        "gaps_ms": [round(g * 1000, 1) for g in shipway.gaps],
        "raw_gaps_ms": [round(g * 1000, 1) for g in raw.gaps],
        "operator_peak_rss_mb": usage.peak_rss_mb,
        "watch_errors": measure.errors,
    }
