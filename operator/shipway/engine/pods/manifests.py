"""Pure builders of the Kubernetes objects Shipway creates: one PVC and one Pod per step attempt.

Codeship → Kubernetes, in one place:

* every ``volumes`` / ``volumes_from`` entry is a ``subPath`` of the pipeline's one claim;
  there is no hostPath anywhere; a pipeline that mounts nothing has no claim;
* compose ``entrypoint`` → container ``command``, compose/step ``command`` → ``args``;
* ``links`` / ``depends_on`` → native sidecars (init containers with ``restartPolicy: Always``)
  in the step's pod, reachable by name through ``hostAliases`` (one network namespace), gated
  by a ``startupProbe`` made from the service's healthcheck;
* a ReadWriteOnce claim keeps every pod of a pipeline on one node.
"""

from __future__ import annotations

import math

from shipway import GROUP, KIND, VERSION
from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.cienv import ci_environment
from shipway.engine.intents import BuildToCreate, PodToCreate
from shipway.engine.naming import (
    ANNOTATION_DEFAULT_CONTAINER,
    ANNOTATION_PIPELINE_UID,
    ANNOTATION_STEP_NAME,
    GENERATOR_CONTAINER,
    LABEL_ATTEMPT,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    LABEL_STEP,
    MANAGED_BY,
    SOURCE_TASK,
    build_secret_name,
    container_name,
    host_names,
    pod_name,
    pvc_name,
    source_pod_name,
    task_title,
)
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.pods import docker
from shipway.engine.pods.buildpods import build_pod_manifest
from shipway.engine.pods.checkout import container as source_container
from shipway.engine.pods.checkout import secret_volume
from shipway.engine.pods.containers import WORKSPACE_VOLUME, probe, service_container
from shipway.engine.pods.pushpods import push_pod_manifest
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


def owner_reference(ref: PipelineRef) -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
    }


def claim_name(ref: PipelineRef, compiled: CompiledPipeline) -> str:
    """The workspace claim's name: the one the spec names, else the pipeline's own."""
    return compiled.spec.workspace.claimName or pvc_name(ref.name, ref.uid)


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


def _affinity(ref: PipelineRef, compiled: CompiledPipeline, node: str | None) -> Manifest | None:
    """Keep a ReadWriteOnce workspace's pods together, without a placeholder pod.

    Once a node is known, pods require it. Before that (the first pods, possibly a parallel
    group), they require each other: the scheduler lets the first one go anywhere.
    """
    if not compiled.pinned:
        return None
    if node:
        term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {LABEL_PIPELINE: ref.name}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def pod_manifest(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: PodToCreate,
    node: str | None = None,
    options: PodOptions | None = None,
    source: SourceStatus | None = None,
) -> Manifest:
    """The Pod running one attempt of one step (or the checkout, for the source task)."""
    options = options or PodOptions()
    if create.step_id == SOURCE_TASK:
        return _source_pod(ref, compiled, create, node, options)
    run = compiled.run(create.step_id)
    if run.push is not None:
        return push_manifest(ref, compiled, create, node, options, source)
    service = compiled.services[run.service]
    env = ci_environment(ref, compiled, source)
    args = run.command if run.command is not None else service.command
    images = dict(create.images)  # built services run their image by digest
    image_checks = dict(create.healthchecks)  # their HEALTHCHECKs, unless the spec sets one
    main = service_container(service, args, env, options.security_context, images.get(service.name))
    sidecars: list[Manifest] = []
    aliases: list[str] = []
    for link in service.links:
        linked = compiled.services[link.service]
        sidecar = service_container(
            linked, linked.command, env, options.security_context, images.get(link.service)
        )
        sidecar["restartPolicy"] = "Always"
        healthcheck = linked.healthcheck or image_checks.get(link.service)
        if healthcheck is not None and (check := probe(healthcheck)):
            sidecar["startupProbe"] = check
        sidecars.append(sidecar)
        for name in (*host_names(link.service), *link.aliases):
            if name not in aliases:
                aliases.append(name)
    spec = _pod_spec(ref, compiled, create, node, options, main)
    pull = _pull_secrets(compiled, run.pull_secret)
    if pull:
        spec["imagePullSecrets"] = pull
    if sidecars:
        spec["initContainers"] = sidecars
    if aliases:
        spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": aliases}]
    users = [service, *(compiled.services[link.service] for link in service.links)]
    docker.attach(spec, [container_name(s.name) for s in users if s.docker], options.docker)
    return _pod(ref, create, run.name, main, spec)


def _source_pod(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: PodToCreate,
    node: str | None,
    options: PodOptions,
) -> Manifest:
    """The checkout (or upload receiver) pod: the git image, the claim, maybe the Secret."""
    source = compiled.source
    assert source is not None
    main = source_container(source, options.source, options.security_context)
    spec = _pod_spec(ref, compiled, create, node, options, main)
    secret = secret_volume(source)
    if secret is not None:
        spec["volumes"].append(secret)
    return _pod(ref, create, task_title(source), main, spec)


def _pod_spec(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: PodToCreate,
    node: str | None,
    options: PodOptions,
    main: Manifest,
) -> Manifest:
    """What every pod of a pipeline shares: no token, the claim, the node, the deadline."""
    spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": options.termination_grace_seconds,
        "containers": [main],
    }
    if compiled.uses_workspace:
        spec["volumes"] = [
            {
                "name": WORKSPACE_VOLUME,
                "persistentVolumeClaim": {"claimName": claim_name(ref, compiled)},
            }
        ]
    account = compiled.spec.serviceAccountName or options.default_service_account
    if account:
        spec["serviceAccountName"] = account
    if create.active_deadline is not None:
        spec["activeDeadlineSeconds"] = create.active_deadline
    affinity = _affinity(ref, compiled, node)
    if affinity:
        spec["affinity"] = affinity
    if options.node_selector:
        spec["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        spec["tolerations"] = [dict(t) for t in options.tolerations]
    return spec


def _pod(
    ref: PipelineRef, create: PodToCreate, title: str, main: Manifest, spec: Manifest
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": create.name,
            "namespace": ref.namespace,
            "labels": {
                LABEL_PIPELINE: ref.name,
                LABEL_STEP: create.step_id,
                LABEL_ATTEMPT: str(create.attempt),
                LABEL_MANAGED_BY: MANAGED_BY,
            },
            "annotations": {
                ANNOTATION_STEP_NAME: title,
                ANNOTATION_DEFAULT_CONTAINER: main["name"],
            },
            "ownerReferences": [owner_reference(ref)],
        },
        "spec": spec,
    }


def _pull_secrets(compiled: CompiledPipeline, own: str | None) -> list[Manifest]:
    """The pipeline's imagePullSecrets, then the step's dockercfgSecret."""
    names = [secret.name for secret in compiled.spec.imagePullSecrets]
    return [{"name": name} for name in dict.fromkeys([*names, *([own] if own else [])])]


def push_manifest(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: PodToCreate,
    node: str | None = None,
    options: PodOptions | None = None,
    source: SourceStatus | None = None,
) -> Manifest:
    """The Pod of one attempt of a push step (see :mod:`shipway.engine.pods.pushpods`)."""
    options = options or PodOptions()
    run = compiled.run(create.step_id)
    push = run.push
    assert push is not None, f"step {run.id} is not a push step"
    assert create.push is not None, f"step {run.id} has no push target"
    extra: Manifest = {}
    generator: tuple[str, Manifest] | None = None
    name = push.credentials.generator
    if name is not None:
        service = compiled.services[name]
        images = dict(create.images)
        env = ci_environment(ref, compiled, source)
        container = service_container(
            service, None, env, options.security_context, images.get(name)
        )
        generator = (name, container)
        if service.mounts:
            extra["volumes"] = [
                {
                    "name": WORKSPACE_VOLUME,
                    "persistentVolumeClaim": {"claimName": claim_name(ref, compiled)},
                }
            ]
            affinity = _affinity(ref, compiled, node)
            if affinity:
                extra["affinity"] = affinity
    pull = _pull_secrets(compiled, None)
    if pull:
        extra["imagePullSecrets"] = pull
    if create.active_deadline is not None:
        extra["activeDeadlineSeconds"] = create.active_deadline
    if options.node_selector:
        extra["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        extra["tolerations"] = [dict(t) for t in options.tolerations]
    pod = push_pod_manifest(
        create.push,
        options.push,
        name=create.name,
        namespace=ref.namespace,
        pipeline=ref.name,
        step_id=create.step_id,
        step_name=run.name,
        attempt=create.attempt,
        owner=owner_reference(ref),
        secret=push.credentials.secret,
        generator=generator,
        extra=extra,
    )
    if name is not None and compiled.services[name].docker:
        docker.attach(pod["spec"], [GENERATOR_CONTAINER], options.docker)
    return pod


def all_manifests(ref: PipelineRef, compiled: CompiledPipeline) -> list[Manifest]:
    """The claim, the source's pod and one first-attempt pod per enabled step: what
    ``shipway render`` prints. Push steps are left out: what they copy is only known once
    their image is built."""
    manifests = [claim_manifest(ref, compiled)] if compiled.uses_workspace else []
    if compiled.source is not None:
        name = source_pod_name(ref, compiled.source)
        manifests.append(pod_manifest(ref, compiled, PodToCreate(SOURCE_TASK, 0, name)))
    for run in compiled.runs:
        if not run.enabled or run.push is not None:
            continue
        timeout = math.ceil(run.timeout) if run.timeout else None
        name = pod_name(ref.name, ref.uid, run.id, run.name)
        create = PodToCreate(run.id, 0, name, timeout)
        manifests.append(pod_manifest(ref, compiled, create))
    return manifests


def build_manifest(
    ref: PipelineRef,
    compiled: CompiledPipeline,
    create: BuildToCreate,
    config: BuildConfig,
    node: str | None = None,
    options: PodOptions | None = None,
) -> Manifest:
    """The Pod building one service's image: beside the steps (same claim, same node)."""
    options = options or PodOptions()
    build = compiled.services[create.service].build
    assert build is not None, f"{create.service} has no build"
    return build_pod_manifest(
        build,
        create,
        config,
        namespace=ref.namespace,
        pipeline=ref.name,
        owner=owner_reference(ref),
        claim=claim_name(ref, compiled),
        secret=build_secret_name(ref.name, ref.uid),
        affinity=_affinity(ref, compiled, node),
        inspect=options.push,
        placement={
            "nodeSelector": dict(options.node_selector or {}),
            "tolerations": [dict(t) for t in options.tolerations],
        },
    )
