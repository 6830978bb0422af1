"""Who is asking: the user a request acts as, and the credentials that act as them.

No user database: on a laptop the user is the kubeconfig's (like ``kubectl proxy``); in the
cluster a request carries the user's bearer token, which TokenReview checks, or comes from
the authenticating proxy the chart names, whose client certificate alone lets its
``X-Remote-User`` / ``X-Remote-Group`` headers count (anyone else's are ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipway.dashboard.kube import Credentials, Kube

USER_HEADER = "X-Remote-User"
GROUP_HEADER = "X-Remote-Group"


class AuthenticationError(Exception):
    """No identity: the request is refused 401."""


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    credentials: Credentials
    """The API server sees the user through these (their token, their certificate, or the
    dashboard impersonating them)."""
    self_review: bool
    """True: authorization asks SelfSubjectAccessReview with the user's own credentials
    (laptop, bearer token); False: the dashboard asks SubjectAccessReview for the user."""


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def proxy_user(
    headers: Any, peer_names: tuple[str, ...], trusted: tuple[str, ...]
) -> tuple[str, tuple[str, ...]] | None:
    """The proxy's user, only when the peer's verified certificate names a trusted proxy."""
    if not trusted or not set(peer_names) & set(trusted):
        return None
    name = headers.get(USER_HEADER, "").strip()
    if not name:
        return None
    groups = tuple(g.strip() for g in headers.getall(GROUP_HEADER, []) if g.strip())
    return name, groups


def peer_names(peercert: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The common names of a verified client certificate (``ssl`` ``getpeercert()``)."""
    names: list[str] = []
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                names.append(str(value))
    return tuple(names)


async def whoami(kube: Kube) -> tuple[str, tuple[str, ...]]:
    """The caller as the API server authenticates them (SelfSubjectReview)."""
    review = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    info = (review.get("status") or {}).get("userInfo") or {}
    if not info.get("username"):
        raise AuthenticationError("the API server did not say who the kubeconfig's user is")
    return str(info["username"]), tuple(info.get("groups") or ())


async def token_review(kube: Kube, token: str) -> tuple[str, tuple[str, ...]]:
    """The token's user, by the dashboard's service account (TokenReview)."""
    review = await kube.request(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    status = review.get("status") or {}
    info = status.get("user") or {}
    if not status.get("authenticated") or not info.get("username"):
        raise AuthenticationError(status.get("error") or "the token is not valid")
    return str(info["username"]), tuple(info.get("groups") or ())
