"""Which finished Pipelines go: the retention decision (pure, ``history.retention``) with
each namespace's own policy over the operator's, and the deletes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from prometheus_client import Counter

from shipway.controller.archive.runs import HistoryApi
from shipway.controller.snapshot import PipelineSnapshot
from shipway.history.retention import CONFIG_MAP, Policy, Run, decide, namespace_policy
from shipway.models.durations import parse_duration

log = logging.getLogger("shipway")

PRUNED = Counter("shipway_history_pipelines_pruned_total", "Finished Pipelines deleted.")


async def prune(
    kube: HistoryApi,
    policy: Policy,
    now: datetime,
    candidates: Iterable[tuple[Run, PipelineSnapshot]],
    *,
    pruned: set[str],
) -> None:
    """Delete what the policy prunes among ``candidates``; each one's UID goes into
    ``pruned`` as soon as it is deleted (a later failure keeps the ones before)."""
    runs = {(run.namespace, run.name): (run, snap) for run, snap in candidates}
    namespaces = sorted({run.namespace for run, _ in runs.values()})
    overrides = {ns: await namespace_policy_of(kube, ns, policy) for ns in namespaces}
    decision = decide((r for r, _ in runs.values()), policy, now, overrides)
    for run in decision.prune:
        snap = runs[(run.namespace, run.name)][1]
        await kube.delete_pipeline(run.namespace, run.name, snap.uid)
        pruned.add(snap.uid)
        PRUNED.inc()
        log.info("history: pruned %s/%s (%s)", run.namespace, run.name, run.phase)


async def namespace_policy_of(kube: HistoryApi, namespace: str, policy: Policy) -> Policy:
    """The namespace's ``shipway-retention`` ConfigMap over the operator's policy. A bad
    one stops pruning there (a typo must never prune more than asked), and says so."""
    found = await kube.get_config_map(namespace, CONFIG_MAP)
    if found is None:
        return policy
    try:
        return namespace_policy(found.get("data") or {}, policy, parse_duration)
    except ValueError as exc:
        log.warning("history: %s/%s; nothing is pruned there", namespace, exc)
        return replace(policy, enabled=False)
