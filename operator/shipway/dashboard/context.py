"""What every dashboard handler shares: the settings and application keys, the page renderer,
the user's own API client and the authorization checks, the run URL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jinja2
from aiohttp import web

from shipway.dashboard import csrf
from shipway.dashboard.authz import Authorizer, Check
from shipway.dashboard.identity import User
from shipway.dashboard.kube import Credentials, Kube
from shipway.dashboard.reader import RunReader

HERE = Path(__file__).parent


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


def base_url(namespace: str, name: str) -> str:
    return f"/runs/{quote(namespace, safe='')}/{quote(name, safe='')}"
