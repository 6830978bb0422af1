"""A finished pod's logs, read and masked: one API call per container (the log API reads
one container at a time), and the run's Secrets read once to know what to mask."""

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


async def read_pod_logs(
    kube: HistoryApi, item: Pending, masker: Masker, cap: int
) -> list[ArchivedLog] | None:
    """Every container's log of the pod, masked; None if the pod went first (its logs with
    it). A pod where no container ever started is remembered with one empty row."""
    namespace = item.key[0]
    logs: list[ArchivedLog] = []
    for container in item.containers:
        read = await kube.read_log(namespace, item.pod, container, cap)
        if read is None:
            log.warning("history: pod %s/%s went before its log was read", namespace, item.pod)
            return None
        text = masker.mask(read.data.decode("utf-8", errors="replace"))
        logs.append(
            ArchivedLog(
                item.run_uid, item.pod, item.pod_uid, container, text, read.size, read.truncated
            )
        )
    if not logs:
        logs.append(ArchivedLog(item.run_uid, item.pod, item.pod_uid, "", "", 0))
    return logs
