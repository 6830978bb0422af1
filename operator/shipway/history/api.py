"""The history read API's wire format, routes and access rules (pure), and its client reader.

``history.shipway.dev/v1alpha1`` is a read-only aggregated API: the operator serves it (see
``shipway.controller.historyapi``) behind an ``APIService``, and users reach it through the
API server with their own kubeconfig. Resources:

- ``runs`` (namespaced; ``list`` with ``project``, ``branch``, ``phase``, ``limit`` and
  ``continue``; newest first): a Run per Pipeline that ever ran, without spec and status;
- ``runs/NAME`` (``get``; ``?uid=`` picks one run of a reused name): the run with spec and
  status as the operator last wrote them;
- ``runs/NAME/log`` (``get``; ``?uid=``, ``?pod=``, ``?container=``): its archived logs.

Who may read what is decided by the API server's RBAC, asked per request by a
SubjectAccessReview for the user the API server vouches for: a page of runs needs ``list
pipelines`` (in the namespace, or cluster-wide for every namespace), a run ``get pipelines``,
and its logs ``get pods/log``: the right that reads the same logs while the pods live, so the
archive never shows anyone more than the live cluster would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from shipway.history.reader import PAGE_MAX
from shipway.history.records import RunRecord
from shipway.history.store import ArchivedLog, cursor

GROUP = "history.shipway.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PREFIX = f"/apis/{GROUP}/{VERSION}"
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Access:
    """The RBAC question a request asks (a SubjectAccessReview's resourceAttributes)."""

    verb: str
    resource: str
    namespace: str  # "" for every namespace
    group: str = "shipway.dev"
    subresource: str = ""
    name: str = ""

    def attributes(self) -> dict[str, str]:
        found = {
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
            "namespace": self.namespace,
            "subresource": self.subresource,
            "name": self.name,
        }
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class Route:
    """What a path asks for: ``discovery`` (no data, no review), ``list``, ``get``, ``log``."""

    kind: str
    namespace: str | None = None
    name: str = ""
    document: str = ""

    @property
    def access(self) -> Access | None:
        ns = self.namespace or ""
        if self.kind == "list":
            return Access("list", "pipelines", ns)
        if self.kind == "get":
            return Access("get", "pipelines", ns, name=self.name)
        if self.kind == "log":
            return Access("get", "pods", ns, group="", subresource="log")
        return None


def route(path: str) -> Route | None:
    """The route of a request path, None when it names nothing here (404)."""
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    if parts == ["apis"]:
        return Route("discovery", document="groups")
    if parts == ["apis", GROUP]:
        return Route("discovery", document="group")
    if parts[:3] != ["apis", GROUP, VERSION]:
        return None
    rest = parts[3:]
    if not rest:
        return Route("discovery", document="resources")
    if rest == ["runs"]:
        return Route("list")
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "runs":
        ns, tail = rest[1], rest[3:]
        if not tail:
            return Route("list", ns)
        if len(tail) == 1:
            return Route("get", ns, tail[0])
        if len(tail) == 2 and tail[1] == "log":
            return Route("log", ns, tail[0])
    return None


def discovery(document: str) -> dict[str, Any]:
    """The discovery documents the API server's aggregator reads."""
    version = {"groupVersion": API_VERSION, "version": VERSION}
    group = {"name": GROUP, "versions": [version], "preferredVersion": version}
    if document == "groups":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
    if document == "group":
        return {"kind": "APIGroup", "apiVersion": "v1", **group}
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": API_VERSION,
        "resources": [
            {"name": "runs", "singularName": "run", "namespaced": True, "kind": "Run",
             "verbs": ["get", "list"]},
            {"name": "runs/log", "singularName": "", "namespaced": True, "kind": "RunLog",
             "verbs": ["get"]},
        ],
    }  # fmt: skip


def status(code: int, message: str) -> dict[str, Any]:
    """A ``Status`` body, as kubectl prints refusals."""
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reasons.get(code, "InternalError"),
        "code": code,
    }


def limit_of(value: str | None) -> int:
    """A page's size from ``?limit=``: 1 to :data:`PAGE_MAX`; a bad value raises ValueError."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"limit must be a positive whole number, not {value!r}")
    return min(int(value), PAGE_MAX)


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None  # full precision: cursors compare it


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def run_object(record: RunRecord, *, whole: bool) -> dict[str, Any]:
    """A record as a ``Run``; ``whole``: with its spec and status."""
    found: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {
            "name": record.name,
            "namespace": record.namespace,
            "uid": record.uid,
            "creationTimestamp": _time(record.created_at),
        },
        "project": record.project,
        "branch": record.branch,
        "commit": record.commit,
        "trigger": record.trigger,
        "phase": record.phase,
        "reason": record.reason,
        "message": record.message,
        "startedAt": _time(record.started_at),
        "finishedAt": _time(record.finished_at),
        "steps": record.steps,
        "keep": record.keep,
    }
    if whole:
        found["spec"] = json.loads(record.spec_json or "{}")
        found["status"] = json.loads(record.status_json or "{}")
    return found


def record_of(obj: Mapping[str, Any]) -> RunRecord:
    """A ``Run`` back into a record (what the command line prints from)."""
    meta = obj.get("metadata") or {}
    spec, stat = obj.get("spec"), obj.get("status")
    return RunRecord(
        uid=str(meta.get("uid") or ""),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        project=str(obj.get("project") or ""),
        branch=str(obj.get("branch") or ""),
        commit=str(obj.get("commit") or ""),
        trigger=str(obj.get("trigger") or ""),
        phase=str(obj.get("phase") or ""),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or ""),
        created_at=_parse(meta.get("creationTimestamp")),
        started_at=_parse(obj.get("startedAt")),
        finished_at=_parse(obj.get("finishedAt")),
        steps=int(obj.get("steps") or 0),
        spec_json=json.dumps(spec, separators=(",", ":"), sort_keys=True) if spec else "",
        status_json=json.dumps(stat, separators=(",", ":")) if stat else "",
        keep=bool(obj.get("keep")),
    )


def run_list(records: list[RunRecord], limit: int) -> dict[str, Any]:
    """A page as a ``RunList``; ``metadata.continue`` is the next page's cursor when full."""
    meta: dict[str, Any] = {}
    if records and len(records) == limit:
        meta["continue"] = cursor(records[-1])
    return {
        "apiVersion": API_VERSION,
        "kind": "RunList",
        "metadata": meta,
        "items": [run_object(r, whole=False) for r in records],
    }


def log_object(record: RunRecord, logs: list[ArchivedLog]) -> dict[str, Any]:
    """A run's archived logs as a ``RunLog``."""
    return {
        "apiVersion": API_VERSION,
        "kind": "RunLog",
        "metadata": {"name": record.name, "namespace": record.namespace, "uid": record.uid},
        "items": [
            {
                "pod": item.pod,
                "podUID": item.pod_uid,
                "container": item.container,
                "size": item.size,
                "truncated": item.truncated,
                "text": item.text,
            }
            for item in logs
        ],
    }


Transport = Callable[[str, Mapping[str, str]], Any]
"""GET a path of the API server with these query parameters: the decoded JSON body, None
for 404 (the history API, or the run, is not there); any other failure raises."""


class ApiReader:
    """A :class:`shipway.history.reader.RunReader` through the history read API.

    ``get`` carries the caller's credentials (the command line's kubeconfig, the dashboard's
    user): the server answers with what that user may read and refuses the rest.
    """

    def __init__(self, get: Transport) -> None:
        self.get = get

    def run(self, namespace: str, name: str) -> RunRecord | None:
        found = self.get(f"{PREFIX}/namespaces/{namespace}/runs/{name}", {})
        return record_of(found) if found else None

    def page(
        self,
        namespace: str | None,
        *,
        project: str | None = None,
        branch: str | None = None,
        phase: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        query = {"project": project, "branch": branch, "phase": phase, "continue": before}
        params = {k: v for k, v in query.items() if v}
        params["limit"] = str(max(1, min(limit, PAGE_MAX)))
        path = f"{PREFIX}/namespaces/{namespace}/runs" if namespace else f"{PREFIX}/runs"
        found = self.get(path, params)
        return [record_of(item) for item in (found or {}).get("items") or ()]

    def logs(self, namespace: str, name: str, uid: str) -> list[ArchivedLog]:
        found = self.get(f"{PREFIX}/namespaces/{namespace}/runs/{name}/log", {"uid": uid})
        return [
            ArchivedLog(
                run_uid=uid,
                pod=str(item.get("pod") or ""),
                pod_uid=str(item.get("podUID") or ""),
                container=str(item.get("container") or ""),
                text=str(item.get("text") or ""),
                size=int(item.get("size") or 0),
                truncated=bool(item.get("truncated")),
            )
            for item in (found or {}).get("items") or ()
        ]

    def close(self) -> None:
        return None
