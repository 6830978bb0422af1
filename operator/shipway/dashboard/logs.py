"""A step's log for the page: streamed live from the API server as the user while its pod
runs, else from the history's archive (masked when archived), as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from shipway.cli.follow import log_container
from shipway.dashboard.kube import Kube, KubeError
from shipway.dashboard.reader import RunReader
from shipway.history.logs import Masker
from shipway.history.masking import masked_values, referenced_secrets
from shipway.models import StepStatus

START_WAIT_SECONDS = 300.0
"""How long a live log waits for its container to start (images, linked services)."""


def sse(data: str, event: str | None = None) -> bytes:
    """One server-sent event; a line's own carriage returns and newlines cannot split it."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = f"event: {event}\n" if event else ""
    return (head + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def find_step(body: Mapping[str, Any], step_id: str) -> StepStatus | None:
    for raw in (body.get("status") or {}).get("steps") or ():
        if raw.get("id") == step_id:
            return StepStatus.model_validate(raw)
    return None


async def masker_for(kube: Kube, namespace: str, body: Mapping[str, Any]) -> Masker:
    """The values of the Secrets the Pipeline names that the user may read: the live log
    shows masked, as the archived one (reading them is the user's own right)."""
    names = sorted(referenced_secrets(body.get("spec") or {}))
    found = await asyncio.gather(*(kube.read_secret(namespace, n) for n in names))
    return Masker(masked_values([s for s in found if s is not None]))


async def step_lines(
    kube: Kube,
    reader: RunReader,
    body: Mapping[str, Any],
    step: StepStatus,
    *,
    live: bool,
    follow: bool,
) -> AsyncIterator[str]:
    """The step's current attempt's log: the archive's when it has it, else the pod's from
    the API server (following it while it runs)."""
    meta = body.get("metadata") or {}
    namespace, uid = str(meta.get("namespace") or ""), str(meta.get("uid") or "")
    if not step.pod:
        return
    container = log_container(step)
    archived = await asyncio.to_thread(reader.step_log, uid, step.pod, container)
    if archived is not None:
        for line in archived.text.splitlines():
            yield line
        return
    if not live:
        return
    masker = await masker_for(kube, namespace, body)
    deadline = asyncio.get_running_loop().time() + START_WAIT_SECONDS
    while True:
        try:
            async for line in kube.log_lines(namespace, step.pod, container, follow):
                yield masker.mask(line) if masker else line
            return
        except KubeError as exc:
            if exc.status not in (400, 404):
                raise
            # 400: the container has not started yet (image pull, linked services): wait for
            # it; 404: the pod is gone meanwhile, the archive may have its log
            if exc.status == 400 and follow and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.5)
                continue
            archived = await asyncio.to_thread(reader.step_log, uid, step.pod, container)
            for line in archived.text.splitlines() if archived else ():
                yield line
            return
