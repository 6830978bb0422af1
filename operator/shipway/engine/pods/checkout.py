"""The checkout and upload pods: what they run (pure).

Both run the git image (git, ssh, a busybox shell) with the workspace claim at
``/workspace``, no API token, and report through the container's termination message
(:mod:`shipway.engine.pods.scripts`). A git source's Secret is mounted as files, read-only, in the
checkout pod only; no credential is ever passed in the environment, the command line, the
status or an Event.
"""

from __future__ import annotations

from collections.abc import Mapping

from shipway.compiler.pipeline import CompiledPipeline
from shipway.compiler.source import CompiledSource, GitCheckout
from shipway.engine.intents import SourceToCreate
from shipway.engine.naming import task_title
from shipway.engine.objects import Manifest
from shipway.engine.pods.frame import PodFrame, PodMeta, assemble, containers, deadline, volumes
from shipway.engine.pods.scripts import CHECKOUT, RECEIVE
from shipway.engine.settings import PodOptions, SourceSettings

WORKSPACE_PATH = "/workspace"
SECRET_PATH = "/etc/shipway/git-secret"


def container(
    source: CompiledSource,
    settings: SourceSettings,
    security_context: Mapping[str, object] | None,
) -> Manifest:
    """The one container of a checkout or receiver pod."""
    mounts: list[Manifest] = [{"name": "workspace", "mountPath": WORKSPACE_PATH}]
    main: Manifest = {
        "name": task_title(source),
        "image": settings.image,
        "terminationMessagePolicy": "File",
    }
    if isinstance(source, GitCheckout):
        max_size = min(source.max_size or settings.max_size, settings.max_size)
        env = {
            "GIT_URL": source.url,
            "GIT_REVISION": source.revision or "",
            "GIT_DEPTH": str(source.depth),
            "GIT_SUBMODULES": "1" if source.submodules else "0",
            "SHIPWAY_MAX_SIZE": str(max_size),
            "SHIPWAY_WORKSPACE": WORKSPACE_PATH,
            "SHIPWAY_GIT_SECRET": SECRET_PATH,
        }
        main["command"] = ["sh", "-c", CHECKOUT, "checkout"]
        if source.secret_name:
            mounts.append({"name": "git-secret", "mountPath": SECRET_PATH, "readOnly": True})
    else:
        env = {"SHIPWAY_WORKSPACE": WORKSPACE_PATH}
        main["command"] = ["sh", "-c", RECEIVE, "receive"]
        main["stdin"] = True
        main["stdinOnce"] = True
    main["env"] = [{"name": k, "value": v} for k, v in env.items()]
    main["volumeMounts"] = mounts
    if security_context:
        main["securityContext"] = dict(security_context)
    return main


def secret_volume(source: CompiledSource) -> Manifest | None:
    """The git source's Secret as read-only files, when it names one."""
    if not isinstance(source, GitCheckout) or not source.secret_name:
        return None
    return {
        "name": "git-secret",
        "secret": {"secretName": source.secret_name, "defaultMode": 0o440},
    }


def source_pod(
    compiled: CompiledPipeline, create: SourceToCreate, frame: PodFrame, options: PodOptions
) -> Manifest:
    """The checkout (or upload receiver) pod: the git image, the claim, maybe the Secret."""
    source = compiled.source
    assert source is not None, "the pipeline has no source"
    main = container(source, options.source, options.security_context)
    secret = secret_volume(source)
    meta = PodMeta(create.name, create.step_id, create.attempt, main["name"], task_title(source))
    return assemble(
        frame,
        meta,
        containers(main),
        frame.workspace() if compiled.uses_workspace else None,
        volumes(secret) if secret is not None else None,
        frame.account(),
        deadline(create.active_deadline),
        frame.pinned(),
        frame.placement(),
        grace=options.termination_grace_seconds,
    )
