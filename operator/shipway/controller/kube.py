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
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from shipway import GROUP, KIND, PLURAL, VERSION
from shipway.controller import rest
from shipway.controller.callpool import CallPool, Priority
from shipway.engine.objects import Manifest
from shipway.history.logs import LogCap

T = TypeVar("T")


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
    message = exc.reason or "request failed"
    reason = str(exc.reason or "")
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or message
        reason = body.get("reason") or reason
    except (ValueError, TypeError):
        pass
    return KubeError(int(exc.status or 0), reason, str(message))


@dataclass(frozen=True)
class LogRead:
    """A container's log as kept (:class:`~shipway.history.logs.LogCap`)."""

    data: bytes
    size: int
    truncated: bool


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
        None when the pod is gone; a container that never started reads as empty. A plain
        GET on the client's own connection pool and credentials: the generated method's
        parameter handling cost a fifth of the read's CPU, once per archived container.
        """
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/log"
        url = f"{self.api.configuration.host}{path}?{urlencode({'container': container})}"

        def invoke() -> LogRead | None:
            headers = dict(self.api.default_headers)
            self.api.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
            try:
                response: Any = self.api.rest_client.pool_manager.request(
                    "GET", url, headers=headers, preload_content=False
                )
            except (HTTPError, OSError) as exc:
                raise KubeError(0, "Unreachable", f"the API server did not answer: {exc}") from None
            try:
                if response.status == 200:
                    kept = LogCap(cap)
                    for chunk in response.stream(64 * 1024):
                        kept.feed(chunk)
                    return LogRead(kept.result(), kept.size, kept.truncated)
                body = response.read()
            except (HTTPError, OSError) as exc:
                raise KubeError(0, "Unreachable", f"the log read broke off: {exc}") from None
            finally:
                response.release_conn()
            if response.status == 404:
                return None
            if response.status == 400:  # waiting to start, never started: nothing to read
                return LogRead(b"", 0, False)
            error = ApiException(status=response.status, reason=response.reason)
            error.body = body
            raise _error(error)

        return await asyncio.get_running_loop().run_in_executor(self.log_pool, invoke)

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
        self.api.close()  # type: ignore[no-untyped-call]
