"""What pods report in their termination messages, parsed (pure).

The pod half writes the programs; the planning half reads their reports through this module.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shipway.models import Healthcheck, ImageHealthcheck

_TEXT_KEYS = {"branch", "tag", "message", "committerName", "committerEmail"}


_CREDENTIALS_IN_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact(text: str) -> str:
    """Drop anything that looks like credentials in a URL (``https://user:token@host``).

    Git does not print them, and the spec cannot hold them; this is the last line of defence
    for text that ends up in the status and Events.
    """
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


def parse_report(text: str | None) -> dict[str, str]:
    """The facts a checkout or receiver reported: ``key=value`` lines, free text in base64."""
    facts: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            continue
        if key in _TEXT_KEYS:
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
            value = value.rstrip("\n")
        facts[key] = redact(value)
    return facts


NANOSECONDS = 1_000_000_000


def _seconds(value: Any) -> float | None:
    """Docker's nanoseconds; 0 (or nothing) is Docker's default: None here."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value / NANOSECONDS


def parse_inspect(message: str | None) -> tuple[ImageHealthcheck | None, str | None]:
    """(the image's healthcheck or None, why the report cannot be used or None)."""
    try:
        data = json.loads((message or "").strip())
    except ValueError:
        return None, (message or "the image's configuration could not be read").strip()[:1024]
    if not isinstance(data, dict) or "healthcheck" not in data:
        return None, f"unexpected report of the image's configuration: {message!r}"[:1024]
    check = data["healthcheck"]
    if check is None:
        return None, None
    if not isinstance(check, dict):
        return None, f"the image's Healthcheck is not an object: {check!r}"[:1024]
    test = check.get("Test")
    if not test or test == ["NONE"]:
        return None, None  # HEALTHCHECK NONE, or none inherited
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        return None, f"the image's HEALTHCHECK test is not a list of strings: {test!r}"[:1024]
    retries = check.get("Retries")
    try:
        return (
            ImageHealthcheck(
                test=test,
                interval=_seconds(check.get("Interval")),
                timeout=_seconds(check.get("Timeout")),
                start_period=_seconds(check.get("StartPeriod")),
                retries=retries if isinstance(retries, int) and retries > 0 else None,
            ),
            None,
        )
    except ValidationError as exc:
        why = "; ".join(str(error["msg"]) for error in exc.errors())
        return None, f"the image's HEALTHCHECK cannot be kept: {why}"[:1024]


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def as_healthcheck(image: ImageHealthcheck) -> Healthcheck:
    """The image's check in compose's terms, so that one function makes every startupProbe."""
    return Healthcheck.model_validate(
        {
            "test": list(image.test),
            "interval": _duration(image.interval),
            "timeout": _duration(image.timeout),
            "start_period": _duration(image.start_period),
            "retries": min(image.retries, 1000) if image.retries else None,
        }
    )


@dataclass(frozen=True)
class PushResult:
    image: str | None = None
    digest: str | None = None
    problem: str | None = None


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def parse_push_result(message: str | None) -> PushResult:
    """Read a successful push pod's termination message: the reference and its digest."""
    text = (message or "").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not _DIGEST.fullmatch(str(data.get("digest", ""))):
        return PushResult(problem=f"the push pod reported no digest: {text[:200]!r}")
    return PushResult(image=str(data.get("image") or "") or None, digest=str(data["digest"]))
