"""Go-style durations (``90s``, ``1m30s``, ``2h``), the form Kubernetes users and compose files use."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError on anything but the Go form."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART.findall(text))
