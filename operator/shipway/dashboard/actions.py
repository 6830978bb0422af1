"""The dashboard's actions: cancel, rerun, approve and reject, each a form checked for its
CSRF token and the user's RBAC, then done as the user (the cli's restart and approval logic)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from shipway.cli.approve import decision_patch
from shipway.cli.restart import restart_manifest, restart_names, secret_names
from shipway.cli.secrets import owner_of
from shipway.dashboard import csrf, identity
from shipway.dashboard.context import SETTINGS, base_url, kube_for, require, user_of
from shipway.dashboard.kube import Kube, KubeError, pipeline_path


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
