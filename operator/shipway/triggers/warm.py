"""Warm workspaces: claims made before the push that needs them (pure, no I/O).

A pipeline's first pod waits for its workspace claim to be bound, and a provisioner takes
its time: local-path's helper pod 2-3 s, a cloud disk often longer. A Repository keeps
``spec.warmWorkspaces`` spare claims of the shape its pipelines use, controlled by it (they
go when it goes). A push takes the oldest spare, names it in the Pipeline's
``spec.workspace.claimName`` and hands it over: the Pipeline becomes its controller, so it
is deleted with the Pipeline like any workspace. A spare is used once, so every run still
starts on a fresh, empty volume.

Taking is a write conditioned on the claim's resourceVersion: of two replicas (or two
deliveries) reaching for the same spare, one wins and the other takes the next or makes
none. A take whose hand-over never came (the receiver died in between) is finished or
undone by :func:`keep` a minute later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shipway import GROUP, VERSION
from shipway.engine.naming import label_value

Manifest = dict[str, Any]

LABEL_WARM = "shipway.dev/warm-workspace"
"""On a spare (and a taken one not yet handed over): its Repository's name, as a label."""
ANNOTATION_SHAPE = "shipway.dev/workspace-shape"
"""The workspace a spare can serve: size, class and access modes (see :class:`Shape`)."""
ANNOTATION_TAKEN = "shipway.dev/taken-for"
"""The Pipeline a spare was taken for, until it is handed over."""
ANNOTATION_TAKEN_AT = "shipway.dev/taken-at"
TAKEN_GRACE = timedelta(seconds=60)
"""A take not handed over after this long was interrupted: :func:`keep` finishes or undoes it."""


@dataclass(frozen=True)
class Shape:
    """What a workspace claim asks for: two pipelines with the same shape can use each
    other's spares."""

    size: str = "1Gi"
    storage_class: str | None = None
    access_modes: tuple[str, ...] = ("ReadWriteOnce",)

    def key(self) -> str:
        return json.dumps([self.size, self.storage_class, list(self.access_modes)])


def workspace_shape(pipeline: Mapping[str, Any]) -> Shape | None:
    """The shape of the claim the operator would make for ``pipeline`` (a manifest); None
    when it makes none of its own: it names an existing claim, or keeps its claim after
    it is deleted (a spare handed over goes with its Pipeline)."""
    ws = (pipeline.get("spec") or {}).get("workspace") or {}
    if ws.get("claimName") or ws.get("keep"):
        return None
    return Shape(
        size=str(ws.get("size") or "1Gi"),
        storage_class=ws.get("storageClassName"),
        access_modes=tuple(ws.get("accessModes") or ("ReadWriteOnce",)),
    )


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or ():
        if ref.get("controller") is True:
            return str(ref.get("uid"))
    return None


def _annotation(obj: Mapping[str, Any], key: str) -> str | None:
    value = (_meta(obj).get("annotations") or {}).get(key)
    return None if value is None else str(value)


def spare_manifest(repo: Mapping[str, Any], shape: Shape) -> Manifest:
    """A new spare claim of ``repo``: controlled by it, named by the API server."""
    meta = _meta(repo)
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Repository", "name": meta["name"],
             "uid": meta["uid"], "controller": True}  # fmt: skip
    spec: Manifest = {
        "accessModes": list(shape.access_modes),
        "resources": {"requests": {"storage": shape.size}},
    }
    if shape.storage_class is not None:
        spec["storageClassName"] = shape.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "generateName": f"{str(meta['name'])[:40]}-warm-",
            "labels": {LABEL_WARM: label_value(str(meta["name"]))},
            "annotations": {ANNOTATION_SHAPE: shape.key()},
            "ownerReferences": [owner],
        },
        "spec": spec,
    }


def _of(claims: Iterable[Mapping[str, Any]], repo_uid: str) -> list[Mapping[str, Any]]:
    """The Repository's claims (controller), oldest first, none being deleted or lost."""
    mine = [
        c
        for c in claims
        if _controller_uid(c) == repo_uid
        and not _meta(c).get("deletionTimestamp")
        and (c.get("status") or {}).get("phase") != "Lost"
    ]
    return sorted(mine, key=lambda c: (str(_meta(c).get("creationTimestamp", "")),
                                       str(_meta(c).get("name", ""))))  # fmt: skip


def spares(claims: Iterable[Mapping[str, Any]], repo_uid: str, shape: Shape) -> list[str]:
    """Names of the spares of that shape, oldest (the first to take) first."""
    return [
        str(_meta(c)["name"])
        for c in _of(claims, repo_uid)
        if _annotation(c, ANNOTATION_TAKEN) is None
        and _annotation(c, ANNOTATION_SHAPE) == shape.key()
    ]


def take_patch(claim: Mapping[str, Any], pipeline: str, now: datetime) -> Manifest:
    """Mark the spare taken for ``pipeline``; refused (409) if it changed since it was read."""
    return {
        "metadata": {
            "resourceVersion": _meta(claim).get("resourceVersion"),
            "annotations": {ANNOTATION_TAKEN: pipeline, ANNOTATION_TAKEN_AT: _stamp(now)},
        }
    }


def handover_patch(pipeline: Mapping[str, Any]) -> Manifest:
    """The Pipeline controls the claim from now on (and it is no spare any more)."""
    meta = _meta(pipeline)
    ref = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Pipeline", "name": meta["name"],
           "uid": meta["uid"], "controller": True}  # fmt: skip
    return {"metadata": {"ownerReferences": [ref], "labels": {LABEL_WARM: None}}}


RELEASE_PATCH: Manifest = {
    "metadata": {"annotations": {ANNOTATION_TAKEN: None, ANNOTATION_TAKEN_AT: None}}
}
"""A take whose Pipeline was not created (it existed already): the spare is free again."""


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=None)
    except ValueError:
        return None


@dataclass
class Upkeep:
    """What to do to a Repository's spares now."""

    create: int = 0
    delete: list[str] = field(default_factory=list)
    """Spares too many, or of a shape no longer used; takes that lost their Pipeline."""
    hand_over: list[tuple[str, str]] = field(default_factory=list)
    """(claim, pipeline): takes interrupted before the hand-over, their Pipeline made."""


def keep(
    claims: Iterable[Mapping[str, Any]],
    repo_uid: str,
    wanted: int,
    shape: Shape,
    *,
    now: datetime,
    pipeline_exists: Callable[[str], bool],
    unseen: int = 0,
) -> Upkeep:
    """Bring the Repository's spares to ``wanted`` of ``shape``: create the missing, delete
    the extra (the newest: the oldest are taken first), settle interrupted takes.

    ``unseen``: spares just created that ``claims`` does not show yet (they count)."""
    out = Upkeep()
    free: list[str] = []
    naive_now = now.replace(tzinfo=None)
    for claim in _of(claims, repo_uid):
        name = str(_meta(claim)["name"])
        taken_for = _annotation(claim, ANNOTATION_TAKEN)
        if taken_for is None:
            if _annotation(claim, ANNOTATION_SHAPE) == shape.key():
                free.append(name)
            else:
                out.delete.append(name)
            continue
        at = _parse(_annotation(claim, ANNOTATION_TAKEN_AT))
        if at is not None and naive_now - at < TAKEN_GRACE:
            continue  # being handed over
        if pipeline_exists(taken_for):
            out.hand_over.append((name, taken_for))
        else:
            out.delete.append(name)
    out.delete.extend(free[wanted:])
    out.create = max(0, wanted - len(free) - unseen)
    return out
