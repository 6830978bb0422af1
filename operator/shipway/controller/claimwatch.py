"""Workspace claims from one list and watch per namespace (or one for the cluster), into a
:class:`~shipway.engine.plan.claims.ClaimStore`: the way a deleted claim is noticed while the
pods using it still run (the pvc-protection finalizer keeps it, Terminating, until they stop).

Every claim of the namespace is watched, not only the operator's own: a pipeline may run on
a claim named by ``spec.workspace.claimName``. Claims are few (one per pipeline), and each is
kept as a small summary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import CompiledPipeline
from shipway.controller.creates import CreatingApi
from shipway.controller.podwatch import PodWatch, Watches, read_untrusted
from shipway.controller.snapshot import PipelineSnapshot
from shipway.engine.objects import Key
from shipway.engine.plan.claims import (
    ClaimProblem,
    ClaimStore,
    ClaimView,
    claim_problem,
    claim_view,
    workspace_in_use,
)
from shipway.engine.pods.frame import claim_name
from shipway.models import PipelineStatus


class ClaimWatch(PodWatch):
    """List and watch the claims of one namespace (None: every namespace) into a store."""

    kind = "claim"

    resource = "persistentvolumeclaims"
    selector = None

    def _entry(self, obj: Any) -> ClaimView | None:
        view: ClaimView | None = read_untrusted("PersistentVolumeClaim", claim_view, obj)
        return view


class ClaimWatches(Watches[ClaimStore]):
    """One ClaimWatch per namespace a pipeline with a workspace lives in, started on first
    use; or one for all."""

    def __init__(self, on_change: Callable[[Key], None], clusterwide: bool) -> None:
        super().__init__(ClaimStore(), ClaimWatch, on_change, clusterwide)


async def workspace_problem(
    kube: CreatingApi,
    claims: ClaimStore | None,
    snap: PipelineSnapshot,
    compiled: CompiledPipeline | InvalidSpecError,
    *,
    status: PipelineStatus,
    has_pods: bool,
) -> ClaimProblem | None:
    """What is wrong with the workspace claim of a pipeline that has used it: deleted,
    being deleted, its volume lost, or replaced by someone else's
    (:func:`~shipway.engine.plan.claims.claim_problem`); None when it may go on.

    The watched claims answer; a claim they do not show is read from the API server before
    it is called lost (the watch may lag behind the operator's own create).
    """
    if not isinstance(compiled, CompiledPipeline) or not compiled.uses_workspace:
        return None
    if compiled.spec.cancel or not workspace_in_use(status, has_pods):
        return None
    name = claim_name(snap.ref, compiled)
    view = None
    if claims is not None:
        claims.use((snap.namespace, snap.name), name)
        view = claims.get(snap.namespace, name)
    if view is None:
        body = await kube.get_claim(snap.namespace, name)
        view = claim_view(body) if body is not None else None
    return claim_problem(view, name, snap.uid, bool(compiled.spec.workspace.claimName))
