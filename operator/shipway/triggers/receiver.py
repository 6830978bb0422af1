"""The webhook receiver (the shell): ``POST /hooks/<namespace>/<repository>``.

Answers before any work is done: 401 when the signature does not verify (and records
nothing), 413 past :data:`MAX_BODY`, 404 for an unknown Repository, 202 with the reason for
an event that runs nothing, 202 naming the Pipeline for one that runs, which a thread pool
then creates. Stateless apart from that pool, so two replicas behind one Service are safe:
the Pipeline's name is derived from what was pushed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from shipway.models.repository import RepositorySpec
from shipway.triggers import decide, events, signatures
from shipway.triggers.kube import TriggersApi
from shipway.triggers.worker import Worker

log = logging.getLogger("shipway.triggers")
MAX_BODY = 5 << 20
"""GitHub caps payloads at 25 MB but sends at most ~5 MB of a push's commits that matter."""


class Receiver:
    def __init__(
        self,
        api: TriggersApi,
        worker: Worker,
        namespaces: Iterable[str] | None,
        workers: int = 4,
    ) -> None:
        self.api = api
        self.worker = worker
        self.namespaces = set(namespaces) if namespaces else None
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="triggers")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/hooks/{namespace}/{name}", self.hook)
        app.router.add_get("/healthz", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def hook(self, request: web.Request) -> web.Response:
        received = time.monotonic()
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if self.namespaces is not None and namespace not in self.namespaces:
            return web.json_response({"error": f"namespace {namespace} is not served"}, status=404)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"body over {MAX_BODY} bytes"}, status=413)
        repo = await self._call(self.api.repository, namespace, name)
        if repo is None:
            return web.json_response({"error": f"no Repository {namespace}/{name}"}, status=404)
        try:
            spec = RepositorySpec.model_validate(repo.get("spec") or {}, strict=False)
        except ValidationError as exc:
            return web.json_response({"error": f"Repository spec: {exc}"}, status=422)
        secret = await self._call(self.api.secret_key, namespace, spec.webhookSecret)
        headers = dict(request.headers)
        if not secret or not signatures.verify(spec.provider, headers, body, secret):
            log.info("%s/%s: delivery refused: bad signature", namespace, name)
            return web.json_response({"error": "signature does not verify"}, status=401)
        event = events.parse(spec.provider, headers, body)
        if isinstance(event, events.Unhandled):
            self.pool.submit(
                self.worker.record, repo, _delivery(headers), "", "ignored", message=event.reason
            )
            return web.json_response({"ignored": event.reason}, status=202)
        run = decide.decide(spec, name, repo["metadata"]["uid"], event)
        if isinstance(run, decide.Skip):
            self.pool.submit(
                self.worker.record, repo, event.delivery, event.kind, "skipped", message=run.reason
            )
            return web.json_response({"skipped": run.reason}, status=202)
        self.pool.submit(
            self._run, repo, spec, event, run, received=received, checked=time.monotonic()
        )
        return web.json_response({"pipeline": run.name, "fork": run.fork}, status=202)

    def _run(
        self,
        repo: dict[str, Any],
        spec: RepositorySpec,
        event: events.Event,
        run: decide.Run,
        *,
        received: float,
        checked: float,
    ) -> None:
        try:
            self.worker.handle(repo, spec, event, run, received=received, checked=checked)
        except Exception:
            log.exception("delivery %s of %s failed", event.delivery, repo["metadata"]["name"])


def _delivery(headers: dict[str, str]) -> str:
    for key in ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID", "X-Request-UUID"):
        for name, value in headers.items():
            if name.lower() == key.lower():
                return value
    return ""
