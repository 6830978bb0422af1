"""The history's settings (``SHIPWAY_HISTORY*``, ``SHIPWAY_RETAIN_*``), parsed once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from shipway.compiler.source import parse_quantity
from shipway.history import retention
from shipway.history.logs import DEFAULT_CAP
from shipway.history.retention import Policy
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
    api_port: int = 0
    """``SHIPWAY_HISTORY_API_PORT``: serve the history read API here (0: not at all)."""
    api_cert: str = ""
    api_key: str = ""
    """``SHIPWAY_HISTORY_API_CERT``/``_KEY``: its serving certificate (empty: self-signed)."""


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
    api_cert = env.get("SHIPWAY_HISTORY_API_CERT", "").strip()
    api_key = env.get("SHIPWAY_HISTORY_API_KEY", "").strip()
    if bool(api_cert) != bool(api_key):
        raise error("SHIPWAY_HISTORY_API_CERT and SHIPWAY_HISTORY_API_KEY go together")
    api_port = count("SHIPWAY_HISTORY_API_PORT", 0)
    if api_port > 65535:
        raise error(f"SHIPWAY_HISTORY_API_PORT must be a port number, not {api_port}")
    return HistorySettings(
        url=_store_url(env.get("SHIPWAY_HISTORY")),
        api_port=api_port,
        api_cert=api_cert,
        api_key=api_key,
        log_cap=size("SHIPWAY_HISTORY_LOG_CAP", DEFAULT_CAP) or DEFAULT_CAP,
        prune_seconds=(
            age("SHIPWAY_RETENTION_INTERVAL", timedelta(minutes=1)) or timedelta(minutes=1)
        ).total_seconds(),
        policy=policy,
    )


HISTORY_OFF = ("off", "false", "no", "0", "none")
"""``SHIPWAY_HISTORY`` values that turn the history off (as :func:`store_url` reads them)."""


def _store_url(value: str | None) -> str | None:
    """:func:`shipway.history.store.store_url`, imported only when the history is on: that
    module brings SQLAlchemy (~20 MB), which an operator with ``SHIPWAY_HISTORY=off`` never
    needs."""
    if value is not None and value.strip().lower() in HISTORY_OFF:
        return None
    from shipway.history.store import store_url

    return store_url(value)
