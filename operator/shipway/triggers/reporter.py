"""Commit statuses follow the Pipelines (the shell): one watch per namespace on the Pipelines
a Repository created; each change of (state, description) is sent to the forge and noted on
the Pipeline (annotation ``shipway.dev/reported``), so a restart or a second replica sends
nothing twice that it knows was sent. A forge that refuses is retried with backoff, shown on
the Repository (``status.statusError``) and never touches the Pipeline's run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from shipway import GROUP, PLURAL, VERSION
from shipway.triggers import decide, outcome, pipeline, queue
from shipway.triggers.decide import LABEL_REPOSITORY
from shipway.triggers.kube import REPOSITORIES, TriggersApi
from shipway.triggers.worker import Worker, link

log = logging.getLogger("shipway.triggers")


def _fingerprint(state: str, description: str) -> str:
    return hashlib.sha256(f"{state}\0{description}".encode()).hexdigest()[:16]


def _repository_name(obj: Mapping[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Repository":
            return str(ref["name"])
    return None


class Reporter:
    def __init__(self, api: TriggersApi, worker: Worker, namespaces: Iterable[str]) -> None:
        self.api = api
        self.worker = worker
        self.namespaces = list(namespaces)
        self.stopping = threading.Event()

    def start(self) -> None:
        for namespace in self.namespaces:
            threading.Thread(
                target=self._watch, args=(namespace,), daemon=True, name=f"report-{namespace}"
            ).start()

    def _watch(self, namespace: str) -> None:
        while not self.stopping.is_set():
            try:
                listed = self.api.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, label_selector=LABEL_REPOSITORY
                )
                for item in listed.get("items") or []:
                    self.observe(item)
                self.resync(namespace)
                version = (listed.get("metadata") or {}).get("resourceVersion")
                for event in self.api.watch_pipelines(namespace, LABEL_REPOSITORY, version):
                    if self.stopping.is_set():
                        return
                    obj = event.get("object")
                    if not isinstance(obj, Mapping):
                        continue
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self.observe(obj)
                    elif event.get("type") == "DELETED":
                        self._release(obj)
            except Exception as exc:
                log.info("pipeline watch of %s ended: %s", namespace, exc)
                time.sleep(1)

    def observe(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        annotations = meta.get("annotations") or {}
        commit = annotations.get(pipeline.ANNOTATION_COMMIT)
        repo_name = _repository_name(obj)
        if not commit or repo_name is None:
            return
        status = obj.get("status") or {}
        state, description = outcome.commit_state(status)
        superseded = annotations.get(pipeline.ANNOTATION_SUPERSEDED_BY)
        if superseded and status.get("phase") == "Cancelled":
            description = f"Superseded by {superseded}"
        if annotations.get(decide.ANNOTATION_FORK) == "true":
            description = f"{description} (fork: no secrets)"
        mark = _fingerprint(state, description)
        if status.get("phase") in outcome.FINAL:
            self._release(obj)
        if annotations.get(pipeline.ANNOTATION_REPORTED) == mark:
            return
        repo = self.api.repository(meta["namespace"], repo_name)
        if repo is None:
            return
        target = link(self.worker.settings, meta["namespace"], meta["name"])
        error = self.worker.tell(repo, commit, state, description=description, target=target)
        patch = {"metadata": {"annotations": {pipeline.ANNOTATION_REPORTED: mark}}}
        try:
            self.api.patch_pipeline(meta["namespace"], meta["name"], patch)
        except Exception as exc:
            log.info("pipeline %s: reported mark not written: %s", meta["name"], exc)
        told = f"{state}: {description}" if not error else f"not sent: {error}"
        self.worker.branch_status(repo, meta["name"], str(status.get("phase") or ""), told)
        if error or (repo.get("status") or {}).get("statusError"):
            self.worker.record(repo, "", "", "failed", message="", status_error=error)

    def _release(self, obj: Mapping[str, Any]) -> None:
        """A run ended (or is gone): the push of its branch that waits longest may start."""
        meta = obj["metadata"]
        branch = (meta.get("annotations") or {}).get(pipeline.ANNOTATION_BRANCH)
        repo_name = _repository_name(obj)
        if not branch or repo_name is None:
            return
        try:
            self.worker.drain(meta["namespace"], repo_name, branch)
        except Exception as exc:
            log.warning("queue of %s/%s not drained: %s", repo_name, branch, exc)

    def resync(self, namespace: str) -> None:
        """Every waiting push of the namespace is looked at again (on start and every
        re-list of the watch): whatever was missed while no replica ran is caught up."""
        try:
            listed = self.api.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, REPOSITORIES
            )
        except Exception as exc:
            log.info("repositories of %s not listed: %s", namespace, exc)
            return
        for repo in listed.get("items") or []:
            for branch in queue.branches((repo.get("status") or {}).get("queued") or []):
                try:
                    self.worker.drain(namespace, repo["metadata"]["name"], branch)
                except Exception as exc:
                    log.warning(
                        "queue of %s/%s not drained: %s", repo["metadata"]["name"], branch, exc
                    )
