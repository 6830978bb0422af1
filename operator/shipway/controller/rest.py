"""Plain HTTP requests to the API server, on the Kubernetes client's connection pool and
credentials.

The client's generated API methods check every argument with pydantic (``validate_call``)
and walk the body to serialise it; their first call also builds validators for the ~250
models their type hints name: ~22 MB of the operator's resident memory and a share of every
call's CPU, for bodies the operator builds and reads as JSON itself. So the operator's calls
go through here: a path, a JSON body, the raw answer. Errors keep the client's type
(:class:`ApiException`, with the status and the body), so callers handle them as before.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

Timeout = float | tuple[float, float] | None
"""Seconds for the whole request, or (connect, read); None: the pool's default."""


def path(*parts: str) -> str:
    """``/api/v1/namespaces/x/pods``: each part quoted, as the generated client does.

    Object names are DNS names, which quoting leaves as they are: those skip ``quote``
    (a few microseconds a part, tens of thousands of paths a busy minute).
    """
    return "/" + "/".join(
        part if _PLAIN.fullmatch(part) else quote(part, safe="") for part in parts
    )


_PLAIN = re.compile(r"[A-Za-z0-9._-]*")
"""Characters ``quote`` never changes."""


def core(namespace: str, resource: str, name: str | None = None) -> str:
    """The path of a core (v1) resource of a namespace, or of one object of it."""
    parts = ["api", "v1", "namespaces", namespace, resource]
    return path(*parts, *([name] if name is not None else []))


def request(
    api: client.ApiClient,
    method: str,
    where: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    content_type: str = JSON,
    timeout: Timeout = None,
) -> Any:
    """Send one request; the urllib3 response, its body not read yet (stream it, or read
    ``.data``; either way the connection returns to the pool).

    A status outside 2xx raises :class:`ApiException` (its body read), as the generated
    methods do; no answer at all raises urllib3's ``HTTPError`` or an ``OSError``.
    """
    url = f"{api.configuration.host}{where}"
    if query:
        url += "?" + urlencode({k: _query_value(v) for k, v in query.items() if v is not None})
    headers = {**api.default_headers, "Accept": JSON}
    api.update_params_for_auth(headers, [], ["BearerToken"], where, method, None)
    data = encode(body)
    if data is not None:
        headers["Content-Type"] = content_type
    response: Any = api.rest_client.pool_manager.request(
        method,
        url,
        body=data,
        headers=headers,
        timeout=_timeout(timeout),
        preload_content=False,
    )
    if not 200 <= response.status <= 299:
        try:
            error_body = response.data
        finally:
            response.release_conn()
        error = ApiException(status=response.status, reason=response.reason)
        error.body = error_body
        raise error
    return response


def encode(body: Any) -> bytes | None:
    """A request's body as compact JSON; None for none."""
    if body is None:
        return None
    return json.dumps(body, separators=(",", ":"), default=_json_value).encode()


def _json_value(value: Any) -> Any:
    """What the generated client sent for a value JSON has no type for (its
    ``sanitize_for_serialization``): a time or date as ISO 8601, a decimal as a string."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _timeout(timeout: Timeout) -> Any:
    if timeout is None:
        return urllib3.util.Timeout.DEFAULT_TIMEOUT
    if isinstance(timeout, tuple):
        return urllib3.Timeout(connect=timeout[0], read=timeout[1])
    return urllib3.Timeout(total=timeout)
