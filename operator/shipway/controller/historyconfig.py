"""The history's settings (``SHIPWAY_HISTORY*``, ``SHIPWAY_RETAIN_*``), parsed once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from shipway.compiler.source import parse_quantity
from shipway.history import retention
from shipway.history.logs import DEFAULT_CAP
from shipway.history.retention import Policy
from shipway.history.store import store_url
from shipway.models.durations import parse_duration


@dataclass(frozen=True)
class HistorySettings:
    url: str | None = None
    """The store (``SHIPWAY_HISTORY``): a SQLAlchemy URL; None: no history, no retention."""
    log_cap: int = DEFAULT_CAP
    """``SHIPWAY_HISTORY_LOG_CAP``: bytes kept of one container's log (head and tail)."""
    flush_seconds: float = 2.0
    """Records are written in batches this often, never once per API event."""
    prune_seconds: float = 60.0
    """How often finished Pipelines are pruned and expired records dropped."""
    policy: Policy = field(default_factory=Policy)


def history_settings(env: Mapping[str, str], error: type[ValueError]) -> HistorySettings:
    """From the environment; a bad value raises ``error`` naming the variable."""

    def count(name: str, default: int) -> int:
        value = env.get(name, "").strip()
        if not value:
            return default
        if not value.isdigit():
            raise error(f"{name} must be a whole number, not {value!r}")
        return int(value)

    def age(name: str, default: timedelta | None) -> timedelta | None:
        value = env.get(name, "").strip()
        if not value:
            return default
        if value == "0":
            return None
        try:
            return timedelta(seconds=parse_duration(value))
        except ValueError as exc:
            raise error(f"{name}: {exc}") from None

    def size(name: str, default: int | None) -> int | None:
        value = env.get(name, "").strip()
        if not value:
            return default
        if value == "0":
            return None
        try:
            return int(parse_quantity(value))
        except ValueError as exc:
            raise error(f"{name}: {exc}") from None

    enabled = env.get("SHIPWAY_RETENTION", "on").strip().lower() not in ("0", "false", "no", "off")
    policy = Policy(
        succeeded=count("SHIPWAY_RETAIN_SUCCEEDED", retention.KEEP_SUCCEEDED),
        failed=count("SHIPWAY_RETAIN_FAILED", retention.KEEP_FAILED),
        max_age=age("SHIPWAY_RETAIN_MAX_AGE", retention.MAX_AGE),
        record_age=age("SHIPWAY_HISTORY_MAX_AGE", retention.RECORD_AGE),
        store_bytes=size("SHIPWAY_HISTORY_MAX_SIZE", retention.STORE_BYTES),
        enabled=enabled,
    )
    return HistorySettings(
        url=store_url(env.get("SHIPWAY_HISTORY")),
        log_cap=size("SHIPWAY_HISTORY_LOG_CAP", DEFAULT_CAP) or DEFAULT_CAP,
        prune_seconds=(
            age("SHIPWAY_RETENTION_INTERVAL", timedelta(minutes=1)) or timedelta(minutes=1)
        ).total_seconds(),
        policy=policy,
    )
