"""Sends :class:`forge.Request`s (the shell): the standard library's client, retries with
backoff for the forge's own errors (5xx, 429, connection refused), never for a 4xx."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from shipway.triggers.forge import Request

TIMEOUT = 10.0
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class ForgeError(Exception):
    """The forge refused or could not be reached; the message says which and why."""


def send(request: Request, timeout: float = TIMEOUT) -> Response:
    req = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return Response(reply.status, reply.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(4096))
    except (OSError, ValueError) as exc:
        raise ForgeError(f"{request.method} {request.url}: {exc}") from None


def _retryable(status: int) -> bool:
    return status >= 500 or status == 429


def send_with_retries(
    request: Request,
    backoff: tuple[float, ...] = BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> Response:
    """The first answer that is not a forge error; ForgeError naming the last one after the
    backoff runs out or on a refusal (4xx) that retrying cannot fix."""
    last = ""
    for delay in (0.0, *backoff):
        if delay:
            sleep(delay)
        try:
            got = send(request)
        except ForgeError as exc:
            last = str(exc)
            continue
        if 200 <= got.status < 300:
            return got
        last = f"{request.method} {request.url}: HTTP {got.status}: " + got.body[:200].decode(
            errors="replace"
        )
        if not _retryable(got.status):
            break
    raise ForgeError(last)
