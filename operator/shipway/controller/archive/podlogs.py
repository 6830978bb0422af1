"""Finished pods' logs, read and masked: one API call per container (the log API reads one
container at a time), and the run's Secrets read once to know what to mask."""

from __future__ import annotations

import logging

from shipway.controller.archive.runs import Facts, HistoryApi, Pending
from shipway.controller.kube import KubeError
from shipway.engine.objects import Manifest
from shipway.history.logs import Masker
from shipway.history.masking import masked_values
from shipway.history.store import ArchivedLog

log = logging.getLogger("shipway")


async def masker_for(kube: HistoryApi, namespace: str, facts: Facts) -> Masker:
    """The values to mask in a run's logs: those of the Secrets its spec names (a Secret
    the operator may not read is left unmasked, and said)."""
    secrets: list[Manifest] = []
    for name in facts.secrets:
        try:
            found = await kube.get_secret(namespace, name)
        except KubeError as exc:
            log.warning("history: Secret %s/%s not read for masking: %s", namespace, name, exc)
            continue
        if found is not None:
            secrets.append(found)
    return Masker(masked_values(secrets))


async def read_pods_logs(
    kube: HistoryApi, items: list[tuple[Pending, Masker]], cap: int
) -> list[list[ArchivedLog] | KubeError | None]:
    """Every container's log of each pod, masked, read in one go (one hand-over to the
    history's thread for them all); per pod its logs, None if the pod went first (its logs
    with it), or the error its read met. A pod where no container ever started is
    remembered with one empty row."""
    if not items:
        return []
    reads = await kube.read_logs([(i.key[0], i.pod, i.containers) for i, _ in items], cap)
    results: list[list[ArchivedLog] | KubeError | None] = []
    for (item, masker), read in zip(items, reads, strict=True):
        if read is None:
            log.warning("history: pod %s/%s went before its log was read", item.key[0], item.pod)
        if read is None or isinstance(read, KubeError):
            results.append(read)
            continue
        logs = [
            ArchivedLog(
                item.run_uid,
                item.pod,
                item.pod_uid,
                container,
                masker.mask(one.data.decode("utf-8", errors="replace")),
                one.size,
                one.truncated,
            )
            for container, one in zip(item.containers, read, strict=True)
        ]
        results.append(logs or [ArchivedLog(item.run_uid, item.pod, item.pod_uid, "", "", 0)])
    return results
