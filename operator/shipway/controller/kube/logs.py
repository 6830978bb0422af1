"""The history's reads of finished containers' logs, kept apart from the step calls.

A log read is a plain GET on kept-alive connections of its own
(:mod:`~shipway.controller.kube.wire`), in the history's own threads, capped as it streams
(:class:`~shipway.history.logs.LogCap`): none of it may hold up the calls that move steps on,
and a pod's answer of 404 or 400 means "gone" or "never started", not an error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import quote, urlencode

from urllib3.exceptions import HTTPError

from shipway.controller import metrics
from shipway.controller.kube.caller import Caller
from shipway.controller.kube.errors import KubeError, _status_error
from shipway.controller.kube.wire import WireError
from shipway.history.logs import LogCap

_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass(frozen=True)
class LogRead:
    """A container's log as kept (:class:`~shipway.history.logs.LogCap`)."""

    data: bytes
    size: int
    truncated: bool


PodLogs = tuple[str, str, tuple[str, ...]]
"""A pod whose logs to read: its namespace, name and containers."""


class LogReads(Caller):
    """The pod-log reads of :class:`~.facade.Kube`."""

    async def read_log(self, namespace: str, pod: str, container: str, cap: int) -> LogRead | None:
        """A finished container's log, streamed, at most ``cap`` bytes kept (head and tail).

        One API call; in the history's own threads, so a long log never holds up a step.
        None when the pod is gone; a container that never started reads as empty.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.log_pool, self._read_log, namespace, pod, container, cap
        )

    async def read_logs(
        self, pods: list[PodLogs], cap: int
    ) -> list[list[LogRead] | KubeError | None]:
        """:meth:`read_log` for every container of each pod, one after the other in one of
        the history's threads (handing each read to a thread and back cost as much CPU as
        the read): per pod its logs, None if it went (its other containers are not read
        then), or the error its read met (not raised: the other pods' reads go on)."""

        def invoke() -> list[list[LogRead] | KubeError | None]:
            started = time.thread_time()
            try:
                return [
                    self._read_pod_logs(namespace, pod, containers, cap)
                    for namespace, pod, containers in pods
                ]
            finally:
                metrics.HISTORY_CPU.labels("reads").inc(time.thread_time() - started)

        return await asyncio.get_running_loop().run_in_executor(self.log_pool, invoke)

    def _read_pod_logs(
        self, namespace: str, pod: str, containers: tuple[str, ...], cap: int
    ) -> list[LogRead] | KubeError | None:
        logs = []
        for container in containers:
            try:
                read = self._read_log(namespace, pod, container, cap)
            except KubeError as exc:
                return exc
            if read is None:
                return None
            logs.append(read)
        return logs

    def _read_log(self, namespace: str, pod: str, container: str, cap: int) -> LogRead | None:
        """A plain GET with the client's credentials on kept-alive connections of its own
        (:mod:`~shipway.controller.kube.wire`: a third of the CPU of the client's pool), or
        on the client's pool when it goes through a proxy."""
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/log"
        path = f"{path}?{urlencode({'container': container})}"
        kept = LogCap(cap)
        try:
            answer = self.logs.get(path, kept.feed)
        except (HTTPError, OSError, WireError, ValueError) as exc:
            raise KubeError(0, "Unreachable", f"the log read broke off: {exc}") from None
        if answer is None:
            return LogRead(kept.result(), kept.size, kept.truncated)
        if answer.status == 404:
            return None
        if answer.status == 400:  # waiting to start, never started: nothing to read
            return LogRead(b"", 0, False)
        raise _status_error(answer.status, _REASONS.get(answer.status, ""), answer.body)
