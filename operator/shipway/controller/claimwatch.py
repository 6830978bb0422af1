"""Workspace claims from one list and watch per namespace (or one for the cluster), into a
:class:`~shipway.engine.claims.ClaimStore`: the way a deleted claim is noticed while the
pods using it still run (the pvc-protection finalizer keeps it, Terminating, until they stop).

Every claim of the namespace is watched, not only the operator's own: a pipeline may run on
a claim named by ``spec.workspace.claimName``. Claims are few (one per pipeline), and each is
kept as a small summary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from shipway.controller.podwatch import PodWatch
from shipway.engine.claims import ClaimStore, ClaimView, claim_view
from shipway.engine.objects import Key


class ClaimWatch(PodWatch):
    """List and watch the claims of one namespace (None: every namespace) into a store."""

    kind = "claim"

    def _entry(self, obj: Any) -> ClaimView:
        return claim_view(obj)

    def _request(self, **kwargs: Any) -> Any:
        common = {"_preload_content": False, **kwargs}
        if self.namespace is None:
            return self.core.list_persistent_volume_claim_for_all_namespaces(**common)
        return self.core.list_namespaced_persistent_volume_claim(self.namespace, **common)


class ClaimWatches:
    """One ClaimWatch per namespace a pipeline with a workspace lives in, started on first
    use; or one for all."""

    def __init__(self, on_change: Callable[[Key], None], clusterwide: bool) -> None:
        self.store = ClaimStore()
        self.on_change = on_change
        self.clusterwide = clusterwide
        self.watches: dict[str | None, ClaimWatch] = {}

    async def ready(self, namespace: str) -> None:
        """Wait until the claims of ``namespace`` have been listed once."""
        scope = None if self.clusterwide else namespace
        watch = self.watches.get(scope)
        if watch is None:
            watch = ClaimWatch(scope, self.store, asyncio.get_running_loop(), self.on_change)
            self.watches[scope] = watch
            watch.start()
        if not watch.listed.done():
            await asyncio.shield(watch.listed)

    def stop(self) -> None:
        for watch in self.watches.values():
            watch.stop()
