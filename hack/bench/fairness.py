"""Phase ``fairness``: a neighbour's small pipeline alone, then beside a tenant's 1000-step one.

Two namespaces, one operator serving both. The tenant's Pipeline of 1000 no-op steps (five
parallel groups of 200, within every limit: 20 of its pods at once) runs on the benchmark's
fake kwok nodes (its pods run and end at once: only the operator, the API server and the
scheduler are busy). The neighbour's 3-step serial pipeline of busybox no-op steps runs on
the real node, as a user's would (the issue's case: 3-4 s alone); it mounts its workspace, a
claim bound to a volume on that node, which is what keeps its pods there while the operator's
pods all tolerate the fake nodes. The same 3 steps on kwok (``kwok_*``) are run after each
real run, for comparison with the earlier rounds' figures.

Order: a warm-up of each, ``REPEATS`` runs of each alone; then the 1000-step pipeline and,
once it is under way, ``REPEATS`` of each beside it (started only while it runs); then
``REPEATS`` of each alone again (the shared machine's load drifts, so the baseline is taken on
both sides). The figure is the ratio of the medians (beside / alone) of the real runs, each run
timed from the neighbour's create to the watch event showing it Succeeded; every run's pods'
timeline (:func:`timeline`) says where its time went.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.kube import BENCH_LABEL, Kube
from bench.overhead import pipeline_body
from bench.procs import KWOK_RESOURCE, FakeNodes, Operator
from bench.watch import PipelineWatch, PodRecord, PodWatch
from shipway.engine.objects import Manifest

REPEATS = 3
BIG_STEPS = 1000
NEIGHBOUR_STEPS = 3
GROUP = 200
UNDER_WAY = 100
"""The tenant's steps done before the neighbour's runs beside it start."""
CLAIM = "workspace"
"""The neighbour's workspace claim, bound to a volume on the real node."""


def on_kwok(body: Manifest) -> Manifest:
    """Send every pod of ``body`` to the fake nodes: its service asks for their resource."""
    for service in body["spec"]["services"].values():
        service["resources"] = {"limits": {KWOK_RESOURCE: 1}}
    return body


def big_pipeline(name: str, steps: int = BIG_STEPS) -> Manifest:
    """``steps`` no-op steps in parallel groups of :data:`GROUP` (the most a group may hold),
    one group after the other, on kwok: as many pods at once as the limits allow."""
    body = on_kwok(pipeline_body(name, 1))
    body["spec"]["steps"] = [
        {
            "type": "parallel",
            "name": f"group {start // GROUP}",
            "steps": [
                {"name": f"p{i:04d}", "service": "noop", "command": "true"}
                for i in range(start, min(steps, start + GROUP))
            ],
        }
        for start in range(0, steps, GROUP)
    ]
    return body


def neighbour_pipeline(name: str, *, real: bool) -> Manifest:
    """The neighbour's 3 steps: on the real node (through its claim) or on kwok."""
    if real:
        return pipeline_body(name, NEIGHBOUR_STEPS, workspace={"claimName": CLAIM})
    return on_kwok(pipeline_body(name, NEIGHBOUR_STEPS))


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def _total(values: list[float | None]) -> float:
    return round(sum(v for v in values if v is not None), 3)


def timeline(created: float, pods: list[PodRecord], finished: float) -> dict[str, Any]:
    """Where one run of the neighbour went, from its create to the watch seeing it Succeeded.

    The operator's share is the create to its first pod, each pod's end to the next pod's
    create, and the last end to the status saying Succeeded; the cluster's is each pod's wait
    for the scheduler (created → bound), its start (bound → running, or ended if that was
    seen first) and its run (→ ended).
    A part the watch did not see (a pod seen only once it had ended) counts as None and
    nowhere in the sums.
    """
    ordered = sorted(pods, key=lambda p: int(p.step or 0) if (p.step or "0").isdigit() else 0)
    rows: list[dict[str, Any]] = []
    operator: list[float | None] = []
    cluster: list[float | None] = []
    scheduler: list[float | None] = []
    before = created
    for pod in ordered:
        # A container that exits at once is often seen ended before the pod's phase says
        # Running: it ran by the time either was seen.
        seen = [t for t in (pod.running_at, pod.terminated_at) if t is not None]
        running = min(seen) if seen else None
        create = _span(before, pod.added_at)
        parts = {
            "scheduled_s": _span(pod.added_at, pod.scheduled_at),
            "running_s": _span(pod.scheduled_at, running),
            "ended_s": _span(running, pod.terminated_at),
        }
        rows.append({"step": pod.step, "create_s": create, **parts})
        operator.append(create)
        cluster += parts.values()
        scheduler.append(parts["scheduled_s"])
        before = pod.terminated_at if pod.terminated_at is not None else before
    tail = _span(before, finished) if ordered else None
    operator.append(tail)
    return {
        "total_s": round(finished - created, 3),
        "operator_s": _total(operator),
        "cluster_s": _total(cluster),
        "scheduler_wait_s": _total(scheduler),
        "pods": rows,
        "end_to_succeeded_s": tail,
    }


def ratio(alone: list[float], beside: list[float]) -> dict[str, Any]:
    """Medians of the runs alone and beside, and their ratio (None without both)."""
    median_alone = statistics.median(alone) if alone else None
    median_beside = statistics.median(beside) if beside else None
    return {
        "alone_s": [round(s, 2) for s in alone],
        "beside_s": [round(s, 2) for s in beside],
        "alone_median_s": None if median_alone is None else round(median_alone, 2),
        "beside_median_s": None if median_beside is None else round(median_beside, 2),
        "ratio": (
            round(median_beside / median_alone, 2)
            if median_alone and median_beside is not None
            else None
        ),
    }


def _progress(watch: PipelineWatch, name: str) -> int:
    record = watch.pipelines.get(name)
    if record is None or not record.progress:
        return 0
    return int(record.progress.split("/")[0])


def _finished(watch: PipelineWatch, name: str) -> bool:
    record = watch.pipelines.get(name)
    return record is not None and record.finished_at is not None


def real_node(kube: Kube) -> str:
    """The first Ready node without taints (the fake nodes, the benchmark's and the
    cluster's own, all carry one)."""
    for node in kube.list_json(kube.core.list_node)["items"]:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (node.get("status") or {}).get("conditions") or ()
        )
        if ready and not (node.get("spec") or {}).get("taints"):
            return str(node["metadata"]["name"])
    raise RuntimeError("no Ready real node for the neighbour's pods")


def bind_claim(kube: Kube, run_id: str, namespace: str, *, node: str, path: Path) -> None:
    """A claim in ``namespace`` bound to a host-path volume at ``path`` on ``node`` (the
    local cluster's node is this host; the volume is deleted with the run's): pods that
    mount it can run on that node only."""
    volume = f"bench-fair-{run_id}"
    kube.core.create_persistent_volume(
        {
            "metadata": {"name": volume, "labels": {BENCH_LABEL: run_id}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [node],
                                    }
                                ]
                            }
                        ]
                    }
                },
                "claimRef": {"namespace": namespace, "name": CLAIM},
            },
        },
        _preload_content=False,
    )
    kube.core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": CLAIM},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        _preload_content=False,
    )


class Neighbour:
    """Runs the neighbour's pipeline and keeps every run's time and timeline."""

    def __init__(self, kube: Kube, namespace: str, watch: PipelineWatch, pods: PodWatch) -> None:
        self.kube = kube
        self.namespace = namespace
        self.watch = watch
        self.pods = pods
        self.timelines: dict[str, dict[str, Any]] = {}

    def run(self, name: str, *, real: bool) -> float:
        """Seconds from the create to the watch showing the pipeline Succeeded."""
        started = time.monotonic()
        self.kube.create_pipeline(self.namespace, neighbour_pipeline(name, real=real))
        done = self.watch.wait_for(lambda: _finished(self.watch, name), timeout=300)
        record = self.watch.pipelines[name]
        if not done or record.phase != "Succeeded" or record.finished_at is None:
            raise RuntimeError(f"neighbour {name} did not succeed: {record.phase}")
        self.pods.wait_for(  # the pod watch is a stream of its own: it may lag a little
            lambda: (
                len(mine := self.pods.by_pipeline.get(name, ())) >= NEIGHBOUR_STEPS
                and all(p.terminated_at is not None for p in mine)
            ),
            timeout=10,
        )
        with self.pods.lock:
            pods = list(self.pods.by_pipeline.get(name, ()))
        self.timelines[name] = timeline(started, pods, record.finished_at)
        return record.finished_at - started


def run(kube: Kube, run_id: str, workdir: Path, nodes: FakeNodes) -> dict[str, Any]:
    load_start = os.getloadavg()
    tenant = f"bench-fair-a-{run_id}"
    neighbour = f"bench-fair-b-{run_id}"
    for namespace in (tenant, neighbour):
        kube.create_namespace(namespace, run_id)
    node = real_node(kube)
    bind_claim(kube, run_id, neighbour, node=node, path=workdir / "neighbour-workspace")
    big = PipelineWatch(kube.fresh_api(), tenant)
    small = PipelineWatch(kube.fresh_api(), neighbour)
    small_pods = PodWatch(kube.fresh_api(), neighbour)
    for watch in (big, small, small_pods):
        watch.start()
        if not watch.ready.wait(30):
            raise RuntimeError("the watches did not start")
    operator = Operator(
        [tenant, neighbour], workdir / "operator-fairness.log", nodes.operator_env(select=False)
    )
    runs = Neighbour(kube, neighbour, small, small_pods)
    real: dict[str, list[float]] = {"alone": [], "beside": []}
    fake: dict[str, list[float]] = {"alone": [], "beside": []}

    def both(label: str, key: str, i: int) -> None:
        real[key].append(runs.run(f"{label}-{i}", real=True))
        fake[key].append(runs.run(f"kwok-{label}-{i}", real=False))

    beside_progress: list[tuple[int, int]] = []
    try:
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        runs.run("warm-up", real=True)  # the first pod list, imports, caches, the image
        runs.run("kwok-warm-up", real=False)
        for i in range(REPEATS):
            both("alone", "alone", i)
        submitted = time.monotonic()
        kube.create_pipeline(tenant, big_pipeline("big"))
        if not big.wait_for(lambda: _progress(big, "big") >= UNDER_WAY, timeout=300, poll=0.2):
            raise RuntimeError(f"the 1000-step pipeline did not get under way: {big.pipelines}")
        under_way_s = time.monotonic() - submitted
        for i in range(REPEATS):
            if _finished(big, "big"):
                break
            at_start = _progress(big, "big")
            both("beside", "beside", i)
            beside_progress.append((at_start, _progress(big, "big")))
        finished = big.wait_for(lambda: _finished(big, "big"), 600, poll=0.5)
        record = big.pipelines["big"]
        for i in range(REPEATS):
            both("after", "alone", i)
        big_s = (record.finished_at - submitted) if record.finished_at else None
        usage = operator.usage()
    finally:
        operator.stop()
        for watch in (big, small, small_pods):
            watch.stop()
    real_figures, kwok_figures = ratio(**real), ratio(**fake)
    return {
        "namespaces": [tenant, neighbour],
        "real_node": node,
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "big_steps": BIG_STEPS,
        "neighbour_steps": NEIGHBOUR_STEPS,
        "repeats": REPEATS,
        **real_figures,
        "kwok": kwok_figures,
        "kwok_ratio": kwok_figures["ratio"],
        "big_progress_during_beside_runs": beside_progress,
        "timelines": runs.timelines,
        "big_under_way_s": round(under_way_s, 1),
        "big_finished": finished,
        "big_phase": record.phase,
        "big_s": round(big_s, 1) if big_s is not None else None,
        "big_steps_per_second": round(BIG_STEPS / big_s, 1) if big_s else None,
        "big_status_writes": record.writes,
        "operator_cpu_s": usage.cpu_s,
        "operator_peak_rss_mb": usage.peak_rss_mb,
    }
