"""The dashboard's read handlers: the run list, a run's page and its status for the page's
polling, the status badge; each as the user, through their RBAC."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from shipway.dashboard import csrf
from shipway.dashboard.badge import badge
from shipway.dashboard.context import (
    AUTHZ,
    SETTINGS,
    allowed,
    base_url,
    kube_for,
    page,
    require,
    user_of,
)
from shipway.dashboard.views import list_row, run_view, status_json
from shipway.history.records import body_of, project_of
from shipway.history.store import cursor

PHASES = ("Pending", "Running", "AwaitingApproval", "Succeeded", "Failed", "Cancelled")
PAGE_SIZE = 50


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
