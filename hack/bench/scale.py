"""Phases 2 and 3: throughput, API writes and memory at scale; then a SIGKILL and a restart."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.kube import Kube, log_reads, operator_writes, write_deltas
from bench.load import Seen, bench_pipeline, pipeline_names, prepare_storage, submit, with_volumes
from bench.procs import FakeNodes, Operator, component_cpu, host_cpu_seconds
from bench.stats import percentile, summary_ms
from bench.threads import cpu_by_group, profile_thread_names, thread_cpu
from bench.watch import PipelineWatch, PodWatch

TERMINAL = ("Succeeded", "Failed", "Cancelled")
DRAIN_S = 2.0


class RssSampler(threading.Thread):
    """The operator's resident set once a second, with the number of live pipelines then."""

    def __init__(self, operator: Operator, live: Callable[[], int]) -> None:
        super().__init__(daemon=True, name="rss")
        self.operator = operator
        self.live = live
        self.stopping = threading.Event()
        self.samples: list[tuple[float, float, int]] = []

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                usage = self.operator.usage()
            except (FileNotFoundError, ProcessLookupError):
                return
            self.samples.append((time.monotonic(), usage.rss_mb, self.live()))


def uncapped(nodes: FakeNodes) -> dict[str, str]:
    """The operator's settings in these phases: one namespace's throughput is measured, so
    without the namespace cap (with it, 1000 live pipelines would measure the cap)."""
    return {**nodes.operator_env(), "SHIPWAY_MAX_NAMESPACE_PODS": "0"}


def _watches(kube: Kube, namespace: str) -> tuple[PodWatch, PipelineWatch]:
    pods = PodWatch(kube.fresh_api(), namespace)
    pipelines = PipelineWatch(kube.fresh_api(), namespace)
    pods.start()
    pipelines.start()
    if not (pods.ready.wait(30) and pipelines.ready.wait(30)):
        raise RuntimeError("the watches did not start")
    return pods, pipelines


def _all_finished(pipelines: PipelineWatch, count: int) -> Callable[[], bool]:
    def check() -> bool:
        done = sum(1 for p in pipelines.pipelines.values() if p.phase in TERMINAL)
        return done >= count

    return check


def _shipway_events(kube: Kube, namespace: str) -> int:
    items = kube.list_json(kube.core.list_namespaced_event, namespace)["items"]
    return sum(1 for e in items if (e.get("source") or {}).get("component") == "shipway")


def _profile(operator: Operator, workdir: Path, name: str) -> str | None:
    if not os.environ.get("BENCH_PROFILE"):
        return None
    output = workdir / f"{name}.speedscope.json"
    operator.profile(output)
    return str(output)


def _settle_events(kube: Kube, namespace: str, limit: float = 120) -> float:
    """Wait until the operator's Events (sent in the background) stop arriving; seconds."""
    started = time.monotonic()
    last, stable = -1, 0
    while time.monotonic() - started < limit and stable < 3:
        count = _shipway_events(kube, namespace)
        stable = stable + 1 if count == last else 0
        last = count
        time.sleep(1)
    return time.monotonic() - started


def _submit_paced(kube: Kube, namespace: str, names: list[str], steps: int, *, rate: float) -> None:
    """One pipeline every 1/rate seconds, on a fixed schedule (late ones catch up)."""
    start = time.monotonic()
    for i, name in enumerate(names):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        kube.create_pipeline(namespace, bench_pipeline(name, steps))


def run_scale(
    kube: Kube,
    run_id: str,
    workdir: Path,
    nodes: FakeNodes,
    *,
    count: int,
    steps: int,
    timeout: float,
    rate: float | None = None,
    label: str = "",
    env: dict[str, str] | None = None,
    settle: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """``count`` pipelines submitted at once, or ``rate`` pipelines per second.

    ``label`` names the namespace and log (default scale/paced), ``env`` adds to the
    operator's environment, and ``settle`` waits (after the Events) for what the operator
    still does in the background, e.g. archiving logs, so its CPU and calls are counted.
    """
    label = label or ("scale" if rate is None else "paced")
    namespace = f"bench-{label}-{run_id}"
    kube.create_namespace(namespace, run_id)
    names = pipeline_names("p", count)
    prepared = time.monotonic()
    prepare_storage(kube, run_id, namespace, names)
    prepare_s = time.monotonic() - prepared
    pods, pipelines = _watches(kube, namespace)
    operator = Operator(
        [namespace], workdir / f"operator-{label}.log", {**uncapped(nodes), **(env or {})}
    )
    sampler: RssSampler | None = None
    settle_s = 0.0
    try:
        burst_submit = time.monotonic()
        if rate is None:
            # The burst is waiting when the operator starts: all pipelines live at once, from
            # the first moment (submitted while it ran, the first finished before the last
            # was created, and 1000 were never live together).
            submit(kube, namespace, names, steps)
        burst_submit_s = time.monotonic() - burst_submit
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        # The operator's CPU from here on: its start (imports, e.g. SQLAlchemy's 0.9 s when
        # archival is on, and the first connections) is a fixed cost, not one per step.
        cpu_at_ready = operator.usage().cpu_s
        profile = _profile(operator, workdir, label)
        threads_before = thread_cpu(operator.pid)
        before = kube.request_counts()
        cpu_before, host_before = component_cpu(), host_cpu_seconds()
        bench_cpu_before = time.process_time()
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        sampler = RssSampler(
            operator,
            lambda: sum(1 for p in list(pipelines.pipelines.values()) if p.phase not in TERMINAL),
        )
        sampler.start()
        if rate is not None:
            _submit_paced(kube, namespace, names, steps, rate=rate)
        submitted = time.monotonic() - started if rate is not None else burst_submit_s
        complete = pipelines.wait_for(_all_finished(pipelines, count), timeout, poll=0.5)
        events_drain_s = _settle_events(kube, namespace)
        if settle is not None:
            settle_s = settle()
        after = kube.request_counts()
        usage = operator.usage()
        threads_after = thread_cpu(operator.pid)
        cpu_after, host_after = component_cpu(), host_cpu_seconds()
        bench_cpu_after = time.process_time()
        window = time.monotonic() - started
    finally:
        if sampler is not None:
            sampler.stopping.set()
        operator.stop()
        pods.stop()
        pipelines.stop()
    # by thread only with a profile: py-spy's output is what names the threads
    thread_names = profile_thread_names(Path(profile)) if profile else {}
    seen = Seen.take(pods, pipelines)
    terminated = sorted(r.terminated_at for r in seen.pods if r.terminated_at is not None)
    total_steps = len(terminated)
    elapsed = (terminated[-1] - started) if terminated else float("nan")
    low, high = percentile(terminated, 10), percentile(terminated, 90)
    sustained = (
        0.8 * total_steps / (high - low)
        if low is not None and high is not None and high > low
        else None
    )
    deltas = write_deltas(before, after)
    mine = operator_writes(deltas)
    writes = sum(mine.values())
    gaps = seen.gaps()
    # The same writes counted from what the benchmark sees in its own namespace, immune to
    # other users of the cluster (the apiserver's counters are cluster-wide).
    watched = {
        "pods_created": sum(1 for r in seen.pods if r.added_at is not None),
        "status_writes": sum(p.writes for p in seen.pipelines),
        "shipway_events": _shipway_events(kube, namespace),
        "claim_creates": sum(v for k, v in mine.items() if "persistentvolumeclaims" in k),
    }
    peak_live = max((s[2] for s in sampler.samples), default=0) if sampler else 0
    return {
        "namespace": namespace,
        "pipelines": count,
        "steps_per_pipeline": steps,
        "volumes": with_volumes(),
        "submitted_per_second": rate,
        "complete": complete,
        "succeeded": sum(1 for p in seen.phases.values() if p == "Succeeded"),
        "steps_completed": total_steps,
        "events_drain_s": round(events_drain_s, 1),
        "settle_s": round(settle_s, 1),
        "claims_prepared_s": round(prepare_s, 1),
        "submit_s": round(submitted, 1),
        "elapsed_s": round(elapsed, 1),
        "steps_per_second": round(total_steps / elapsed, 1) if total_steps else 0.0,
        "steps_per_second_sustained": round(sustained, 1) if sustained else None,
        "transition_gap_ms": summary_ms(gaps),
        "pod_latency_ms": {
            "created_to_scheduled": summary_ms(
                [r.scheduled_at - r.added_at for r in seen.pods if r.scheduled_at and r.added_at]
            ),
            "scheduled_to_running": summary_ms(
                [
                    r.running_at - r.scheduled_at
                    for r in seen.pods
                    if r.running_at and r.scheduled_at
                ]
            ),
            "running_to_terminated": summary_ms(
                [
                    r.terminated_at - r.running_at
                    for r in seen.pods
                    if r.terminated_at and r.running_at
                ]
            ),
        },
        "p95_gap_ms": summary_ms(gaps)["p95"],
        "api_writes_per_step": round(writes / total_steps, 2) if total_steps else None,
        "operator_writes": mine,
        "log_reads": log_reads(before, after),
        "all_writes": deltas,
        "watched": watched,
        "api_writes_per_step_watched": round(sum(watched.values()) / total_steps, 2)
        if total_steps
        else None,
        "operator_peak_rss_mb": usage.peak_rss_mb,
        "operator_rss_at_end_mb": usage.rss_mb,
        "host": {
            "window_s": round(window, 1),
            "cpu_busy_s": round(host_after - host_before, 1),
            "cpu_available_s": round(window * (os.cpu_count() or 1), 1),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
            "benchmark_cpu_s": round(bench_cpu_after - bench_cpu_before, 1),
            "cluster_cpu_s": {
                k: round(cpu_after.get(k, 0) - cpu_before.get(k, 0), 1) for k in cpu_after
            },
        },
        "operator_cpu_s": usage.cpu_s,
        "operator_cpu_burst_s": round(usage.cpu_s - cpu_at_ready, 2),
        "peak_live_pipelines": peak_live,
        "rss_samples": [(round(t - started, 1), r, n) for t, r, n in sampler.samples]
        if sampler
        else [],
        "profile": profile,
        "operator_cpu_by_thread_s": cpu_by_group(threads_before, threads_after, thread_names)
        if thread_names
        else None,
        "watch_errors": pods.errors + pipelines.errors,
    }


def run_restart(
    kube: Kube,
    run_id: str,
    workdir: Path,
    nodes: FakeNodes,
    *,
    count: int,
    steps: int,
    timeout: float,
    kill_at: float = 0.3,
) -> dict[str, Any]:
    """SIGKILL the operator once ``kill_at`` of all steps are done, start it again at once."""
    namespace = f"bench-restart-{run_id}"
    kube.create_namespace(namespace, run_id)
    names = pipeline_names("r", count)
    prepare_storage(kube, run_id, namespace, names)
    pods, pipelines = _watches(kube, namespace)
    log = workdir / "operator-restart.log"
    first = Operator([namespace], log, uncapped(nodes))
    second = Operator([namespace], log, uncapped(nodes))
    try:
        first.start(kube.kubeconfig)
        first.wait_ready()
        submit(kube, namespace, names, steps)
        target = int(kill_at * count * steps)
        reached = pods.wait_for(lambda: pods.terminated >= target, timeout, poll=0.05)
        if not reached:
            raise RuntimeError(f"{target} steps were not done in {timeout:.0f}s")
        before_kill = Seen.take(pods, pipelines)
        killed_at = time.monotonic()
        first.kill()
        # Let what the killed operator did before it died reach the watches, so that
        # everything seen after the restart is the new operator's doing.
        time.sleep(DRAIN_S)
        # What is unfinished once the killed operator's last writes have arrived: a pipeline
        # it finished just before dying has nothing left to resume.
        drained = Seen.take(pods, pipelines)
        second.start(kube.kubeconfig)
        restarted = second.started_at
        profile = _profile(second, workdir, "restart")
        with pods.lock:
            began = {n for n, records in pods.by_pipeline.items() if records}
        # In flight: started and not finished. A pipeline not started yet has nothing to
        # resume: it waits its turn behind started ones (see callpool), as before the kill.
        unfinished = [n for n in names if n in began and drained.phases.get(n) not in TERMINAL]
        not_started = [n for n in names if n not in began]

        def progressed(name: str) -> float | None:
            """When the pipeline first moved after the restart (a new pod, a status change)."""
            moments = [
                r.added_at
                for r in pods.by_pipeline.get(name, ())
                if r.added_at is not None and r.added_at > restarted
            ]
            record = pipelines.pipelines.get(name)
            if record is not None:
                moments += [m for m in record.modified if m > restarted]
            return min(moments) if moments else None

        ready_s = second.wait_ready()
        waiting = set(unfinished)
        resumed_at: dict[str, float] = {}

        def all_resumed() -> bool:
            with pipelines.lock:
                for name in list(waiting):
                    moment = progressed(name)
                    if moment is not None:
                        resumed_at[name] = moment
                        waiting.discard(name)
            return not waiting

        resumed = pods.wait_for(all_resumed, timeout, poll=0.5)
        moments = list(resumed_at.values())
        complete = pipelines.wait_for(_all_finished(pipelines, count), timeout, poll=0.5)
        time.sleep(2)
        usage = second.usage()
    finally:
        first.kill()
        second.stop()
        pods.stop()
        pipelines.stop()
    seen = Seen.take(pods, pipelines)
    done = [m - restarted for m in moments]
    duplicates = seen.duplicates()
    steps_run = sum(1 for r in seen.pods if r.added_at is not None or r.uids)
    return {
        "namespace": namespace,
        "pipelines": count,
        "steps_per_pipeline": steps,
        "volumes": with_volumes(),
        "steps_done_at_kill": sum(1 for r in before_kill.pods if r.terminated_at),
        "pods_at_kill": len(before_kill.pods),
        "unfinished_at_kill": len(unfinished),
        "not_started_at_kill": len(not_started),
        "restart_gap_s": round(restarted - killed_at, 3),
        "operator_ready_s": round(ready_s, 2),
        "all_resumed": resumed,
        "first_progress_s": round(min(done), 2) if done else None,
        "resume_seconds": round(max(done), 2) if resumed and done else None,
        "resume_p50_s": round(percentile(done, 50) or 0, 2) if done else None,
        "complete": complete,
        "succeeded": sum(1 for p in seen.phases.values() if p == "Succeeded"),
        "step_pods": steps_run,
        "expected_step_pods": count * steps,
        "duplicated_steps": len(duplicates["pods_added_twice"])
        + len(duplicates["steps_with_several_pods"]),
        "duplicates": {k: v[:20] for k, v in duplicates.items()},
        "operator_peak_rss_mb": usage.peak_rss_mb,
        "operator_cpu_s": usage.cpu_s,
        "profile": profile,
        "watch_errors": pods.errors + pipelines.errors,
    }
