"""What a finished build pod reported: the digest and cache hits, or BuildKit's error (pure).

The pod writes JSON to its termination message on success and BuildKit's error lines
otherwise; the one line that says why a build failed is shown in the status, the CLI and Events.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MESSAGE_LIMIT = 3800
"""Bytes of BuildKit's error lines kept (the kubelet keeps 4096 of a termination message)."""


@dataclass(frozen=True)
class BuildResult:
    """What a finished build pod reported."""

    digest: str | None = None
    cached_steps: int | None = None
    total_steps: int | None = None
    message: str | None = None


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def summary(message: str | None) -> str:
    """The one line that says why a build failed.

    BuildKit's ``error: failed to solve`` line when the build reached BuildKit (a client
    wrapper's note after it guesses); else the wrapper's first ``shipway-build:`` line (the
    builder unreachable, the certificate refused: it names the component); else the last
    ``error:`` line; else the last line.
    """
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    solved = [line for line in lines if line.startswith("error: failed to solve")]
    if solved:
        return solved[-1]
    noted = [line for line in lines if line.startswith("shipway-build:")]
    if noted:
        return noted[0]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1]


def parse_result(message: str | None, succeeded: bool) -> BuildResult:
    """Read a build pod's termination message: JSON on success, BuildKit's lines otherwise."""
    text = (message or "").strip()
    if not succeeded:
        return BuildResult(message=text[-MESSAGE_LIMIT:] or None)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not _DIGEST.fullmatch(str(data.get("digest", ""))):
        return BuildResult(message=f"the build pod reported no image digest: {text[:200]!r}")

    def count(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and value >= 0 else None

    return BuildResult(
        digest=str(data["digest"]),
        cached_steps=count("cached"),
        total_steps=count("steps"),
    )
