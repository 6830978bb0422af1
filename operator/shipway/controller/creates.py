"""Creating a pipeline's claim and pods, and telling whose an existing one is.

A name proves nothing: when a create finds its name taken, the object found is the
pipeline's only if its controller ownerReference (or, for a kept claim, the pipeline-uid
annotation) carries the Pipeline's UID. Anything else is a conflict, reported as such
instead of adopted. A ResourceQuota's refusal is a wait; any other refusal is final.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shipway.compiler.pipeline import CompiledPipeline
from shipway.controller.callpool import Priority
from shipway.controller.kube import KubeError
from shipway.controller.registrycreds import with_namespace_credentials
from shipway.engine.intents import BuildToCreate, PodToCreate
from shipway.engine.naming import ANNOTATION_PIPELINE_UID
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.observe import PodView, controller_uid, safe_pod_view
from shipway.engine.ownership import ANNOTATION_SEAL, seal, sealed
from shipway.engine.plan.planner import Refusal
from shipway.engine.pods.frame import claim_name
from shipway.engine.pods.manifests import build_manifest, claim_manifest, pod_manifest
from shipway.engine.reasons import PipelineReason, StepReason
from shipway.engine.settings import BuildConfig, PodOptions
from shipway.models import SourceStatus


class CreatingApi(Protocol):
    async def create_pod(
        self, namespace: str, manifest: Manifest, priority: Priority = Priority.STEP
    ) -> Manifest | None: ...
    async def get_pod(self, namespace: str, name: str) -> Manifest | None: ...
    async def create_claim(self, namespace: str, manifest: Manifest) -> bool: ...
    async def get_claim(self, namespace: str, name: str) -> Manifest | None: ...


@dataclass(frozen=True)
class ClaimFailure:
    """The pipeline cannot have its workspace: it fails with this reason and message."""

    reason: str
    message: str


@dataclass
class Created:
    """What became of a round of pod creates."""

    created: dict[str, PodView] = field(default_factory=dict)
    rejected: dict[str, Refusal] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    """Refused by a ResourceQuota: try again later."""


def describe_owner(meta: Manifest) -> str:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return f"it belongs to {ref.get('kind', '?')} {ref.get('name', '?')!r}"
    return "it belongs to no Pipeline"


def owns_claim(meta: Manifest, uid: str) -> bool:
    """The claim is the pipeline's own: controlled by it, or kept (no owner) and annotated
    with its UID."""
    owner = controller_uid(meta)
    if owner is not None:
        return owner == uid
    return (meta.get("annotations") or {}).get(ANNOTATION_PIPELINE_UID) == uid


async def ensure_claim(
    kube: CreatingApi, ref: PipelineRef, compiled: CompiledPipeline
) -> ClaimFailure | str | None:
    """Make sure the workspace claim exists and may be used: None when it does, a quota
    message to wait on, or why the pipeline fails."""
    name = claim_name(ref, compiled)
    if compiled.spec.workspace.claimName:  # reuse, explicitly: the operator creates nothing
        if await kube.get_claim(ref.namespace, name) is None:
            return ClaimFailure(
                PipelineReason.CLAIM_NOT_FOUND,
                f"spec.workspace.claimName: no PersistentVolumeClaim {name!r} in namespace "
                f"{ref.namespace!r}",
            )
        return None
    try:
        if await kube.create_claim(ref.namespace, claim_manifest(ref, compiled)):
            return None
    except KubeError as exc:
        if exc.quota:
            return f"the workspace claim: {exc}"
        if exc.permanent:
            return ClaimFailure(
                PipelineReason.CLAIM_REJECTED, f"the workspace claim {name!r} was refused: {exc}"
            )
        raise
    found = await kube.get_claim(ref.namespace, name)
    if found is None:  # deleted in between: the next reconcile creates it
        raise KubeError(409, "Conflict", f"claim {name} vanished while being created")
    meta = found.get("metadata") or {}
    if owns_claim(meta, ref.uid):
        return None
    return ClaimFailure(
        PipelineReason.CLAIM_NAME_CONFLICT,
        f"a PersistentVolumeClaim named {name!r} already exists and {describe_owner(meta)}, "
        "not to this pipeline; to use an existing claim, name it in spec.workspace.claimName",
    )


async def create_pods(
    kube: CreatingApi,
    ref: PipelineRef,
    compiled: CompiledPipeline,
    creates: Sequence[PodToCreate],
    *,
    node: str | None,
    options: PodOptions,
    urgency: Priority,
    source: SourceStatus | None = None,
    builds: Sequence[BuildToCreate] = (),
    build: BuildConfig | None = None,
) -> Created:
    """Create the planned pods (builds' and steps') at once; a name found taken is checked
    for ownership.

    ``source`` is what the checkout found: its commit and branch become CI variables.
    With per-namespace registry credentials, pods running built images name the Pipeline's
    pull Secret and build pods trust the CA the push pods trust (the token service's).
    """
    done = Created()
    manifests = [
        (
            b.name,
            build_manifest(ref, compiled, b, build or BuildConfig(), node=node, options=options),
        )
        for b in builds
    ]
    steps = [
        (c.name, pod_manifest(ref, compiled, c, node=node, options=options, source=source))
        for c in creates
    ]
    with_namespace_credentials(
        ref,
        build or BuildConfig(),
        builds=[m for _, m in manifests],
        steps=[m for _, m in steps],
        ca_config_map=options.push.ca_config_map,
    )
    manifests += steps
    for name, manifest in manifests:  # proof that the operator made it (engine.ownership)
        annotations = manifest["metadata"].setdefault("annotations", {})
        annotations[ANNOTATION_SEAL] = seal(options.seal_key, ref.uid, name)

    async def one(name: str, manifest: Manifest) -> None:
        try:
            body = await kube.create_pod(ref.namespace, manifest, urgency)
        except KubeError as exc:
            if exc.quota:
                done.waiting[name] = str(exc)
            elif exc.permanent:
                done.rejected[name] = Refusal(
                    StepReason.POD_REJECTED, f"the pod was rejected: {exc}"
                )
            else:
                raise
            return
        if body is None:  # the name is taken: ours (a create repeated) or someone else's?
            body = await kube.get_pod(ref.namespace, name)
            if body is None:  # gone again already: no status may name a pod of unknown UID
                raise KubeError(409, "Conflict", f"pod {name} vanished while being created")
            view = safe_pod_view(body)
            if view is None or view.owner_uid != ref.uid:
                meta = body.get("metadata") or {}
                done.rejected[name] = Refusal(
                    StepReason.POD_NAME_CONFLICT,
                    f"a pod named {name!r} already exists and {describe_owner(meta)}, "
                    "not to this pipeline",
                )
                return
            if not sealed(options.seal_key, ref.uid, view):
                done.rejected[name] = Refusal(
                    StepReason.POD_NAME_CONFLICT,
                    f"a pod named {name!r} already exists and names this pipeline as its "
                    "owner, but the operator did not create it; it is ignored",
                )
                return
        view = safe_pod_view(body)
        if view is not None:
            done.created[name] = view

    await asyncio.gather(*(one(name, manifest) for name, manifest in manifests))
    return done
