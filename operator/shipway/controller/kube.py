"""The Kubernetes calls Shipway makes, and nothing else: thin, typed, idempotent.

Every call runs the synchronous official client in a worker thread and skips response
deserialisation (``_preload_content=False``): the operator needs a few fields, not models.
"Not found" on delete counts as success, and "already exists" on create answers None/False
for the caller to check whose the object is: that is what lets the operator repeat any
action after a crash without adopting someone else's pod or claim. An API server that does
not answer at all raises a :class:`KubeError` of status 0, like any passing failure.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from shipway import GROUP, KIND, PLURAL, VERSION
from shipway.controller import metrics, rest
from shipway.controller.callpool import CallPool, Priority
from shipway.controller.logclient import LogClient, LogReadError, PooledLogs
from shipway.engine.objects import Manifest
from shipway.history.logs import LogCap

T = TypeVar("T")
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class KubeError(Exception):
    """A Kubernetes API call failed in a way the caller must handle."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)

    @property
    def permanent(self) -> bool:
        """4xx other than conflicts and throttling: retrying the same request will not help."""
        return 400 <= self.status < 500 and self.status not in (408, 409, 429)

    @property
    def quota(self) -> bool:
        """A ResourceQuota refused the object: it may fit later, when other objects go."""
        return self.status == 403 and "exceeded quota" in str(self).lower()

    @property
    def too_large(self) -> bool:
        """The object (a status) is larger than the API server or etcd will store."""
        text = str(self).lower()
        return self.status == 413 or "too large" in text or "too long" in text


def _error(exc: ApiException) -> KubeError:
    return _status_error(int(exc.status or 0), str(exc.reason or ""), exc.body)


def _status_error(status: int, reason: str, body: str | bytes | None) -> KubeError:
    """The error of an answer: the message and reason of its Status body when it has one."""
    message = reason or "request failed"
    try:
        parsed = json.loads(body or "{}")
        message = parsed.get("message") or message
        reason = parsed.get("reason") or reason
    except (ValueError, TypeError, AttributeError):
        pass
    return KubeError(status, reason, str(message))


@dataclass(frozen=True)
class LogRead:
    """A container's log as kept (:class:`~shipway.history.logs.LogCap`)."""

    data: bytes
    size: int
    truncated: bool


PodLogs = tuple[str, str, tuple[str, ...]]
"""A pod whose logs to read: its namespace, name and containers."""


@dataclass(frozen=True)
class EventTarget:
    name: str
    namespace: str
    uid: str


class Kube:
    """Asynchronous facade over the calls Shipway needs."""

    def __init__(
        self, api: client.ApiClient | None = None, threads: int = 16, event_threads: int = 4
    ) -> None:
        if api is None:
            configuration = client.Configuration.get_default_copy()
            # One connection per thread: a smaller pool drops connections under load, and
            # every new one costs a TLS handshake.
            configuration.connection_pool_maxsize = threads + event_threads + 2
            api = client.ApiClient(configuration)
        self.api = api
        self.pool = CallPool(threads, "kube")
        # Events never wait in front of the pod creates and status patches that move steps on.
        self.event_pool = ThreadPoolExecutor(max_workers=event_threads, thread_name_prefix="event")
        # The history's log reads and prunes: never in front of the calls that move steps on.
        self.log_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="history")
        self.logs = LogClient(self.api) if LogClient.usable(self.api) else PooledLogs(self.api)
        self.instance = socket.gethostname()

    async def _call(
        self,
        method: str,
        where: str,
        *,
        body: Any = None,
        content_type: str = rest.JSON,
        _pool: ThreadPoolExecutor | None = None,
        _decode: bool = True,
        _priority: Priority = Priority.STEP,
    ) -> Any:
        """Call the API in a worker thread; ``_decode=False`` skips decoding the answer.

        A status patch answers with the whole Pipeline, managed fields included: decoding
        it only to drop it cost CPU and memory on every step.
        """
        loop = asyncio.get_running_loop()

        def invoke() -> Any:
            try:
                response = rest.request(
                    self.api, method, where, body=body, content_type=content_type
                )
                data = response.data  # read it all, so the connection goes back to the pool
            except ApiException as exc:
                raise _error(exc) from None
            except (HTTPError, OSError) as exc:  # no answer at all: the API server is away
                raise KubeError(0, "Unreachable", f"the API server did not answer: {exc}") from None
            return json.loads(data) if data and _decode else None

        if _pool is not None:
            return await loop.run_in_executor(_pool, invoke)
        return await asyncio.wrap_future(self.pool.submit(_priority, invoke), loop=loop)

    async def create_pod(
        self, namespace: str, manifest: Manifest, priority: Priority = Priority.STEP
    ) -> Manifest | None:
        """Create a pod; None when a pod of that name exists already."""
        try:
            result: Manifest = await self._call(
                "POST", rest.core(namespace, "pods"), body=manifest, _priority=priority
            )
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise
        return result

    async def get_pod(self, namespace: str, name: str) -> Manifest | None:
        try:
            result: Manifest = await self._call("GET", rest.core(namespace, "pods", name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_claim(self, namespace: str, manifest: Manifest) -> bool:
        """Create a claim; False when a claim of that name exists already (whose is not
        known here: see :meth:`get_claim`)."""
        try:
            await self._call(
                "POST",
                rest.core(namespace, "persistentvolumeclaims"),
                body=manifest,
                _decode=False,
                _priority=Priority.START,  # a claim is made when a pipeline starts
            )
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def get_claim(self, namespace: str, name: str) -> Manifest | None:
        try:
            result: Manifest = await self._call(
                "GET", rest.core(namespace, "persistentvolumeclaims", name)
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def get_service(self, namespace: str, name: str) -> Manifest | None:
        try:
            result: Manifest = await self._call("GET", rest.core(namespace, "services", name))
        except KubeError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return result

    async def get_config_map(self, namespace: str, name: str) -> Manifest | None:
        """A ConfigMap (a namespace's retention settings); None if absent or not ours to read."""
        try:
            result: Manifest = await self._call(
                "GET", rest.core(namespace, "configmaps", name), _pool=self.log_pool
            )
        except KubeError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return result

    async def get_secret(self, namespace: str, name: str) -> Manifest | None:
        """A Secret of the operator's own (the builder's client certificate); None if absent."""
        try:
            result: Manifest = await self._call("GET", rest.core(namespace, "secrets", name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_secret(self, namespace: str, manifest: Manifest) -> None:
        try:
            await self._call(
                "POST",
                rest.core(namespace, "secrets"),
                body=manifest,
                _decode=False,
                _priority=Priority.START,
            )
        except KubeError as exc:
            if exc.status != 409:
                raise

    async def delete_secret(self, namespace: str, name: str) -> None:
        try:
            await self._call("DELETE", rest.core(namespace, "secrets", name), _decode=False)
        except KubeError as exc:
            if exc.status != 404:
                raise

    async def stop_pod(self, namespace: str, name: str) -> None:
        """Stop a running pod through the kubelet, keeping the pod and its logs.

        Lowering ``activeDeadlineSeconds`` is allowed on a live pod; the kubelet then kills it
        and marks it DeadlineExceeded.
        """
        try:
            await self._call(
                "PATCH",
                rest.core(namespace, "pods", name),
                body={"spec": {"activeDeadlineSeconds": 1}},
                content_type=rest.STRATEGIC_MERGE_PATCH,
                _decode=False,
            )
        except KubeError as exc:
            if exc.status not in (404, 422):
                raise

    async def delete_pod(self, namespace: str, name: str) -> None:
        try:
            await self._call("DELETE", rest.core(namespace, "pods", name), _decode=False)
        except KubeError as exc:
            if exc.status != 404:
                raise

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
        """A plain GET with the client's credentials on connections of the history's own
        (:mod:`~shipway.controller.logclient`: a third of the CPU of the client's pool), or
        on the client's pool when it goes through a proxy."""
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/log"
        path = f"{path}?{urlencode({'container': container})}"
        kept = LogCap(cap)
        try:
            answer = self.logs.get(path, kept.feed)
        except (HTTPError, OSError, LogReadError, ValueError) as exc:
            raise KubeError(0, "Unreachable", f"the log read broke off: {exc}") from None
        if answer is None:
            return LogRead(kept.result(), kept.size, kept.truncated)
        if answer.status == 404:
            return None
        if answer.status == 400:  # waiting to start, never started: nothing to read
            return LogRead(b"", 0, False)
        raise _status_error(answer.status, _REASONS.get(answer.status, ""), answer.body)

    async def delete_pipeline(self, namespace: str, name: str, uid: str) -> None:
        """Delete a Pipeline, that one only (a precondition on its UID); gone already is fine.

        Background propagation: its pods and claim go through their owner references."""
        try:
            await self._call(
                "DELETE",
                rest.path("apis", GROUP, VERSION, "namespaces", namespace, PLURAL, name),
                body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
                _pool=self.log_pool,
                _decode=False,
            )
        except KubeError as exc:
            if exc.status not in (404, 409):
                raise

    async def patch_status(self, namespace: str, name: str, status: Manifest) -> None:
        """Replace the status (a merge patch replaces lists whole, which is what we want)."""
        await self._call(
            "PATCH",
            rest.path("apis", GROUP, VERSION, "namespaces", namespace, PLURAL, name, "status"),
            body={"status": status},
            content_type=rest.MERGE_PATCH,
            _decode=False,
            _priority=Priority.STATUS,
        )

    async def emit_event(self, target: EventTarget, type_: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{target.name}.{uuid.uuid4().hex[:16]}",
                "namespace": target.namespace,
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": target.name,
                "namespace": target.namespace,
                "uid": target.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": "shipway"},
            "reportingComponent": "shipway.dev/operator",
            "reportingInstance": self.instance,
        }
        await self._call(
            "POST",
            rest.core(target.namespace, "events"),
            body=event,
            _pool=self.event_pool,
            _decode=False,
        )

    def close(self) -> None:
        self.pool.shutdown()
        self.event_pool.shutdown(wait=False, cancel_futures=True)
        self.log_pool.shutdown(wait=False, cancel_futures=True)
        self.logs.close()
        self.api.close()  # type: ignore[no-untyped-call]
