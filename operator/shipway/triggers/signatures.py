"""Is a delivery genuine: each forge's signature or token, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from shipway.models.repository import Provider


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _hmac_hex(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(provider: Provider, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """True only when the delivery carries the signature (or token) ``secret`` makes.

    GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; Bitbucket Cloud
    the same in ``X-Hub-Signature``; Gitea ``X-Gitea-Signature: <hex>``; GitLab sends the
    secret itself in ``X-Gitlab-Token``. An empty secret verifies nothing.
    """
    if not secret:
        return False
    if provider == "gitlab":
        token = _header(headers, "X-Gitlab-Token").encode()
        return hmac.compare_digest(token, secret)
    expected = _hmac_hex(secret, body)
    if provider == "gitea":
        given = _header(headers, "X-Gitea-Signature")
        return hmac.compare_digest(given.lower().encode(), expected.encode())
    name = "X-Hub-Signature-256" if provider == "github" else "X-Hub-Signature"
    given = _header(headers, name)
    return hmac.compare_digest(given.lower().encode(), f"sha256={expected}".encode())


def sign(provider: Provider, body: bytes, secret: bytes) -> dict[str, str]:
    """The headers a forge would send: for tests, the e2e suite and the benchmark."""
    if provider == "gitlab":
        return {"X-Gitlab-Token": secret.decode()}
    digest = _hmac_hex(secret, body)
    if provider == "gitea":
        return {"X-Gitea-Signature": digest}
    name = "X-Hub-Signature-256" if provider == "github" else "X-Hub-Signature"
    return {name: f"sha256={digest}"}
