"""Sends :class:`forge.Request`s (the shell): one pool of keep-alive connections per process
(urllib3's, thread-safe), so a delivery's reads and statuses to a forge reuse a connection
instead of paying DNS, TCP and TLS again for each; retries with backoff for the forge's own
errors (5xx, 429, connection refused), never for a 4xx."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3

from shipway.triggers.forge import Request

TIMEOUT = 10.0
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
MAX_BODY = 1 << 20

_POOL = urllib3.PoolManager(num_pools=16, maxsize=8, block=False)
"""Connections kept open per forge host (up to ``maxsize`` idle ones each)."""
_RETRIES = urllib3.Retry(
    total=None, connect=0, read=0, status=0, other=0, redirect=3, raise_on_redirect=False
)
"""No retry of urllib3's own (``send_with_retries`` decides); redirects followed, and
urllib3 drops the ``Authorization`` header when one leads to another host."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class ForgeError(Exception):
    """The forge refused or could not be reached; the message says which and why."""


def send(request: Request, timeout: float = TIMEOUT) -> Response:
    try:
        reply = _POOL.request(
            request.method, request.url, body=request.body, headers=request.headers,
            timeout=urllib3.Timeout(total=timeout), retries=_RETRIES, preload_content=False,
        )  # fmt: skip
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise ForgeError(f"{request.method} {request.url}: {exc}") from None
    try:
        body = reply.read(MAX_BODY + 1)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reply.close()
        raise ForgeError(f"{request.method} {request.url}: {exc}") from None
    if len(body) > MAX_BODY:
        reply.close()  # the rest is not read: this connection cannot serve another request
        body = body[:MAX_BODY]
    else:
        reply.release_conn()
    return Response(reply.status, body)


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
