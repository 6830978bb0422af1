"""Small, exact statistics over measured samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (a value that was actually measured); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p95 and max of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "p50": rounded(percentile(ms, 50)),
        "p95": rounded(percentile(ms, 95)),
        "max": rounded(max(ms) if ms else None),
        "count": len(ms),
    }
