"""A Pipeline's status as the commit status the forge shows (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipway.triggers.forge import State

FINAL = {"Succeeded", "Failed", "Cancelled", "Rejected"}


def commit_state(status: Mapping[str, Any] | None) -> tuple[State, str]:
    """(state, description) of a Pipeline's status as the API server returns it (camelCase).

    A failure names the first failed step, as Codeship's status did; a cancellation says why
    (``Superseded`` by a newer run, a timeout, a user).
    """
    status = status or {}
    phase = str(status.get("phase") or "Pending")
    message = str(status.get("message") or "")
    if phase == "Succeeded":
        return "success", f"Succeeded ({status.get('progress') or 'all'} steps)"
    if phase == "Failed":
        failed = [
            s
            for s in status.get("steps") or []
            if isinstance(s, Mapping) and s.get("phase") == "Failed"
        ]
        if failed:
            step = failed[0]
            why = step.get("reason") or "failed"
            return "failure", f"step {step.get('name')!r} failed: {why}"
        return "failure", message or "Failed"
    if phase in ("Cancelled", "Rejected"):
        return "error", f"{phase}: {message}" if message else phase
    if phase == "AwaitingApproval":
        return "pending", "awaiting approval"
    return "pending", "running" if phase == "Running" else "pending"
