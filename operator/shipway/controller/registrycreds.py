"""Each namespace's own registry credential, minted by the operator (issue #30, item 3).

The key is cluster configuration in the operator's namespace (``SHIPWAY_REGISTRY_CREDENTIAL_
SECRET``, its ``key``); the registry's token service (``shipway registry-token serve``) holds
the same key. A namespace's password is an HMAC of its name, so the operator writes into a
Pipeline's namespace only that namespace's credential: in the build Secret (buildctl and the
inspect container push and read with it) and in a pull Secret the pods that run built images
name. No cluster-wide credential is ever copied into a tenant namespace.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from shipway.engine.naming import LABEL_MANAGED_BY, LABEL_PIPELINE, MANAGED_BY, build_secret_name
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.pods.frame import owner_reference
from shipway.engine.settings import BuildConfig
from shipway.registryauth.credentials import MIN_KEY_BYTES
from shipway.registryauth.pods import (
    namespace_docker_config,
    pull_secret_manifest,
    with_pull_secret,
    with_realm_trust,
    with_source_login,
)

KEY_FIELD = "key"
CACHE_SECONDS = 300.0
"""How long the key is reused before the operator reads it again (rotation)."""
BUILD_CONTAINER = "build"


class SecretApi(Protocol):
    async def get_secret(self, namespace: str, name: str) -> Manifest | None: ...
    async def create_secret(self, namespace: str, manifest: Manifest) -> None: ...


class CredentialError(Exception):
    """The key cannot be read: builds are refused with this message."""


def pull_secret_name(ref: PipelineRef) -> str:
    """The Pipeline's pull Secret: named after its build Secret, and kept (owned by the
    Pipeline) after the builds, while steps still run what was built."""
    return f"{build_secret_name(ref.name, ref.uid)}-pull"


def decode_key(secret: Manifest | None, where: str) -> bytes:
    """The key of the Secret as read from the API (base64 data), or why it is unusable.

    The key is opaque bytes, kept verbatim: the token service reads the same bytes from the
    same Secret, and stripping whitespace would shorten (or change) a random key that happens
    to start or end with a whitespace byte."""
    if secret is None:
        raise CredentialError(f"the registry credential key, Secret {where}, does not exist")
    raw = ((secret.get("data") or {}).get(KEY_FIELD)) or ""
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise CredentialError(f"Secret {where}: {KEY_FIELD} is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise CredentialError(
            f"Secret {where}: {KEY_FIELD} has {len(key)} bytes, at least {MIN_KEY_BYTES} needed"
        )
    return key


class RegistryCredentials:
    """Mints a namespace's credential from the key, read (and re-read) from its Secret."""

    def __init__(
        self, api: SecretApi, config: BuildConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api = api
        self.config = config
        self._clock = clock
        self._cached: tuple[float, bytes] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.config.credential_secret and self.config.registry)

    async def _key(self) -> bytes:
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1]
        namespace, name = self.config.namespace or "", self.config.credential_secret or ""
        key = decode_key(await self.api.get_secret(namespace, name), f"{namespace}/{name}")
        self._cached = (now, key)
        return key

    async def docker_config(self, namespace: str) -> str:
        """The namespace's ``.dockerconfigjson`` (base64) for the cluster's registry."""
        return namespace_docker_config(await self._key(), self.config.registry or "", namespace)

    async def ensure_pull_secret(self, ref: PipelineRef, encoded: str) -> None:
        """The Pipeline's pull Secret (created again: harmless)."""
        manifest = pull_secret_manifest(
            pull_secret_name(ref),
            ref.namespace,
            owner=owner_reference(ref),
            labels={LABEL_PIPELINE: ref.name, LABEL_MANAGED_BY: MANAGED_BY},
            encoded=encoded,
        )
        await self.api.create_secret(ref.namespace, manifest)


def with_namespace_credentials(
    ref: PipelineRef,
    config: BuildConfig,
    *,
    builds: Sequence[Manifest],
    steps: Sequence[Manifest],
    ca_config_map: str | None,
) -> None:
    """Point the Pipeline's pods at its namespace's credential: pods running a built image
    name the pull Secret; push pods log in with it to read the built image; build pods trust
    the token service's CA (``ca_config_map``)."""
    if not (config.credential_secret and config.registry):
        return
    for pod in (*builds, *steps):
        with_pull_secret(pod, pull_secret_name(ref), config.registry)
    for pod in steps:
        with_source_login(pod, pull_secret_name(ref), config.registry, ref.namespace)
    if ca_config_map:
        for pod in builds:
            with_realm_trust(pod, BUILD_CONTAINER, ca_config_map)
