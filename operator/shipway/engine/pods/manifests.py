"""Pure builders of the Kubernetes objects Shipway creates: the claim, and one Pod per intent.

Codeship → Kubernetes, in one place: every pod wears one frame (:mod:`.frame`: metadata,
owner, no token, placement) and each kind adds its own containers and volumes: the checkout
(:mod:`.checkout`), a step (:mod:`.step`), a push (:mod:`.push`), a build (:mod:`.build`).

* every ``volumes`` / ``volumes_from`` entry is a ``subPath`` of the pipeline's one claim;
  there is no hostPath anywhere; a pipeline that mounts nothing has no claim;
* a ReadWriteOnce claim keeps every pod of a pipeline on one node.
"""

from __future__ import annotations

import math
from typing import assert_never

from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.intents import (
    BuildToCreate,
    PodToCreate,
    PushToCreate,
    SourceToCreate,
    StepToCreate,
)
from shipway.engine.naming import (
    ANNOTATION_PIPELINE_UID,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    MANAGED_BY,
    SOURCE_TASK,
    build_secret_name,
    pod_name,
    pvc_name,
    source_pod_name,
)
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.pods.build import build_pod
from shipway.engine.pods.checkout import source_pod
from shipway.engine.pods.frame import PodFrame, owner_reference
from shipway.engine.pods.push import push_pod
from shipway.engine.pods.step import step_pod
from shipway.engine.settings import BuildConfig, PodOptions
from shipway.models import SourceStatus


def step_service_account(compiled: CompiledPipeline, options: PodOptions) -> str:
    """The ServiceAccount the pipeline's pods run as."""
    return compiled.spec.serviceAccountName or options.default_service_account or "default"


def service_account_refusal(
    ref: PipelineRef, compiled: CompiledPipeline, options: PodOptions
) -> str | None:
    """Why the pipeline's pods may not run as their ServiceAccount; None when they may.

    Whoever may create Pipelines could otherwise borrow the operator's own account (which
    may create pods and read every Pipeline) or any account of the namespace.
    """
    account = step_service_account(compiled, options)
    if account == options.operator_service_account and options.operator_namespace in (
        None,
        ref.namespace,
    ):
        return (
            f"spec.serviceAccountName: {account!r} is the operator's own ServiceAccount; "
            "step pods never run as it"
        )
    allowed = options.allowed_service_accounts
    if allowed and account not in allowed and account != options.default_service_account:
        names = ", ".join(repr(a) for a in allowed)
        return (
            f"spec.serviceAccountName: {account!r} is not allowed for step pods by the "
            f"operator's configuration (allowed: {names})"
        )
    return None


def claim_manifest(ref: PipelineRef, compiled: CompiledPipeline) -> Manifest:
    """The pipeline's workspace: owned by the Pipeline (so deleted with it) unless kept."""
    workspace = compiled.spec.workspace
    meta: Manifest = {
        "name": pvc_name(ref.name, ref.uid),
        "namespace": ref.namespace,
        "labels": {LABEL_PIPELINE: ref.name, LABEL_MANAGED_BY: MANAGED_BY},
        "annotations": {ANNOTATION_PIPELINE_UID: ref.uid},
    }
    if not workspace.keep:
        meta["ownerReferences"] = [owner_reference(ref)]
    spec: Manifest = {
        "accessModes": list(workspace.accessModes),
        "resources": {"requests": {"storage": workspace.size}},
    }
    if workspace.storageClassName is not None:
        spec["storageClassName"] = workspace.storageClassName
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def all_manifests(ref: PipelineRef, compiled: CompiledPipeline) -> list[Manifest]:
    """The claim, the source's pod and one first-attempt pod per enabled step: what
    ``shipway render`` prints. Push steps are left out: what they copy is only known once
    their image is built."""
    manifests = [claim_manifest(ref, compiled)] if compiled.uses_workspace else []
    if compiled.source is not None:
        name = source_pod_name(ref, compiled.source)
        manifests.append(pod_manifest(ref, compiled, SourceToCreate(SOURCE_TASK, 0, name)))
    for run in compiled.runs:
        if not run.enabled or run.push is not None:
            continue
        timeout = math.ceil(run.timeout) if run.timeout else None
        name = pod_name(ref.name, ref.uid, run.id, run.name)
        create = StepToCreate(run.id, 0, name, timeout)
        manifests.append(pod_manifest(ref, compiled, create))
    return manifests


def pod_manifest(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: PodToCreate,
    *,
    node: str | None = None,
    options: PodOptions | None = None,
    source: SourceStatus | None = None,
) -> Manifest:
    """The Pod of one intent: the checkout, one attempt of a step, or of a push step.

    ``node``: where the pipeline's claim is, once known; ``source``: the checkout's commit
    and branch, for the CI environment.
    """
    options = options or PodOptions()
    frame = PodFrame.of(ref, compiled, node, options)
    match create:
        case SourceToCreate():
            return source_pod(compiled, create, frame, options)
        case PushToCreate():
            return push_pod(compiled, create, frame, options, source=source)
        case StepToCreate():
            return step_pod(compiled, create, frame, options, source=source)
        case _:
            assert_never(create)


def build_manifest(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: BuildToCreate,
    config: BuildConfig,
    *,
    node: str | None = None,
    options: PodOptions | None = None,
) -> Manifest:
    """The Pod building one service's image: beside the steps (same claim, same node)."""
    options = options or PodOptions()
    build = compiled.services[create.service].build
    assert build is not None, f"{create.service} has no build"
    return build_pod(
        build,
        create,
        config,
        PodFrame.of(ref, compiled, node, options),
        secret=build_secret_name(ref.name, ref.uid),
        inspect=options.push,
    )
