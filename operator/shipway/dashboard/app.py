"""The dashboard's HTTP shell (aiohttp): identity, authorization, pages, actions, logs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jinja2
from aiohttp import web

from shipway.cli.approve import decision_patch
from shipway.cli.restart import restart_manifest, restart_names, secret_names
from shipway.cli.secrets import owner_of
from shipway.dashboard import csrf, identity
from shipway.dashboard.authz import Authorizer, Check
from shipway.dashboard.badge import badge
from shipway.dashboard.identity import AuthenticationError, User
from shipway.dashboard.kube import Credentials, Kube, KubeError, pipeline_path
from shipway.dashboard.logs import find_step, sse, step_lines
from shipway.dashboard.reader import RunReader
from shipway.dashboard.views import list_row, run_view, status_json
from shipway.history.records import body_of, project_of
from shipway.history.store import cursor

HERE = Path(__file__).parent
PHASES = ("Pending", "Running", "AwaitingApproval", "Succeeded", "Failed", "Cancelled")
PAGE_SIZE = 50
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Settings:
    reader: RunReader
    credentials: Credentials
    """Local: the kubeconfig's user. In the cluster: the dashboard's service account, which
    reviews tokens and access and, behind a proxy, impersonates its users."""
    in_cluster: bool = False
    trusted_proxies: tuple[str, ...] = ()
    csrf_key: bytes = field(default_factory=csrf.new_key)
    timings: list[tuple[str, float]] | None = None
    """When set, (route, seconds) of every request: ``make bench`` reads them."""


SETTINGS = web.AppKey("settings", Settings)
SESSION = web.AppKey("session", aiohttp.ClientSession)
LOCAL_USER = web.AppKey("local_user", User)
AUTHZ = web.AppKey("authz", Authorizer)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
USER = web.RequestKey("user", User)


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is data: names, branches, messages, log lines
        undefined=jinja2.StrictUndefined,
    )


def kube_for(app: web.Application, user: User) -> Kube:
    return Kube(app[SESSION], user.credentials)


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


def page(
    request: web.Request, template: str, status: int = 200, code: str = "", **context: Any
) -> web.Response:
    user = request.get(USER)
    if template == "error.html":
        context = {"status": code, **context}
    html = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(user=user.name if user else "", **context)
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def user_of(request: web.Request) -> User:
    return request[USER]


async def allowed(request: web.Request, verb: str, namespace: str) -> bool:
    return await request.app[AUTHZ].allowed(user_of(request), Check(verb, namespace))


async def require(request: web.Request, verb: str, namespace: str) -> None:
    if not await allowed(request, verb, namespace):
        raise web.HTTPForbidden(
            text=f"{user_of(request).name} may not {verb} pipelines in namespace {namespace}"
        )


async def index(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    query = request.query
    filters = {k: query.get(k, "").strip() for k in ("namespace", "project", "branch", "phase")}
    user = user_of(request)
    if filters["namespace"]:
        ns = filters["namespace"]
        namespaces: list[str] | None = [ns] if await allowed(request, "list", ns) else []
    else:
        candidates = await asyncio.to_thread(settings.reader.namespaces)
        namespaces = await request.app[AUTHZ].namespaces(user, candidates)
    try:
        records = await asyncio.to_thread(
            settings.reader.page,
            namespaces,
            project=filters["project"] or None,
            branch=filters["branch"] or None,
            phase=filters["phase"] or None,
            limit=PAGE_SIZE,
            before=query.get("before") or None,
        )
    except ValueError:
        raise web.HTTPBadRequest(text="before: not a cursor of this list") from None
    now = datetime.now(UTC)
    next_page = None
    if len(records) == PAGE_SIZE:
        next_page = "/?" + urlencode(
            {**{k: v for k, v in filters.items() if v}, "before": cursor(records[-1])}
        )
    return page(
        request,
        "list.html",
        runs=[list_row(r, now) for r in records],
        filters=filters,
        phases=PHASES,
        next_page=next_page,
    )


async def load_run(request: web.Request) -> tuple[dict[str, Any], bool, str]:
    """The Pipeline: live from the API server as the user, else from the history; and its
    project."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    await require(request, "get", namespace)
    body = await kube_for(request.app, user_of(request)).get_pipeline(namespace, name)
    if body is not None:
        meta = body.get("metadata") or {}
        project = project_of(body.get("spec") or {}, meta.get("generateName"), name)
        return body, True, project
    record = await asyncio.to_thread(request.app[SETTINGS].reader.run, namespace, name)
    if record is None:
        raise web.HTTPNotFound(text=f"no run {name} in namespace {namespace}")
    return body_of(record), False, record.project


def base_url(namespace: str, name: str) -> str:
    return f"/runs/{quote(namespace, safe='')}/{quote(name, safe='')}"


async def run_page(request: web.Request) -> web.Response:
    body, live, project = await load_run(request)
    namespace = request.match_info["namespace"]
    view = run_view(body, None, datetime.now(UTC), live)
    view = view.__class__(**{**view.__dict__, "project": project})
    user = user_of(request)
    key = request.app[SETTINGS].csrf_key
    token = request.cookies.get(csrf.COOKIE)
    if not csrf.valid_for(key, user.name, token):
        token = csrf.issue(key, user.name)
    can_patch = live and await allowed(request, "patch", namespace)
    base = base_url(namespace, view.name)
    response = page(
        request,
        "run.html",
        run=view,
        base=base,
        status_url=base + "/status.json",
        csrf=token,
        can_cancel=can_patch,
        can_approve=can_patch,
        can_rerun=live and await allowed(request, "create", namespace),
    )
    response.set_cookie(
        csrf.COOKIE, token or "", httponly=True, samesite="Strict", path="/", secure=request.secure
    )
    return response


async def run_status(request: web.Request) -> web.Response:
    body, live, _ = await load_run(request)
    return web.json_response(status_json(run_view(body, None, datetime.now(UTC), live)))


async def log_events(request: web.Request) -> web.StreamResponse:
    body, live, _ = await load_run(request)
    step = find_step(body, request.match_info["step"])
    if step is None:
        raise web.HTTPNotFound(text="no such step")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    kube = kube_for(request.app, user_of(request))
    try:
        async for line in step_lines(
            kube, request.app[SETTINGS].reader, body, step, live=live, follow=True
        ):
            await response.write(sse(line))
    except KubeError as exc:
        await response.write(sse(f"[the log cannot be read: {exc}]"))
    await response.write(sse("", event="end"))
    return response


async def log_raw(request: web.Request) -> web.Response:
    body, live, _ = await load_run(request)
    step = find_step(body, request.match_info["step"])
    if step is None:
        raise web.HTTPNotFound(text="no such step")
    kube = kube_for(request.app, user_of(request))
    lines = [
        line
        async for line in step_lines(
            kube, request.app[SETTINGS].reader, body, step, live=live, follow=False
        )
    ]
    return web.Response(
        text="\n".join(lines) + ("\n" if lines else ""),
        content_type="text/plain",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{step.pod or step.id}.log"'},
    )


async def action_form(request: web.Request, verb: str) -> tuple[dict[str, Any], str]:
    """The form, once its CSRF token is this user's and their RBAC allows ``verb``."""
    form = await request.post()
    user = user_of(request)
    if not csrf.check(
        request.app[SETTINGS].csrf_key,
        user.name,
        request.cookies.get(csrf.COOKIE),
        str(form.get(csrf.FIELD) or ""),
    ):
        raise web.HTTPForbidden(text="the form's CSRF token is missing or not yours: reload")
    namespace = request.match_info["namespace"]
    await require(request, verb, namespace)
    return {k: str(v) for k, v in form.items()}, namespace


async def cancel(request: web.Request) -> web.Response:
    _, namespace = await action_form(request, "patch")
    name = request.match_info["name"]
    await kube_for(request.app, user_of(request)).merge_patch(
        namespace, name, {"spec": {"cancel": True}}
    )
    raise web.HTTPSeeOther(base_url(namespace, name))


async def rerun(request: web.Request) -> web.Response:
    _, namespace = await action_form(request, "create")
    name = request.match_info["name"]
    kube = kube_for(request.app, user_of(request))
    old = await kube.get_pipeline(namespace, name)
    if old is None:
        raise web.HTTPNotFound(text=f"no pipeline {name}: a run gone from the cluster")
    manifest, _ = restart_manifest(old, name)
    if "upload" in (manifest["spec"].get("source") or {}):
        raise web.HTTPConflict(text="its files came from an upload: shipway restart --source DIR")
    for candidate, _ in zip(restart_names(old), range(100), strict=False):
        manifest["metadata"]["name"] = candidate
        try:
            created = await kube.request("POST", pipeline_path(namespace), manifest)
        except KubeError as exc:
            if exc.status == 409:
                continue
            raise
        await share_secrets(kube, namespace, old, created)
        raise web.HTTPSeeOther(base_url(namespace, candidate))
    raise web.HTTPConflict(text="no free name for the rerun")


async def share_secrets(
    kube: Kube, namespace: str, old: dict[str, Any], created: dict[str, Any]
) -> None:
    """As ``shipway restart``: the Secrets the old run owns (decrypted variables, build args)
    get the new run as another owner, so deleting the old one leaves them to the new one.
    Best effort, as the user: the run goes on without it."""
    uid = (old.get("metadata") or {}).get("uid")
    patch = {"metadata": {"ownerReferences": [owner_of(created)]}}
    for name in sorted(secret_names(old.get("spec") or {})):
        secret = await kube.read_secret(namespace, name)
        refs = ((secret or {}).get("metadata") or {}).get("ownerReferences") or []
        if not any(ref.get("uid") == uid for ref in refs):
            continue
        try:
            await kube.request(
                "PATCH",
                f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(name, safe='')}",
                patch,
                content_type="application/strategic-merge-patch+json",
            )
        except KubeError:
            continue


async def decide(request: web.Request, decision: str) -> web.Response:
    form, namespace = await action_form(request, "patch")
    name = request.match_info["name"]
    kube = kube_for(request.app, user_of(request))
    body = await kube.get_pipeline(namespace, name)
    if body is None:
        raise web.HTTPNotFound(text=f"no pipeline {name}")
    who, _ = await identity.whoami(kube)
    from shipway.cli.common import CommandError

    try:
        patch, _ = decision_patch(body, who, decision, form.get("gate") or None)  # type: ignore[arg-type]
    except CommandError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    await kube.merge_patch(namespace, name, patch)
    raise web.HTTPSeeOther(base_url(namespace, name))


async def approve(request: web.Request) -> web.Response:
    return await decide(request, "Approved")


async def reject(request: web.Request) -> web.Response:
    return await decide(request, "Rejected")


async def badge_svg(request: web.Request) -> web.Response:
    namespace = request.match_info["namespace"]
    project, branch = request.query.get("project", ""), request.query.get("branch", "")
    phase = None
    if await allowed(request, "list", namespace):
        record = await asyncio.to_thread(
            request.app[SETTINGS].reader.latest, namespace, project, branch
        )
        phase = record.phase if record else None
    return web.Response(
        text=badge(phase), content_type="image/svg+xml", headers={"Cache-Control": "no-cache"}
    )


async def on_startup(app: web.Application) -> None:
    app[SESSION] = aiohttp.ClientSession()
    settings = app[SETTINGS]
    app[AUTHZ] = Authorizer(
        Kube(app[SESSION], settings.credentials), lambda user: kube_for(app, user)
    )
    if not settings.in_cluster:
        name, groups = await identity.whoami(Kube(app[SESSION], settings.credentials))
        app[LOCAL_USER] = User(name, groups, settings.credentials, self_review=True)


async def on_cleanup(app: web.Application) -> None:
    await app[SESSION].close()


def make_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[security_headers, authenticate])
    app[SETTINGS] = settings
    app[TEMPLATES] = templates()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    run = "/runs/{namespace}/{name}"
    app.add_routes(
        [
            web.get("/", index),
            web.get(run, run_page),
            web.get(run + "/status.json", run_status),
            web.get(run + "/steps/{step}/log/events", log_events),
            web.get(run + "/steps/{step}/log.txt", log_raw),
            web.post(run + "/cancel", cancel),
            web.post(run + "/rerun", rerun),
            web.post(run + "/approve", approve),
            web.post(run + "/reject", reject),
            web.get("/badge/{namespace}.svg", badge_svg),
            web.static("/static", HERE / "static"),
        ]
    )
    return app
