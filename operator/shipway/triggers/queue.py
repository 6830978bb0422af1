"""The queue policy's record (pure): a push that waits is kept on the Repository's status,
not in a receiver's memory, so two replicas and a restart lose nothing (docs/triggers.md).

First in, first out per branch: the oldest waiting push of a branch starts when no pipeline
of that branch is running; the list is bounded (:data:`MAX_BRANCHES` entries in all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shipway.models.repository import MAX_BRANCHES
from shipway.triggers.decide import Run
from shipway.triggers.events import Event

FULL = f"the queue is full ({MAX_BRANCHES} pushes wait already)"


def entry(event: Event, run: Run) -> dict[str, str]:
    """The status entry of a waiting push: the event, enough to decide and convert again."""
    fields = {
        "branch": run.branch_key,
        "pipeline": run.name,
        "kind": event.kind,
        "ref": event.ref,
        "commit": event.commit,
        "delivery": event.delivery,
        "message": event.message[:1024],
        "committerName": event.committer_name,
        "committerEmail": event.committer_email,
        "committerUsername": event.committer_username,
        "prNumber": event.pr_number,
        "baseRef": event.base_ref,
        "headRepository": event.head_repository,
        "repository": event.repository,
    }
    return {k: v if k == "message" else v[:253] for k, v in fields.items()}


def event(queued: Mapping[str, Any]) -> Event:
    """The event of a status entry (what :func:`entry` wrote)."""

    def get(key: str) -> str:
        return str(queued.get(key) or "")

    kind = get("kind")
    return Event(
        kind="tag" if kind == "tag" else "pull_request" if kind == "pull_request" else "push",
        repository=get("repository"),
        ref=get("ref"),
        commit=get("commit"),
        delivery=get("delivery"),
        message=get("message"),
        committer_name=get("committerName"),
        committer_email=get("committerEmail"),
        committer_username=get("committerUsername"),
        pr_number=get("prNumber"),
        base_ref=get("baseRef"),
        head_repository=get("headRepository"),
    )


def add(queued: Iterable[Mapping[str, Any]], new: dict[str, str]) -> list[dict[str, Any]] | None:
    """The list with ``new`` last (once: a redelivery is the same push), None when full."""
    kept = [dict(q) for q in queued]
    if any(q.get("pipeline") == new["pipeline"] for q in kept):
        return kept
    if len(kept) >= MAX_BRANCHES:
        return None
    return [*kept, new]


def first(queued: Iterable[Mapping[str, Any]], branch: str) -> Mapping[str, Any] | None:
    """The push of ``branch`` that waited longest."""
    return next((q for q in queued if q.get("branch") == branch), None)


def remove(queued: Iterable[Mapping[str, Any]], pipeline: str) -> list[dict[str, Any]]:
    return [dict(q) for q in queued if q.get("pipeline") != pipeline]


def branches(queued: Iterable[Mapping[str, Any]]) -> list[str]:
    """Branches with a waiting push, each once, in order."""
    return list(dict.fromkeys(str(q.get("branch")) for q in queued if q.get("branch")))
