"""Which running pipelines of a branch a newer run supersedes (pure).

Never one in a push step (an image half-published is worse than a late one) or awaiting a
manual approval (a person is deciding about it); never a newer one (deliveries may arrive out
of order), never a finished one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shipway.triggers.outcome import FINAL


def pushing(status: Mapping[str, Any]) -> bool:
    """A push step is running: its status names the reference it pushes to from its start."""
    return any(
        isinstance(step, Mapping) and step.get("phase") == "Running" and step.get("image")
        for step in status.get("steps") or []
    )


def to_supersede(newer: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the pipelines ``newer`` cancels, oldest first."""
    mine = newer["metadata"]
    born = str(mine.get("creationTimestamp") or "")
    chosen: list[tuple[str, str]] = []
    for other in others:
        meta = other.get("metadata") or {}
        status = other.get("status") or {}
        spec = other.get("spec") or {}
        if meta.get("name") == mine["name"] or spec.get("cancel"):
            continue
        created = str(meta.get("creationTimestamp") or "")
        if born and created and created > born:
            continue
        phase = status.get("phase") or "Pending"
        if phase in FINAL or phase == "AwaitingApproval" or pushing(status):
            continue
        chosen.append((created, str(meta["name"])))
    return [name for _, name in sorted(chosen)]


def running(others: Iterable[Mapping[str, Any]], name: str) -> list[str]:
    """Pipelines of the branch not finished yet, but ``name`` (what a queued run waits for)."""
    return [
        str(o["metadata"]["name"])
        for o in others
        if o["metadata"]["name"] != name and (o.get("status") or {}).get("phase") not in FINAL
    ]
