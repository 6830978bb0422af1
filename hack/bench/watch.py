"""Watch threads that timestamp what the benchmark sees, with a monotonic clock.

Every line of a watch stream is stamped with ``time.monotonic()`` the moment it is read, before
it is parsed; objects' own timestamps (whole seconds) are never used for figures. The stream
resumes from the last resourceVersion after a disconnect; after "410 Gone" it lists again,
and objects seen before are recognised by UID, so a relist never counts as a new creation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from shipway import GROUP, PLURAL, VERSION
from shipway.engine.naming import ANNOTATION_DEFAULT_CONTAINER
from shipway.engine.objects import Manifest

log = logging.getLogger("bench")

LABEL_PIPELINE = "shipway.dev/pipeline"
LABEL_STEP = "shipway.dev/step"


@dataclass
class PodRecord:
    name: str
    uids: list[str] = field(default_factory=list)
    """Every UID seen under this name: more than one means the pod was created again."""
    added_at: float | None = None
    scheduled_at: float | None = None
    running_at: float | None = None
    terminated_at: float | None = None
    phase: str = "Pending"
    pipeline: str | None = None
    step: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class PipelineRecord:
    name: str
    phase: str | None = None
    progress: str | None = None
    modified: list[float] = field(default_factory=list)
    """When each change of phase or progress arrived."""
    writes: int = 0
    """MODIFIED events: every one is a status write that changed something."""
    finished_at: float | None = None


def _terminated(obj: Manifest) -> bool:
    status = obj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    main = (obj.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_DEFAULT_CONTAINER)
    for item in status.get("containerStatuses") or ():
        if main and item.get("name") != main:
            continue
        if (item.get("state") or {}).get("terminated"):
            return True
    return False


class _Watch(threading.Thread):
    """List then watch one collection; ``handle`` gets (type, object, receipt time)."""

    def __init__(self, api: client.ApiClient, namespace: str, label_selector: str | None) -> None:
        super().__init__(daemon=True, name=f"watch-{namespace}")
        self.api = api
        self.namespace = namespace
        self.label_selector = label_selector
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.events = 0
        self.errors: list[str] = []
        self.failing = 0
        """Failed attempts in a row: the cluster is gone when this keeps growing."""

    def _list(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def handle(self, kind: str, obj: Manifest, at: float) -> None:
        raise NotImplementedError

    def run(self) -> None:
        resource_version = ""
        while not self.stopping.is_set():
            try:
                if not resource_version:
                    resource_version = self._relist()
                    self.ready.set()
                resource_version = self._stream(resource_version)
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = ""
                    continue
                self.failing += 1
                self.errors.append(f"{exc.status} {exc.reason}")
                time.sleep(0.5)
            except Exception as exc:  # the stream broke: resume from where it was
                if self.stopping.is_set():
                    return
                self.failing += 1
                self.errors.append(repr(exc)[:200])
                time.sleep(0.5)

    def _relist(self) -> str:
        response = self._list(label_selector=self.label_selector, _preload_content=False)
        at = time.monotonic()
        body = json.loads(response.data)
        with self.changed:
            for item in body.get("items") or ():
                self.handle("LISTED", item, at)
            self.changed.notify_all()
        return str(body["metadata"]["resourceVersion"])

    def _stream(self, resource_version: str) -> str:
        response = self._list(
            label_selector=self.label_selector,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=600,
            _preload_content=False,
            _request_timeout=(10, 660),
        )
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                at = time.monotonic()
                if self.stopping.is_set():
                    break
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return ""
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                resource_version = str(
                    obj.get("metadata", {}).get("resourceVersion") or resource_version
                )
                if kind == "BOOKMARK":
                    continue
                self.failing = 0
                with self.changed:
                    self.events += 1
                    self.handle(str(kind), obj, at)
                    self.changed.notify_all()
        finally:
            response.release_conn()
        return resource_version

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float, poll: float | None = None
    ) -> bool:
        """Block until ``predicate()`` (called under the lock) holds; False on timeout.

        Without ``poll`` the predicate runs after every event (for a driver that must react at
        once); with it, every ``poll`` seconds (for costly checks: the figures come from the
        recorded receipt times, not from when the check noticed).
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.failing >= 20:
                raise RuntimeError(f"the watch keeps failing: {self.errors[-1]}")
            with self.changed:
                if predicate():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if poll is None:
                    self.changed.wait(min(left, 1.0))
                    continue
            time.sleep(min(left, poll))

    def stop(self) -> None:
        self.stopping.set()


class PodWatch(_Watch):
    def __init__(
        self, api: client.ApiClient, namespace: str, label_selector: str | None = None
    ) -> None:
        super().__init__(api, namespace, label_selector)
        self.core: Any = client.CoreV1Api(api)
        self.pods: dict[str, PodRecord] = {}
        self.by_pipeline: dict[str, list[PodRecord]] = {}
        self.terminated = 0

    def _list(self, **kwargs: Any) -> Any:
        return self.core.list_namespaced_pod(self.namespace, **kwargs)

    def handle(self, kind: str, obj: Manifest, at: float) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        record = self.pods.get(name)
        if record is None:
            labels = meta.get("labels") or {}
            record = self.pods[name] = PodRecord(
                name,
                pipeline=labels.get(LABEL_PIPELINE),
                step=labels.get(LABEL_STEP),
                labels=dict(labels),
            )
            if record.pipeline:
                self.by_pipeline.setdefault(record.pipeline, []).append(record)
        uid = str(meta.get("uid"))
        if uid not in record.uids:
            record.uids.append(uid)
            if kind == "ADDED" and record.added_at is None:
                record.added_at = at
        if kind == "DELETED":
            return
        status = obj.get("status") or {}
        record.phase = status.get("phase") or record.phase
        if record.scheduled_at is None and (obj.get("spec") or {}).get("nodeName"):
            record.scheduled_at = at
        if record.running_at is None and record.phase in ("Running", "Succeeded", "Failed"):
            record.running_at = at
        if record.terminated_at is None and _terminated(obj):
            record.terminated_at = at
            self.terminated += 1


class PipelineWatch(_Watch):
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(api, namespace, None)
        self.custom: Any = client.CustomObjectsApi(api)
        self.pipelines: dict[str, PipelineRecord] = {}

    def _list(self, **kwargs: Any) -> Any:
        return self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, **kwargs
        )

    def handle(self, kind: str, obj: Manifest, at: float) -> None:
        name = str(obj.get("metadata", {}).get("name"))
        record = self.pipelines.setdefault(name, PipelineRecord(name))
        status = obj.get("status") or {}
        if kind == "MODIFIED":
            record.writes += 1
        if kind == "MODIFIED" and (
            status.get("phase") != record.phase or status.get("progress") != record.progress
        ):
            record.modified.append(at)
        record.phase, record.progress = status.get("phase"), status.get("progress")
        if record.finished_at is None and record.phase in ("Succeeded", "Failed", "Cancelled"):
            record.finished_at = at
