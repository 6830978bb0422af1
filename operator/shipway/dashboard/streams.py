"""The step log handlers: the log followed live as server-sent events, and the whole log as a
download; both as the user, live from the API server or archived in the history."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from shipway.dashboard.context import SETTINGS, kube_for, user_of
from shipway.dashboard.kube import KubeError
from shipway.dashboard.logs import find_step, sse, step_lines
from shipway.dashboard.pages import load_run
from shipway.models import StepStatus


async def load_step(request: web.Request) -> tuple[dict[str, Any], bool, StepStatus]:
    """The run (see ``load_run``) and the step the route names."""
    body, live, _ = await load_run(request)
    step = find_step(body, request.match_info["step"])
    if step is None:
        raise web.HTTPNotFound(text="no such step")
    return body, live, step


async def log_events(request: web.Request) -> web.StreamResponse:
    body, live, step = await load_step(request)
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
    body, live, step = await load_step(request)
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
