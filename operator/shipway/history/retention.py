"""Which finished Pipelines go, and when records leave the store (pure).

Per project and branch (of one namespace) the newest ``succeeded`` Succeeded runs and the
newest ``failed`` Failed or Cancelled runs stay, and no finished run older than ``max_age``;
the rest are deleted, their pods and claim with them through owner references. A run still
going (or waiting for an approval), one carrying the keep annotation, and one whose logs are
not archived yet are never pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

FAILED_PHASES = frozenset({"Failed", "Cancelled", "Rejected"})
"""Kept by the failed limit: a rejected run (a manual gate said no) counts as one that failed."""
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


CONFIG_MAP = "shipway-retention"
"""A ConfigMap of this name in a namespace overrides the operator's retention there."""


def namespace_policy(
    data: Mapping[str, str], default: Policy, parse_duration: Callable[[str], float]
) -> Policy:
    """The ``shipway-retention`` ConfigMap's keys over the operator's policy: ``enabled``,
    ``succeeded``, ``failed`` (counts) and ``maxAge`` (a duration, ``0``: any age). A bad
    value raises ValueError naming the key."""
    policy = default
    for key, raw in data.items():
        value = raw.strip()
        if key in ("succeeded", "failed"):
            if not value.isdigit():
                raise ValueError(f"{CONFIG_MAP}: {key} must be a whole number, not {raw!r}")
            if key == "succeeded":
                policy = replace(policy, succeeded=int(value))
            else:
                policy = replace(policy, failed=int(value))
        elif key == "maxAge":
            try:
                age = None if value == "0" else timedelta(seconds=parse_duration(value))
            except ValueError as exc:
                raise ValueError(f"{CONFIG_MAP}: maxAge: {exc}") from None
            policy = replace(policy, max_age=age)
        elif key == "enabled":
            if value.lower() not in ("true", "false"):
                raise ValueError(f"{CONFIG_MAP}: enabled must be true or false, not {raw!r}")
            policy = replace(policy, enabled=value.lower() == "true")
        else:
            raise ValueError(
                f"{CONFIG_MAP}: unknown key {key!r} (enabled, succeeded, failed, maxAge)"
            )
    return policy


def decide(
    runs: Iterable[Run],
    policy: Policy,
    now: datetime,
    per_namespace: Mapping[str, Policy] | None = None,
) -> Decision:
    """Which runs to delete now, and which would go but wait for their archive."""
    default = policy
    if not default.enabled and not per_namespace:
        return Decision((), ())
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        if run.phase in FINISHED_PHASES and not run.keep:
            groups.setdefault((run.namespace, run.project, run.branch), []).append(run)
    prune: list[Run] = []
    held: list[Run] = []
    for (namespace, _, _), group in groups.items():
        policy = (per_namespace or {}).get(namespace, default)
        if not policy.enabled:
            continue
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
