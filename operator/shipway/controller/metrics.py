"""Prometheus metrics of the operator (prometheus-client), served when a port is configured.

Low cardinality on purpose: no per-pipeline or per-namespace labels, so a busy cluster cannot
blow up the scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from shipway.models import PipelinePhase, PipelineStatus, StepPhase

RECONCILE_SECONDS = Histogram(
    "shipway_reconcile_seconds",
    "Time to plan and act on one pipeline event.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PODS_CREATED = Counter("shipway_step_pods_created_total", "Step pods created (attempts).")
STEPS_FINISHED = Counter(
    "shipway_steps_finished_total", "Steps that reached a final phase.", ["phase"]
)
PIPELINES_FINISHED = Counter(
    "shipway_pipelines_finished_total", "Pipelines that reached a final phase.", ["phase"]
)
PIPELINES_ACTIVE = Gauge("shipway_pipelines_active", "Pipelines pending or running.")
API_ERRORS = Counter(
    "shipway_api_errors_total", "Kubernetes API calls that failed, by HTTP status.", ["status"]
)

MALFORMED_OBJECTS = Counter(
    "shipway_malformed_objects_total",
    "Watched objects skipped because they cannot be Shipway's (e.g. a pod with a step label "
    "and a non-numeric attempt): someone else wrote them; the watch goes on.",
    ["kind"],
)
HISTORY_CPU = Counter(
    "shipway_history_cpu_seconds_total",
    "CPU seconds spent in the history's threads: reading logs, and the store's writes.",
    ["part"],
)
ECHOES_SKIPPED = Counter(
    "shipway_status_echoes_skipped_total",
    "Pipeline events that only showed the operator's own status write: no reconcile needed.",
)
FOREIGN_PODS = Counter(
    "shipway_foreign_pods_total",
    "Pods naming a Pipeline as their owner that the operator did not create (ignored).",
)


def record_transition(old: PipelineStatus, new: PipelineStatus, created: int) -> None:
    """Count what changed between two statuses of one pipeline."""
    if created:
        PODS_CREATED.inc(created)
    before = {s.id: s.phase for s in old.steps}
    for step in new.steps:
        if (
            step.phase.terminal
            and step.phase != StepPhase.SKIPPED
            and before.get(step.id) != step.phase
        ):
            STEPS_FINISHED.labels(step.phase.value).inc()
    if new.phase != old.phase:
        if new.phase.terminal:
            PIPELINES_FINISHED.labels(new.phase.value).inc()
            if not old.phase.terminal:
                PIPELINES_ACTIVE.dec()
        elif old.phase.terminal:
            PIPELINES_ACTIVE.inc()


def track_new(phase: PipelinePhase) -> None:
    """A pipeline the operator starts following (created, or seen after a restart)."""
    if not phase.terminal:
        PIPELINES_ACTIVE.inc()


def forget(phase: PipelinePhase | None) -> None:
    """A pipeline the operator stops following, last seen in ``phase``."""
    if phase is not None and not phase.terminal:
        PIPELINES_ACTIVE.dec()


def serve(port: int) -> None:
    start_http_server(port)
