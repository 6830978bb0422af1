"""Who is asking: the user the API server's front proxy vouches for, and nobody else.

An aggregated API server is reached through the API server, which authenticates the user
(their kubeconfig) and passes who they are in request headers (``X-Remote-User``,
``X-Remote-Group``). Anyone could send those headers, so they count only on a connection
whose client certificate is signed by the request-header CA and names an allowed proxy, as
the ``extension-apiserver-authentication`` ConfigMap of ``kube-system`` publishes them
(the API server's ``--requestheader-*`` flags). The same rule as Kubernetes' own
aggregated servers (metrics-server).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONFIG_MAP = ("kube-system", "extension-apiserver-authentication")
USER_HEADERS = ("X-Remote-User",)
GROUP_HEADERS = ("X-Remote-Group",)
EXTRA_PREFIXES = ("X-Remote-Extra-",)


class UnauthenticatedError(Exception):
    """The request does not come from the front proxy, or names no user."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FrontProxy:
    ca_pem: str
    allowed_names: tuple[str, ...] = ()
    """Common names a proxy certificate may carry; empty: any the CA signed."""
    user_headers: tuple[str, ...] = USER_HEADERS
    group_headers: tuple[str, ...] = GROUP_HEADERS
    extra_prefixes: tuple[str, ...] = EXTRA_PREFIXES

    @classmethod
    def from_config_map(cls, data: Mapping[str, str]) -> FrontProxy:
        """From the ConfigMap's data; without a request-header CA there is no front proxy."""
        ca = data.get("requestheader-client-ca-file") or ""
        if "BEGIN CERTIFICATE" not in ca:
            raise ValueError(
                "kube-system/extension-apiserver-authentication has no "
                "requestheader-client-ca-file: the API server runs without "
                "--requestheader-client-ca-file, so it cannot front an aggregated API"
            )

        def listed(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = data.get(key)
            if not raw:
                return default
            value = json.loads(raw)
            return tuple(str(v) for v in value) if isinstance(value, list) else default

        return cls(
            ca_pem=ca,
            allowed_names=listed("requestheader-allowed-names", ()),
            user_headers=listed("requestheader-username-headers", USER_HEADERS),
            group_headers=listed("requestheader-group-headers", GROUP_HEADERS),
            extra_prefixes=listed("requestheader-extra-headers-prefix", EXTRA_PREFIXES),
        )

    def ssl_context(self, cert: str, key: str) -> ssl.SSLContext:
        """Serving ``cert``; a client certificate is checked against the request-header CA
        when one is presented (optional: a health probe has none, and gets no data)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cadata=self.ca_pem)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def proxy_verified(self, peercert: Mapping[str, Any] | None) -> None:
        """Raise unless the connection's (already CA-verified) certificate is an allowed proxy."""
        if not peercert:
            raise UnauthenticatedError("no client certificate: only the API server may ask")
        if self.allowed_names:
            names = {
                value
                for rdn in peercert.get("subject") or ()
                for key, value in rdn
                if key == "commonName"
            }
            if not names & set(self.allowed_names):
                raise UnauthenticatedError(
                    f"client certificate {sorted(names)} is not a front proxy"
                )

    def user(self, peercert: Mapping[str, Any] | None, headers: Mapping[str, str]) -> User:
        """The user the front proxy names; raises :class:`UnauthenticatedError`."""
        self.proxy_verified(peercert)
        name = next((headers[h] for h in self.user_headers if headers.get(h)), "")
        if not name:
            raise UnauthenticatedError("the request names no user")
        groups = tuple(
            value.strip()
            for header in self.group_headers
            for value in _all(headers, header)
            if value.strip()
        )
        extra: dict[str, tuple[str, ...]] = {}
        for key in headers:
            for prefix in self.extra_prefixes:
                if key.lower().startswith(prefix.lower()):
                    extra[key[len(prefix) :].lower()] = tuple(_all(headers, key))
        return User(name, groups, extra)


def _all(headers: Mapping[str, str], key: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(key, []))
    value = headers.get(key)
    return [value] if value else []
