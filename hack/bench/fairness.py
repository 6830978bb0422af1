"""Phase ``fairness``: a neighbour's small pipeline alone, then beside a tenant's 1000-step one.

Two namespaces, one operator serving both, on the benchmark's fake kwok nodes (pods run and
end at once, so the operator and the API server are all that is measured). The neighbour's
3-step serial pipeline runs ``REPEATS`` times alone; then the tenant's Pipeline of 1000 steps
(five parallel groups of 200, within every limit: 20 of its pods at once) is created in the
other namespace and, once it is under way, the neighbour's pipeline runs ``REPEATS`` times
beside it, and ``REPEATS`` times alone again after it. The figure is the ratio of the
medians (beside / alone), each run timed from the neighbour's create to the watch event
showing it Succeeded.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.kube import Kube
from bench.overhead import pipeline_body
from bench.procs import FakeNodes, Operator
from bench.watch import PipelineWatch
from shipway.engine.objects import Manifest

REPEATS = 3
BIG_STEPS = 1000
NEIGHBOUR_STEPS = 3
GROUP = 200
UNDER_WAY = 100
"""The tenant's steps done before the neighbour's runs beside it start."""


def big_pipeline(name: str, steps: int = BIG_STEPS) -> Manifest:
    """``steps`` no-op steps in parallel groups of :data:`GROUP` (the most a group may hold),
    one group after the other: as many pods at once as the limits allow."""
    body = pipeline_body(name, 1)
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


def _progress(watch: PipelineWatch, name: str) -> int:
    record = watch.pipelines.get(name)
    if record is None or not record.progress:
        return 0
    return int(record.progress.split("/")[0])


def _finished(watch: PipelineWatch, name: str) -> bool:
    record = watch.pipelines.get(name)
    return record is not None and record.finished_at is not None


def _run_neighbour(kube: Kube, namespace: str, watch: PipelineWatch, name: str) -> float:
    """Seconds from the create to the watch showing the pipeline Succeeded."""
    started = time.monotonic()
    kube.create_pipeline(namespace, pipeline_body(name, NEIGHBOUR_STEPS))
    done = watch.wait_for(lambda: _finished(watch, name), timeout=300)
    record = watch.pipelines[name]
    if not done or record.phase != "Succeeded" or record.finished_at is None:
        raise RuntimeError(f"neighbour {name} did not succeed: {record.phase}")
    return record.finished_at - started


def run(kube: Kube, run_id: str, workdir: Path, nodes: FakeNodes) -> dict[str, Any]:
    tenant = f"bench-fair-a-{run_id}"
    neighbour = f"bench-fair-b-{run_id}"
    for namespace in (tenant, neighbour):
        kube.create_namespace(namespace, run_id)
    big = PipelineWatch(kube.fresh_api(), tenant)
    small = PipelineWatch(kube.fresh_api(), neighbour)
    for watch in (big, small):
        watch.start()
        if not watch.ready.wait(30):
            raise RuntimeError("the watches did not start")
    operator = Operator(
        [tenant, neighbour], workdir / "operator-fairness.log", nodes.operator_env()
    )
    try:
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        _run_neighbour(kube, neighbour, small, "warm-up")  # first pod list, imports, caches
        alone = [_run_neighbour(kube, neighbour, small, f"alone-{i}") for i in range(REPEATS)]
        submitted = time.monotonic()
        kube.create_pipeline(tenant, big_pipeline("big"))
        if not big.wait_for(lambda: _progress(big, "big") >= UNDER_WAY, timeout=300, poll=0.2):
            raise RuntimeError(f"the 1000-step pipeline did not get under way: {big.pipelines}")
        under_way_s = time.monotonic() - submitted
        beside = [_run_neighbour(kube, neighbour, small, f"beside-{i}") for i in range(REPEATS)]
        done_beside = _progress(big, "big")
        finished = big.wait_for(lambda: _finished(big, "big"), 600, poll=0.5)
        record = big.pipelines["big"]
        # Alone again once it is over: the shared machine's load drifts, so the baseline
        # is taken on both sides of the runs beside it.
        alone += [_run_neighbour(kube, neighbour, small, f"after-{i}") for i in range(REPEATS)]
        big_s = (record.finished_at - submitted) if record.finished_at else None
        usage = operator.usage()
    finally:
        operator.stop()
        big.stop()
        small.stop()
    median_alone, median_beside = statistics.median(alone), statistics.median(beside)
    return {
        "namespaces": [tenant, neighbour],
        "big_steps": BIG_STEPS,
        "neighbour_steps": NEIGHBOUR_STEPS,
        "repeats": REPEATS,
        "alone_s": [round(s, 2) for s in alone],
        "beside_s": [round(s, 2) for s in beside],
        "alone_median_s": round(median_alone, 2),
        "beside_median_s": round(median_beside, 2),
        "ratio": round(median_beside / median_alone, 2) if median_alone else None,
        "big_under_way_s": round(under_way_s, 1),
        "big_steps_done_when_neighbour_finished": done_beside,
        "big_finished": finished,
        "big_phase": record.phase,
        "big_s": round(big_s, 1) if big_s is not None else None,
        "big_steps_per_second": round(BIG_STEPS / big_s, 1) if big_s else None,
        "big_status_writes": record.writes,
        "operator_cpu_s": usage.cpu_s,
        "operator_peak_rss_mb": usage.peak_rss_mb,
    }
