"""The history read API's HTTPS server: front proxy → SubjectAccessReview → the store.

Every replica serves it (a standby answers reads from a shared PostgreSQL as well as the
leader). Each request is answered for the user the API server vouches for, with what that
user may read: the operator's own wide rights never leak through it. Decisions are cached
for a few seconds per user and question, so a dashboard paging runs asks the API server once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shipway.controller.historyapi.frontproxy import (
    CONFIG_MAP,
    FrontProxy,
    UnauthenticatedError,
    User,
)
from shipway.controller.historyconfig import HistorySettings
from shipway.history import api
from shipway.history.reader import StoreReader
from shipway.history.records import RunRecord
from shipway.history.store import SqlStore

log = logging.getLogger("shipway.history.api")

Authorize = Callable[[User, api.Access], Awaitable[bool]]
DECISION_SECONDS = 10.0


@dataclass(frozen=True)
class ApiOptions:
    port: int
    cert: str
    key: str
    listen: str = "0.0.0.0"


class HistoryApiServer:
    """The aiohttp application; ``reader`` is opened lazily (the store may be down at start)."""

    def __init__(
        self,
        proxy: FrontProxy,
        open_reader: Callable[[], StoreReader],
        authorize: Authorize,
    ) -> None:
        self.proxy = proxy
        self.open_reader = open_reader
        self.authorize = authorize
        self.reader: StoreReader | None = None
        self.decisions: dict[tuple[Any, ...], tuple[float, bool]] = {}
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._health)
        self.app.router.add_get("/readyz", self._health)
        self.app.router.add_get("/livez", self._health)
        self.app.router.add_get("/{tail:.*}", self.handle)

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def handle(self, request: web.Request) -> web.Response:
        found = api.route(request.path)
        try:
            if found is None:
                self.proxy.proxy_verified(_peercert(request))
                return _json(404, api.status(404, f"no such path {request.path}"))
            if found.kind == "discovery":  # who may list the API's resources is no secret
                self.proxy.proxy_verified(_peercert(request))
                return _json(200, api.discovery(found.document))
            user = self.proxy.user(_peercert(request), request.headers)
        except UnauthenticatedError as exc:
            return _json(401, api.status(401, str(exc)))
        access = found.access
        assert access is not None
        if not await self._allowed(user, access):
            return _json(403, api.status(403, _refusal(user, access)))
        try:
            return await self._answer(found, request.query)
        except ValueError as exc:
            return _json(400, api.status(400, str(exc)))
        except Exception as exc:  # the store is down: say so, keep serving
            log.warning("history API: %s %s: %r", request.method, request.path, exc)
            self._drop_reader()
            return _json(503, api.status(503, f"the history store cannot be read: {exc}"))

    async def _answer(self, found: api.Route, query: Any) -> web.Response:
        reader = await self._reader()
        if found.kind == "list":
            limit = api.limit_of(query.get("limit"))
            records = await asyncio.to_thread(
                reader.page,
                found.namespace,
                project=query.get("project") or None,
                branch=query.get("branch") or None,
                phase=query.get("phase") or None,
                limit=limit,
                before=query.get("continue") or None,
            )
            return _json(200, api.run_list(records, limit))
        namespace = found.namespace or ""
        record = await asyncio.to_thread(
            self._record, reader, namespace, found.name, query.get("uid") or ""
        )
        if record is None:
            return _json(404, api.status(404, f'run "{found.name}" not found in "{namespace}"'))
        if found.kind == "get":
            return _json(200, api.run_object(record, whole=True))
        logs = await asyncio.to_thread(reader.logs, namespace, record.name, record.uid)
        pod, container = query.get("pod"), query.get("container")
        logs = [
            item
            for item in logs
            if (not pod or item.pod == pod) and (not container or item.container == container)
        ]
        return _json(200, api.log_object(record, logs))

    @staticmethod
    def _record(reader: StoreReader, namespace: str, name: str, uid: str) -> RunRecord | None:
        """The run asked for: the newest of that name, or the one of that UID, only if it
        is of this namespace and name (a UID must not reach another namespace's run)."""
        if not uid:
            return reader.run(namespace, name)
        record = reader.run_by_uid(uid)
        if record is None:
            return None
        return record if (record.namespace, record.name) == (namespace, name) else None

    async def _reader(self) -> StoreReader:
        if self.reader is None:
            self.reader = await asyncio.to_thread(self.open_reader)
        return self.reader

    def _drop_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close()

    async def _allowed(self, user: User, access: api.Access) -> bool:
        key = (user.name, user.groups, access)
        now = time.monotonic()
        cached = self.decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        allowed = await self.authorize(user, access)
        if len(self.decisions) > 10_000:
            self.decisions = {k: v for k, v in self.decisions.items() if v[0] > now}
        self.decisions[key] = (now + DECISION_SECONDS, allowed)
        return allowed


def _refusal(user: User, access: api.Access) -> str:
    what = access.resource + (f"/{access.subresource}" if access.subresource else "")
    where = f'in the namespace "{access.namespace}"' if access.namespace else "cluster-wide"
    return f'user "{user.name}" cannot {access.verb} {what} {where}'


def _peercert(request: web.Request) -> Any:
    transport = request.transport
    return transport.get_extra_info("peercert") if transport is not None else None


def _json(code: int, body: Any) -> web.Response:
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def review_body(user: User, access: api.Access) -> dict[str, Any]:
    """The SubjectAccessReview asking whether ``user`` may do ``access``."""
    spec: dict[str, Any] = {"user": user.name, "resourceAttributes": access.attributes()}
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


async def subject_access_review(user: User, access: api.Access) -> bool:
    """Ask the API server (the operator's account needs ``create subjectaccessreviews``:
    the chart binds ``system:auth-delegator``)."""
    from kubernetes import client

    def ask() -> bool:
        response: Any = client.AuthorizationV1Api().create_subject_access_review(
            review_body(user, access),  # type: ignore[arg-type]  # a dict serialises as well
            _preload_content=False,
        )
        return bool((json.loads(response.data).get("status") or {}).get("allowed"))

    return await asyncio.to_thread(ask)


async def read_front_proxy() -> FrontProxy:
    """The front proxy's CA and headers (the chart binds
    ``extension-apiserver-authentication-reader`` in kube-system)."""
    from kubernetes import client

    namespace, name = CONFIG_MAP

    def read() -> dict[str, str]:
        found = client.CoreV1Api().read_namespaced_config_map(name, namespace)
        return dict(found.data or {})

    return FrontProxy.from_config_map(await asyncio.to_thread(read))


async def serve(options: ApiOptions, open_reader: Callable[[], StoreReader]) -> web.AppRunner:
    """Start serving; the runner's ``cleanup()`` stops it."""
    proxy = await read_front_proxy()
    server = HistoryApiServer(proxy, open_reader, subject_access_review)
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(
            runner,
            options.listen,
            options.port,
            ssl_context=proxy.ssl_context(options.cert, options.key),
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("history API (%s) on %s:%d", api.API_VERSION, options.listen, options.port)
    return runner


class Served:
    """The read API being served, or being tried again until it is.

    A first try can fail for reasons that pass: the API server slow or briefly refusing
    under load, the chart's RoleBinding on the front proxy's ConfigMap not yet in force
    when the pod starts. Giving up then left the APIService unavailable for the pod's whole
    life, while CI went on; so it is tried again with backoff, in the background.
    """

    def __init__(
        self, attempt: Callable[[], Awaitable[web.AppRunner]], *, backoff: float = 2.0
    ) -> None:
        self.attempt = attempt
        self.backoff = backoff
        self.runner: web.AppRunner | None = None
        self.task: asyncio.Task[None] | None = None

    async def first(self) -> None:
        """One try now; on failure the next ones go on in the background."""
        if not await self._try():
            self.task = asyncio.ensure_future(self._retry())

    async def _try(self) -> bool:
        try:
            self.runner = await self.attempt()
        except Exception as exc:
            log.error("the history API is not served yet (tried again): %s", exc)
            return False
        return True

    async def _retry(self, most: float = 60.0) -> None:
        delay = self.backoff
        while True:
            await asyncio.sleep(delay)
            if await self._try():
                log.info("the history API is served now")
                return
            delay = min(delay * 2, most)

    async def cleanup(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.runner is not None:
            await self.runner.cleanup()


async def start(settings: HistorySettings) -> Served | None:
    """Serve the read API when asked to (``SHIPWAY_HISTORY_API_PORT``) and there is a store.

    A failure here (no front proxy configured yet, the API server busy) is logged and tried
    again in the background: the API is a convenience, CI must not wait on it.
    """
    url = settings.url
    if not settings.api_port or url is None:
        return None
    cert, key = settings.api_cert, settings.api_key
    if not cert:
        import socket
        import tempfile
        from pathlib import Path

        from shipway.controller import certs

        made = certs.self_signed(
            [socket.gethostname(), "localhost"], Path(tempfile.mkdtemp(prefix="shipway-hapi-"))
        )
        cert, key = str(made.cert), str(made.key)
    options = ApiOptions(port=settings.api_port, cert=cert, key=key)
    served = Served(lambda: serve(options, lambda: StoreReader(SqlStore(url))))
    await served.first()
    return served
