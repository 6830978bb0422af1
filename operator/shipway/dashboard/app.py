"""The dashboard's HTTP shell (aiohttp): the application, its routes and its lifetime; the
handlers live by job in ``pages``, ``streams`` and ``actions``, identity and headers in
``middleware``."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from shipway.dashboard import identity
from shipway.dashboard.actions import approve, cancel, reject, rerun
from shipway.dashboard.authz import Authorizer
from shipway.dashboard.context import (
    AUTHZ,
    HERE,
    LOCAL_USER,
    SESSION,
    SETTINGS,
    TEMPLATES,
    Settings,
    kube_for,
    templates,
)
from shipway.dashboard.identity import User
from shipway.dashboard.kube import Kube
from shipway.dashboard.middleware import authenticate, security_headers
from shipway.dashboard.pages import badge_svg, index, run_page, run_status
from shipway.dashboard.streams import log_events, log_raw


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
