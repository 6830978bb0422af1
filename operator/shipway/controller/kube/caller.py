"""The API client, the worker threads and the one call every request to the API server goes
through.

Kept apart from the calls themselves because the pools are a decision of their own: step calls
by priority (:class:`~shipway.controller.callpool.CallPool`), Events and the history's reads in
threads of their own so they never wait in front of the calls that move steps on, and one
connection per thread. The pod, log and event calls (:mod:`.facade`, :mod:`.logs`,
:mod:`.events`) build on :class:`Caller`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from shipway.controller import rest
from shipway.controller.callpool import CallPool, Priority
from shipway.controller.kube.errors import KubeError, _error, _status_error
from shipway.controller.kube.wire import PooledLogs, Wire, WireError


class Caller:
    """The client and its worker threads, shared by every call of :class:`~.facade.Kube`."""

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
        self.wire = Wire(self.api) if Wire.usable(self.api) else None
        """Requests on connections of its own (a third to a half of urllib3's CPU per
        request); None behind a proxy, where they go through the client's pool."""
        self.logs: Wire | PooledLogs = self.wire or PooledLogs(self.api)
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
            data = self._send(method, where, body, content_type)
            return json.loads(data) if data and _decode else None

        if _pool is not None:
            return await loop.run_in_executor(_pool, invoke)
        return await asyncio.wrap_future(self.pool.submit(_priority, invoke), loop=loop)

    def _send(self, method: str, where: str, body: Any, content_type: str) -> bytes:
        """One request, in the calling (worker) thread; its answer's body, or KubeError."""
        try:
            if self.wire is None:
                response = rest.request(
                    self.api, method, where, body=body, content_type=content_type
                )
                return bytes(response.data)  # read whole: the connection goes back to the pool
            answer = self.wire.call(method, where, rest.encode(body), content_type)
        except ApiException as exc:
            raise _error(exc) from None
        except (HTTPError, OSError, WireError) as exc:  # no answer: the API server is away
            raise KubeError(0, "Unreachable", f"the API server did not answer: {exc}") from None
        if not 200 <= answer.status <= 299:
            raise _status_error(answer.status, answer.reason, answer.body)
        return answer.body

    def close(self) -> None:
        self.pool.shutdown()
        self.event_pool.shutdown(wait=False, cancel_futures=True)
        self.log_pool.shutdown(wait=False, cancel_futures=True)
        self.logs.close()
        self.api.close()  # type: ignore[no-untyped-call]
