"""The workspace claims the operator can see, and whether a pipeline's claim is still usable
(pure, no I/O).

Filled by :mod:`shipway.controller.claimwatch` from one list and watch of claims per
namespace (or one for the cluster). A pipeline's pods only reference its claim, so without
watching the claim a deleted one went unnoticed until the next pod waited for it as
``Unschedulable`` for ten minutes (and a restarted operator would even create it again,
empty). Here a claim that is gone, being deleted or has lost its volume fails the pipeline
at once, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shipway.engine.naming import ANNOTATION_PIPELINE_UID
from shipway.engine.objects import Key
from shipway.engine.observe import controller_name, controller_uid
from shipway.engine.reasons import PipelineReason
from shipway.models import PipelineStatus


@dataclass(frozen=True, slots=True)
class ClaimView:
    """The few facts of a claim that decide whether a pipeline may go on using it."""

    name: str
    uid: str
    deleting: bool
    """It has a deletionTimestamp: it stays while pods use it (the pvc-protection
    finalizer), but no new pod may mount it."""
    phase: str | None
    owner_uid: str | None
    """The controlling Pipeline's UID, or the ``shipway.dev/pipeline-uid`` of a kept claim."""
    owner: str
    """Who controls it, in words, for a conflict's message."""
    pipeline: str | None = None
    """The name of the Pipeline that controls it (the one to wake when it changes)."""


def claim_view(body: Mapping[str, Any]) -> ClaimView:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    # As the create's check (creates.owns_claim): the controlling Pipeline, else a kept
    # claim's annotation.
    owner_uid = controller_uid(meta) or (meta.get("annotations") or {}).get(ANNOTATION_PIPELINE_UID)
    return ClaimView(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        deleting=bool(meta.get("deletionTimestamp")),
        phase=status.get("phase"),
        owner_uid=owner_uid,
        owner=_owner(meta),
        pipeline=controller_name(meta),
    )


def _owner(meta: Mapping[str, Any]) -> str:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return f"it belongs to {ref.get('kind', '?')} {ref.get('name', '?')!r}"
    return "it belongs to no Pipeline"


@dataclass(frozen=True)
class ClaimProblem:
    """Why the pipeline cannot go on with its workspace: it fails with this."""

    reason: str
    message: str


def workspace_in_use(status: PipelineStatus, has_pods: bool) -> bool:
    """The pipeline has had its claim: a pod of it exists or was recorded (a pod is only
    ever created once its claim exists). Before that, a missing claim is made, not lost."""
    return (
        has_pods
        or any(s.pod for s in status.steps)
        or any(a.pod for s in status.steps for a in s.attempts)
        or any(b.pod for b in status.builds)
        or (status.source is not None and status.source.pod is not None)
    )


def claim_problem(view: ClaimView | None, name: str, uid: str, reused: bool) -> ClaimProblem | None:
    """What is wrong with the claim ``name`` of the Pipeline ``uid`` that has used it, or None.

    Gone, being deleted (its pods may still run, but no new pod can mount it and it goes once
    they stop) or its volume lost: ``ClaimLost``. A claim of that name that is not the
    pipeline's own (deleted and made again by someone else) is a ``ClaimNameConflict``, as
    at creation; a claim named by ``spec.workspace.claimName`` (``reused``) is the user's,
    whoever owns it.
    """
    if view is None:
        return ClaimProblem(
            PipelineReason.CLAIM_LOST,
            f"the workspace claim {name!r} was deleted while the pipeline ran",
        )
    if view.deleting:
        return ClaimProblem(
            PipelineReason.CLAIM_LOST,
            f"the workspace claim {name!r} is being deleted (it stays only until the "
            "pipeline's pods stop; no new step can mount it)",
        )
    if view.phase == "Lost":
        return ClaimProblem(
            PipelineReason.CLAIM_LOST,
            f"the workspace claim {name!r} lost its volume (phase Lost)",
        )
    if not reused and view.owner_uid != uid:
        return ClaimProblem(
            PipelineReason.CLAIM_NAME_CONFLICT,
            f"the PersistentVolumeClaim named {name!r} was replaced and {view.owner}, not "
            "to this pipeline",
        )
    return None


class ClaimStore:
    """Claims by namespace and name, and the pipelines to wake when one changes.

    Not thread-safe: the event loop's thread alone changes it (as :class:`PodStore`).
    """

    def __init__(self) -> None:
        self._claims: dict[tuple[str, str], ClaimView] = {}
        self._users: dict[tuple[str, str], set[Key]] = {}
        self._used: dict[Key, tuple[str, str]] = {}

    def get(self, namespace: str, name: str) -> ClaimView | None:
        return self._claims.get((namespace, name))

    def __len__(self) -> int:
        return len(self._claims)

    def use(self, key: Key, name: str) -> None:
        """The pipeline ``key`` runs on the claim ``name`` of its namespace: wake it when the
        claim changes."""
        where = (key[0], name)
        if self._used.get(key) == where:
            return
        self.release(key)
        self._used[key] = where
        self._users.setdefault(where, set()).add(key)

    def release(self, key: Key) -> None:
        where = self._used.pop(key, None)
        if where is not None:
            users = self._users.get(where, set())
            users.discard(key)
            if not users:
                self._users.pop(where, None)

    def _woken(self, namespace: str, name: str, view: ClaimView | None) -> set[Key]:
        keys = set(self._users.get((namespace, name), ()))
        if view is not None and view.pipeline:
            keys.add((namespace, view.pipeline))
        return keys

    def put(self, namespace: str, name: str, entry: ClaimView | None) -> set[Key]:
        """A claim added, changed or (``entry`` None) gone; the pipelines to wake."""
        where = (namespace, name)
        old = self._claims.get(where)
        if entry is None:
            if old is None:
                return set()
            del self._claims[where]
            return self._woken(namespace, name, old)
        if old == entry:
            return set()
        self._claims[where] = entry
        return self._woken(namespace, name, entry) | (
            self._woken(namespace, name, old) if old is not None else set()
        )

    def replace(
        self, namespace: str | None, entries: Iterable[tuple[str, str, ClaimView]]
    ) -> set[Key]:
        """A fresh list of one namespace (None: every namespace); the pipelines to wake."""
        fresh = list(entries)
        seen = {(ns, name) for ns, name, _ in fresh}
        woken: set[Key] = set()
        for where in [w for w in self._claims if namespace is None or w[0] == namespace]:
            if where not in seen:
                woken |= self.put(where[0], where[1], None)
        for ns, name, entry in fresh:
            woken |= self.put(ns, name, entry)
        return woken
