"""The frame every pod of a pipeline wears, written once: one builder plus transformers.

Metadata (name, labels, the step-name and default-container annotations, the Pipeline as
controller owner), no API token, no service links, ``restartPolicy: Never``, the grace period,
and the pipeline's placement (claim, ServiceAccount, deadline, affinity, nodeSelector,
tolerations, imagePullSecrets) are the same for the checkout, step, push and build pods.
:func:`assemble` writes the frame; each pod kind passes its containers and volumes, and picks the
frame's parts it uses, as transformers applied in order (Tekton's ``pkg/pod``: one ``Build``
plus transformers). The order they are given is the order the fields are written in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipway import GROUP, KIND, VERSION
from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.naming import (
    ANNOTATION_DEFAULT_CONTAINER,
    ANNOTATION_STEP_NAME,
    LABEL_ATTEMPT,
    LABEL_MANAGED_BY,
    LABEL_PIPELINE,
    LABEL_STEP,
    MANAGED_BY,
    pvc_name,
)
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.pods.containers import WORKSPACE_VOLUME
from shipway.engine.settings import PodOptions

Transformer = Callable[[Manifest], None]
"""Adds its part to a pod's ``spec`` (in place)."""

TOOL_GRACE_SECONDS = 5
"""The build and push pods' tools stop at once: they need no more than this."""


def owner_reference(ref: PipelineRef) -> Manifest:
    """The Pipeline as controller owner: what makes an object ours, and deletes it with it."""
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


def pipeline_affinity(
    ref: PipelineRef, compiled: CompiledPipeline, node: str | None
) -> Manifest | None:
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


@dataclass(frozen=True)
class PodFrame:
    """Whose a pipeline's pods are and where they go: the same for every pod kind."""

    ref: PipelineRef
    claim: str | None = None
    """The workspace claim (mounted only by the kinds that ask for it)."""
    affinity: Manifest | None = None
    service_account: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    pull_secrets: tuple[str, ...] = ()
    """The pipeline's imagePullSecrets, by name."""

    @classmethod
    def of(
        cls, ref: PipelineRef, compiled: CompiledPipeline, node: str | None, options: PodOptions
    ) -> PodFrame:
        """The frame of ``compiled``'s pods; ``node``: where its claim is, once known."""
        return cls(
            ref=ref,
            claim=claim_name(ref, compiled),
            affinity=pipeline_affinity(ref, compiled, node),
            service_account=compiled.spec.serviceAccountName or options.default_service_account,
            node_selector=dict(options.node_selector or {}),
            tolerations=tuple(options.tolerations),
            pull_secrets=tuple(secret.name for secret in compiled.spec.imagePullSecrets),
        )

    def workspace(self, *, read_only: bool = False) -> Transformer:
        """Mount the pipeline's claim as the ``workspace`` volume."""
        assert self.claim is not None, "the pipeline has no workspace claim"
        claim: Manifest = {"claimName": self.claim}
        if read_only:
            claim["readOnly"] = True
        return volumes({"name": WORKSPACE_VOLUME, "persistentVolumeClaim": claim})

    def account(self) -> Transformer:
        """Run as the pipeline's ServiceAccount (its token is never mounted)."""

        def apply(spec: Manifest) -> None:
            if self.service_account:
                spec["serviceAccountName"] = self.service_account

        return apply

    def pinned(self) -> Transformer:
        """Stay beside the pipeline's other pods (the claim's node)."""

        def apply(spec: Manifest) -> None:
            if self.affinity:
                spec["affinity"] = self.affinity

        return apply

    def placement(self) -> Transformer:
        """The operator's nodeSelector and tolerations, for every pod it makes."""

        def apply(spec: Manifest) -> None:
            if self.node_selector:
                spec["nodeSelector"] = dict(self.node_selector)
            if self.tolerations:
                spec["tolerations"] = [dict(t) for t in self.tolerations]

        return apply

    def pulls(self, own: str | None = None) -> Transformer:
        """The pipeline's imagePullSecrets, then the step's own (``dockercfgSecret``)."""
        names = dict.fromkeys([*self.pull_secrets, *([own] if own else [])])

        def apply(spec: Manifest) -> None:
            if names:
                spec["imagePullSecrets"] = [{"name": name} for name in names]

        return apply


@dataclass(frozen=True)
class PodMeta:
    """Which pod of the pipeline this is: its name, task, attempt and what it shows."""

    name: str
    task: str
    """The ``shipway.dev/step`` label: the step id, ``source`` or ``build-<service>``."""
    attempt: int
    container: str
    """The default container (``kubectl logs``)."""
    title: str | None = None
    """The step's name, shown on the pod; None for pods that are no step."""
    labels: tuple[tuple[str, str], ...] = ()
    """The kind's own labels, written after the frame's."""


def assemble(
    frame: PodFrame,
    meta: PodMeta,
    *transformers: Transformer | None,
    grace: int = TOOL_GRACE_SECONDS,
) -> Manifest:
    """The Pod: the frame, then each transformer in turn (None: a part the pod leaves out)."""
    spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace,
    }
    for transform in transformers:
        if transform is not None:
            transform(spec)
    annotations = {ANNOTATION_STEP_NAME: meta.title} if meta.title is not None else {}
    annotations[ANNOTATION_DEFAULT_CONTAINER] = meta.container
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": meta.name,
            "namespace": frame.ref.namespace,
            "labels": {
                LABEL_PIPELINE: frame.ref.name,
                LABEL_STEP: meta.task,
                LABEL_ATTEMPT: str(meta.attempt),
                **dict(meta.labels),
                LABEL_MANAGED_BY: MANAGED_BY,
            },
            "annotations": annotations,
            "ownerReferences": [owner_reference(frame.ref)],
        },
        "spec": spec,
    }


def containers(*items: Manifest) -> Transformer:
    def apply(spec: Manifest) -> None:
        spec["containers"] = list(items)

    return apply


def init_containers(items: Sequence[Manifest]) -> Transformer:
    def apply(spec: Manifest) -> None:
        if items:
            spec["initContainers"] = list(items)

    return apply


def volumes(*items: Manifest) -> Transformer:
    """Add volumes after those already there."""

    def apply(spec: Manifest) -> None:
        spec["volumes"] = [*spec.get("volumes", []), *items]

    return apply


def deadline(seconds: int | None) -> Transformer:
    def apply(spec: Manifest) -> None:
        if seconds is not None:
            spec["activeDeadlineSeconds"] = seconds

    return apply


def host_aliases(names: Sequence[str]) -> Transformer:
    """The linked services' host names, on loopback: the pod is one network namespace."""

    def apply(spec: Manifest) -> None:
        if names:
            spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": list(names)}]

    return apply


def hardened(uid: int) -> Manifest:
    """The securityContext of the operator's own tool containers (build, push, inspect)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def tool_container(
    name: str,
    image: str,
    command: list[str],
    *,
    args: list[str] | None = None,
    env: Sequence[tuple[str, str]],
    mounts: list[Manifest],
    uid: int,
) -> Manifest:
    """A container of the operator's own tools: reports through its termination message,
    small, unprivileged, read-only root."""
    container: Manifest = {"name": name, "image": image, "command": command}
    if args is not None:
        container["args"] = args
    container |= {
        "env": [{"name": k, "value": v} for k, v in env],
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": hardened(uid),
    }
    return container
