"""The token endpoint's answer to one request, without HTTP: what ``server`` serves.

Docker's token protocol in its two forms: ``GET ?service=…&scope=…`` with HTTP basic auth
(crane, BuildKit's client, docker) or none (anonymous), and the OAuth2 ``POST`` form with
``grant_type=password`` (containerd, so the kubelet's pulls). A wrong password is a 401; a
right one gets a token with only the granted part of each scope.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from shipway.registryauth.credentials import ANONYMOUS, Identity, authenticate
from shipway.registryauth.policy import Policy, grant_all
from shipway.registryauth.tokens import Claims, Signer

DEFAULT_TTL = 300
"""Seconds a token lives: clients ask again for every new scope anyway."""


@dataclass(frozen=True)
class Settings:
    key: bytes
    """The key namespace passwords are derived from."""
    signer: Signer
    service: str
    """The registry's ``service`` (the token's audience), as in its config."""
    issuer: str
    admin_password: str | None = None
    policy: Policy = field(default_factory=Policy)
    ttl: int = DEFAULT_TTL


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, object]


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"errors": [{"code": code, "message": message}]})


def _basic(header: str | None) -> tuple[str, str] | str | None:
    """(user, password) from a Basic header; None without one; a message when malformed."""
    if not header:
        return None
    kind, _, value = header.partition(" ")
    if kind.lower() != "basic":
        return "only basic authentication is accepted"
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "malformed basic authentication"
    if not sep:
        return "malformed basic authentication"
    return user, password


def _scopes(values: Sequence[str]) -> list[str]:
    return [part for value in values for part in value.split(" ") if part]


def answer(
    settings: Settings,
    method: str,
    params: Mapping[str, Sequence[str]],
    authorization: str | None,
    *,
    clock: Callable[[], float] = time.time,
) -> Answer:
    """The response to one token request: ``params`` is the query (GET) or the form (POST)."""
    credentials: tuple[str, str] | None
    if method == "POST":
        grant = (params.get("grant_type") or [""])[0]
        if grant != "password":
            return _error(400, "UNSUPPORTED", f"grant_type {grant!r} is not supported")
        credentials = ((params.get("username") or [""])[0], (params.get("password") or [""])[0])
    elif method == "GET":
        parsed = _basic(authorization)
        if isinstance(parsed, str):
            return _error(401, "UNAUTHORIZED", parsed)
        credentials = parsed
    else:
        return _error(405, "UNSUPPORTED", f"method {method} is not supported")
    service = (params.get("service") or [settings.service])[0]
    if service != settings.service:
        return _error(400, "DENIED", f"this token service serves {settings.service!r} only")
    identity: Identity | None = ANONYMOUS
    if credentials is not None:
        identity = authenticate(settings.key, settings.admin_password, *credentials)
        if identity is None:
            return _error(401, "UNAUTHORIZED", "wrong user name or password")
    assert identity is not None
    granted = grant_all(settings.policy, identity, _scopes(params.get("scope") or []))
    now = int(clock())
    token = settings.signer.sign(
        Claims(
            issuer=settings.issuer,
            audience=settings.service,
            subject=identity.subject,
            access=tuple(granted),
            issued_at=now,
            expires_at=now + settings.ttl,
        )
    )
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return Answer(
        200,
        {"token": token, "access_token": token, "expires_in": settings.ttl, "issued_at": issued},
    )
