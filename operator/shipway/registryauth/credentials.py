"""Registry credentials: one per namespace, derived from a key, plus the admin's.

A namespace's password is an HMAC-SHA256 of its name under the key, so the operator can
mint it for any namespace and the token service can check it, and neither stores anything
per namespace. The user name is the namespace itself; the admin's user name is not a
namespace name (namespaces are DNS labels, which have no ``_``), so the two never collide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

ADMIN_USER = "_admin"
_CONTEXT = b"shipway registry credential v1\0"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class Identity:
    """Who a token is for: ``namespace`` set for a namespace, ``admin`` for the admin, neither
    for an anonymous client."""

    namespace: str | None = None
    admin: bool = False

    @property
    def subject(self) -> str:
        """The token's ``sub`` claim."""
        if self.admin:
            return ADMIN_USER
        return self.namespace or ""


ANONYMOUS = Identity()


def check_key(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the registry credential key has {len(key)} bytes, at least {MIN_KEY_BYTES} are needed"
        )
    return key


def namespace_password(key: bytes, namespace: str) -> str:
    """The password of ``namespace``'s credential (43 URL-safe characters)."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"not a namespace name: {namespace!r}")
    digest = hmac.new(check_key(key), _CONTEXT + namespace.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authenticate(
    key: bytes, admin_password: str | None, user: str, password: str
) -> Identity | None:
    """The identity ``user``/``password`` proves, or None (wrong, or no such user)."""
    if user == ADMIN_USER:
        if admin_password and hmac.compare_digest(password.encode(), admin_password.encode()):
            return Identity(admin=True)
        return None
    if not _NAMESPACE.fullmatch(user):
        return None
    if hmac.compare_digest(password.encode(), namespace_password(key, user).encode()):
        return Identity(namespace=user)
    return None


def docker_config(hosts: tuple[str, ...], user: str, password: str) -> str:
    """A ``config.json`` (``.dockerconfigjson``) with one credential for every name of the
    registry (the kubelet and BuildKit look a credential up by the image's host)."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    entry = {"username": user, "password": password, "auth": auth}
    return json.dumps({"auths": {host: dict(entry) for host in hosts}}, sort_keys=True)
