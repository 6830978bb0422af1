"""The dashboard's middleware: security headers on every answer, and who is asking (the local
kubeconfig's user, a bearer token's, or the one the authenticating proxy names)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from shipway.dashboard import identity
from shipway.dashboard.context import LOCAL_USER, SESSION, SETTINGS, USER, page
from shipway.dashboard.identity import AuthenticationError, User
from shipway.dashboard.kube import Kube, KubeError

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    timings = request.app[SETTINGS].timings
    if timings is not None and response.prepared is False:
        route = request.match_info.route.resource
        timings.append((route.canonical if route else "?", time.perf_counter() - started))
    if isinstance(response, web.HTTPException) and not response.prepared:
        raise response
    return response


async def resolve_user(request: web.Request) -> User:
    settings = request.app[SETTINGS]
    if not settings.in_cluster:
        return request.app[LOCAL_USER]
    reviewer = Kube(request.app[SESSION], settings.credentials)
    token = identity.bearer_token(request.headers)
    if token:
        name, groups = await identity.token_review(reviewer, token)
        return User(name, groups, settings.credentials.with_token(token), self_review=True)
    peercert = None
    if request.transport is not None:
        peercert = request.transport.get_extra_info("peercert")
    proxied = identity.proxy_user(
        request.headers, identity.peer_names(peercert), settings.trusted_proxies
    )
    if proxied is None:
        raise AuthenticationError("send a bearer token, or come through the authenticating proxy")
    name, groups = proxied
    return User(name, groups, settings.credentials.impersonating(name, groups), self_review=False)


LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def local_host(host: str | None) -> bool:
    """A request to a loopback name: a page of another site whose name was made to resolve to
    127.0.0.1 (DNS rebinding) sends its own name, and is refused (as ``kubectl proxy``'s
    ``--accept-hosts`` does)."""
    name = (host or "").lower()
    name = name.split("]", 1)[0] + "]" if name.startswith("[") else name.rsplit(":", 1)[0]
    return name in LOCAL_HOSTS


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[SETTINGS].in_cluster and not local_host(request.host):
        raise web.HTTPForbidden(text="the dashboard answers to localhost and 127.0.0.1 only")
    if request.path.startswith("/static/"):
        return await handler(request)
    try:
        request[USER] = await resolve_user(request)
    except AuthenticationError as exc:
        return page(request, "error.html", status=401, message=str(exc), code="401")
    try:
        return await handler(request)
    except KubeError as exc:
        code = exc.status if exc.status in (401, 403, 404, 409, 422) else 502
        return page(request, "error.html", status=code, message=str(exc), code=str(code))
