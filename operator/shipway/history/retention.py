"""Which finished Pipelines go, and when records leave the store (pure).

Per project and branch (of one namespace) the newest ``succeeded`` Succeeded runs and the
newest ``failed`` Failed or Cancelled runs stay, and no finished run older than ``max_age``;
the rest are deleted, their pods and claim with them through owner references. A run still
going (or waiting for an approval), one carrying the keep annotation, and one whose logs are
not archived yet are never pruned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

FAILED_PHASES = frozenset({"Failed", "Cancelled"})
FINISHED_PHASES = FAILED_PHASES | {"Succeeded"}
KEEP_SUCCEEDED = 10
KEEP_FAILED = 25
MAX_AGE = timedelta(days=7)
RECORD_AGE = timedelta(days=90)
STORE_BYTES = 10 * 1024**3


@dataclass(frozen=True, slots=True)
class Policy:
    succeeded: int = KEEP_SUCCEEDED
    """Succeeded runs kept per project and branch (0: none)."""
    failed: int = KEEP_FAILED
    """Failed or cancelled runs kept per project and branch."""
    max_age: timedelta | None = MAX_AGE
    """No finished Pipeline object older than this (None: any age)."""
    record_age: timedelta | None = RECORD_AGE
    """Records and logs leave the store after this."""
    store_bytes: int | None = STORE_BYTES
    """The store's logs beyond this many bytes go, oldest runs first."""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Run:
    """What retention needs to know of one Pipeline object."""

    namespace: str
    name: str
    project: str
    branch: str
    phase: str
    finished_at: datetime | None
    created_at: datetime | None
    keep: bool = False
    archived: bool = True
    """Every log of its finished pods is in the store."""


@dataclass(frozen=True, slots=True)
class Decision:
    prune: tuple[Run, ...]
    held: tuple[Run, ...]
    """Runs due to go whose logs are not archived yet: they wait."""


def decide(runs: Iterable[Run], policy: Policy, now: datetime) -> Decision:
    """Which runs to delete now, and which would go but wait for their archive."""
    if not policy.enabled:
        return Decision((), ())
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        if run.phase in FINISHED_PHASES and not run.keep:
            groups.setdefault((run.namespace, run.project, run.branch), []).append(run)
    prune: list[Run] = []
    held: list[Run] = []
    for group in groups.values():
        group.sort(key=_newest_first)
        succeeded = [r for r in group if r.phase == "Succeeded"]
        failed = [r for r in group if r.phase in FAILED_PHASES]
        due = succeeded[policy.succeeded :] + failed[policy.failed :]
        if policy.max_age is not None:
            cutoff = now - policy.max_age
            due += [r for r in group if (r.finished_at or r.created_at or now) < cutoff]
        for run in dict.fromkeys(due):
            (prune if run.archived else held).append(run)
    return Decision(tuple(prune), tuple(held))


def _newest_first(run: Run) -> tuple[float, str]:
    moment = run.finished_at or run.created_at
    return (-(moment.timestamp() if moment else 0.0), run.name)


def record_cutoff(policy: Policy, now: datetime) -> datetime | None:
    """Records of runs created before this leave the store (None: kept forever)."""
    return now - policy.record_age if policy.record_age is not None else None
