"""A small async client of the Kubernetes API server, with one caller's credentials.

aiohttp (already in the operator through kopf) streams a pod's log as it is written, which
the dashboard relays as server-sent events; the synchronous ``kubernetes`` client would hold
a thread per open log. Only the few calls the dashboard makes are here.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import aiohttp

from shipway import GROUP, PLURAL, VERSION


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credentials:
    """How to reach the API server as someone: a bearer token or a client certificate,
    optionally impersonating a user (an authenticating proxy's user, in the cluster)."""

    host: str
    ca_file: str | None = None
    verify: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    impersonate_user: str | None = None
    impersonate_groups: tuple[str, ...] = ()

    def with_token(self, token: str) -> Credentials:
        """The same server, as the holder of ``token`` (and no certificate of ours)."""
        return replace(self, token=token, cert_file=None, key_file=None)

    def impersonating(self, user: str, groups: tuple[str, ...]) -> Credentials:
        return replace(self, impersonate_user=user, impersonate_groups=groups)

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.impersonate_user:
            headers["Impersonate-User"] = self.impersonate_user
        return headers

    def header_items(self) -> list[tuple[str, str]]:
        items = list(self.headers().items())
        items += [
            ("Impersonate-Group", g) for g in self.impersonate_groups if self.impersonate_user
        ]
        return items


def from_kubeconfig(path: str | None = None, context: str | None = None) -> Credentials:
    """The kubeconfig's current user, as ``kubectl`` would use it (exec plugins included:
    the kubernetes client runs them)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=path, context=context, client_configuration=configuration
    )
    token = None
    auth = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
    if auth:
        token = auth.removeprefix("Bearer ").strip()
    return Credentials(
        host=configuration.host.rstrip("/"),
        ca_file=configuration.ssl_ca_cert,
        verify=bool(configuration.verify_ssl),
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        token=token,
    )


def in_cluster() -> Credentials:
    """The dashboard's own service account: used only for TokenReview and SubjectAccessReview
    (and impersonation, behind an authenticating proxy)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    auth = configuration.api_key.get("authorization", "")
    return Credentials(
        host=configuration.host.rstrip("/"),
        ca_file=configuration.ssl_ca_cert,
        token=auth.removeprefix("Bearer ").strip() or None,
    )


def pipeline_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{PLURAL}"
    return f"{base}/{quote(name, safe='')}" if name else base


class Kube:
    """One caller's API client; one aiohttp session per dashboard process, connections pooled."""

    def __init__(self, session: aiohttp.ClientSession, credentials: Credentials) -> None:
        self.session = session
        self.credentials = credentials
        self._ssl = credentials.ssl_context()

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = self.credentials.header_items()
        if body is not None:
            headers.append(("Content-Type", content_type))
        async with self.session.request(
            method,
            self.credentials.host + path,
            json=body,
            headers=headers,
            params=params,
            ssl=self._ssl,
        ) as response:
            data: Any = await response.json(content_type=None)
            if response.status >= 400:
                message = data.get("message") if isinstance(data, dict) else None
                raise KubeError(response.status, message or f"HTTP {response.status}")
            return data if isinstance(data, dict) else {}

    async def get_pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", pipeline_path(namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def merge_patch(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        await self.request(
            "PATCH",
            pipeline_path(namespace, name),
            patch,
            content_type="application/merge-patch+json",
            params={"fieldValidation": "Strict"},
        )

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.request(
                "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(name)}"
            )
        except KubeError:
            return None  # not there, or not the user's to read: nothing to mask with it

    async def log_lines(
        self, namespace: str, pod: str, container: str, follow: bool
    ) -> AsyncIterator[str]:
        """The pod's log line by line; following, until the container ends."""
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/log"
        params = {"container": container}
        if follow:
            params["follow"] = "true"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.session.get(
            self.credentials.host + path,
            headers=self.credentials.header_items(),
            params=params,
            ssl=self._ssl,
            timeout=timeout,
        ) as response:
            if response.status >= 400:
                text = await response.text()
                raise KubeError(response.status, text[:300])
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
