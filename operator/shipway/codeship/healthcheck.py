"""A compose ``healthcheck`` → ``spec.services.X.healthcheck`` (a linked service's startupProbe)."""

from __future__ import annotations

from typing import Any

from shipway.codeship.issues import WarningKind
from shipway.codeship.report import Report, command_value, join, scalar_text, type_name

HEALTHCHECK_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")


def convert_healthcheck(
    value: Any, where: str, source: str, report: Report
) -> dict[str, Any] | None:
    """The compose healthcheck as Shipway takes it; None when disabled or after an error."""
    if not isinstance(value, dict):
        report.error(source, where, f"must be a map, not {type_name(value)}")
        return None
    out: dict[str, Any] = {}
    for key, item in value.items():
        at = join(where, str(key))
        if key == "start_interval":
            report.warn(source, at, "ignored: checks run at interval", WarningKind.IGNORED)
        elif key not in HEALTHCHECK_KEYS:
            report.unknown_key(source, at, str(key), known=HEALTHCHECK_KEYS)
        elif key == "test":
            test = command_value(report, source, at, item)
            if test is not None:
                out["test"] = test
        elif key == "retries":
            if isinstance(item, int) and not isinstance(item, bool):
                out["retries"] = int(item)
            else:
                report.error(source, at, "must be a number")
        elif key == "disable":
            if isinstance(item, bool):
                out["disable"] = item
            else:
                report.error(source, at, "must be true or false")
        else:
            text = scalar_text(report, source, at, item)
            if text is not None:
                out[str(key)] = text
    if "test" not in out and not out.get("disable"):
        report.error(source, where, "a healthcheck needs test")
        return None
    if out.get("disable") and "test" not in out:
        return None
    return out
