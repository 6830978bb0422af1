"""Keeps each Repository's warm workspaces, and takes one for a push (the shell).

:mod:`~shipway.triggers.warm` decides; this makes the calls. One thread tops the spares up
after every take (woken at once) and every :data:`PERIOD` seconds; a take is two writes on
the delivery's path, one before the Pipeline's create and one after, both tens of
milliseconds, against the seconds a claim takes to be provisioned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException

from shipway.models.repository import RepositorySpec
from shipway.triggers import warm
from shipway.triggers.kube import Manifest, TriggersApi

log = logging.getLogger("shipway.triggers")
PERIOD = 10.0
UNSEEN_GRACE = 30.0
"""How long a spare just created counts as there before the watch shows it."""


class Spares:
    def __init__(
        self,
        api: TriggersApi,
        namespaces: Iterable[str],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.namespaces = list(namespaces)
        self.clock = clock
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self._made: dict[str, dict[str, float]] = {}
        """Spares created but not yet seen by the watch, by Repository UID (name: when),
        counted as there: a round right after a create must not create another."""

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="warm-workspaces").start()

    def poke(self, _: object = None) -> None:
        self.wake.set()

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(PERIOD)
            self.wake.clear()
            for namespace in self.namespaces:
                informer = self.api.repositories.get(namespace)
                for repo in list(informer.items.values()) if informer is not None else []:
                    try:
                        self.keep(repo)
                    except Exception as exc:  # the next round tries again
                        log.warning("%s/%s: warm workspaces: %s", namespace,
                                    repo["metadata"]["name"], exc)  # fmt: skip

    # -- upkeep ---------------------------------------------------------------------------
    def keep(self, repo: Manifest) -> warm.Upkeep:
        """Top ``repo``'s spares up to its ``spec.warmWorkspaces`` (none once it is deleted)."""
        meta = repo["metadata"]
        namespace = meta["namespace"]
        try:
            wanted = RepositorySpec.model_validate(repo.get("spec") or {}).warmWorkspaces
        except ValueError:
            wanted = 0
        if meta.get("deletionTimestamp"):
            wanted = 0
        claims = self.api.warm_claims_of(namespace)
        versions = {c["metadata"]["name"]: c["metadata"].get("resourceVersion") for c in claims}
        now = time.monotonic()
        made = {
            name: at
            for name, at in self._made.get(meta["uid"], {}).items()
            if name not in versions and now - at < UNSEEN_GRACE
        }
        todo = warm.keep(
            claims, meta["uid"], wanted, warm.Shape(), now=self.clock(), unseen=len(made),
            pipeline_exists=lambda name: self.api.pipeline(namespace, name) is not None,
        )  # fmt: skip
        for name, pipeline_name in todo.hand_over:
            pipeline = self.api.pipeline(namespace, pipeline_name)
            if pipeline is not None:
                self.api.patch_claim(namespace, name, warm.handover_patch(pipeline))
        for name in todo.delete:
            self.api.delete_claim(namespace, name, versions.get(name))
        for _ in range(todo.create):
            made[self.api.create_claim(namespace, warm.spare_manifest(repo, warm.Shape()))] = now
        self._made[meta["uid"]] = made
        return todo

    # -- a push ---------------------------------------------------------------------------
    def take(self, repo: Manifest, spec: RepositorySpec, pipeline: Manifest) -> str | None:
        """Name a spare in ``pipeline``'s ``spec.workspace.claimName`` (the manifest is
        changed); the spare's name, or None when there is none to take."""
        shape = warm.workspace_shape(pipeline)
        if shape is None or spec.warmWorkspaces == 0:
            return None
        meta = repo["metadata"]
        namespace, name = meta["namespace"], pipeline["metadata"]["name"]
        claims = {c["metadata"]["name"]: c for c in self.api.warm_claims_of(namespace)}
        for spare in warm.spares(claims.values(), meta["uid"], shape):
            try:
                self.api.patch_claim(
                    namespace, spare, warm.take_patch(claims[spare], name, self.clock())
                )
            except ApiException as exc:
                if exc.status in (404, 409):  # taken by another, or gone: the next one
                    continue
                log.warning("%s/%s: a warm workspace not taken: %s", namespace, name, exc)
                return None
            workspace = pipeline["spec"].setdefault("workspace", {})
            workspace["claimName"] = spare
            self.poke()
            return spare
        return None

    def hand_over(self, namespace: str, spare: str, pipeline: Manifest) -> None:
        """The Pipeline was created on ``spare``: it controls the claim from now on."""
        try:
            self.api.patch_claim(namespace, spare, warm.handover_patch(pipeline))
        except ApiException as exc:  # the upkeep finishes it within a minute
            log.warning("%s: warm workspace %s not handed over yet: %s", namespace, spare, exc)

    def release(self, namespace: str, spare: str) -> None:
        """The Pipeline was not created (it existed): the spare is free again."""
        try:
            self.api.patch_claim(namespace, spare, warm.RELEASE_PATCH)
        except ApiException as exc:  # the upkeep deletes it within a minute
            log.warning("%s: warm workspace %s not released: %s", namespace, spare, exc)
