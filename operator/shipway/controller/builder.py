"""The imperative side of builds: where the builder and the registry are, and the Secret
build pods present to the builder.

Build pods run in the Pipeline's namespace (the claim with the checkout lives there), but the
builder's client certificate is cluster configuration kept in the operator's namespace. So
the operator copies it, as a Secret owned by the Pipeline, into the namespace when the first
build starts, and deletes it when the last build ends: it exists only while builds run.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from shipway.controller.kube import KubeError
from shipway.controller.registrycreds import (
    CredentialError,
    RegistryCredentials,
    pull_secret_name,
)
from shipway.engine.naming import build_secret_name
from shipway.engine.objects import Manifest, PipelineRef
from shipway.engine.pods.build import client_secret_manifest
from shipway.engine.pods.frame import owner_reference
from shipway.engine.settings import BuildConfig, DockerConfig, PushConfig

log = logging.getLogger("shipway")

CACHE_SECONDS = 300.0
"""How long the copied certificate is reused before the operator reads it again (rotation)."""


@dataclass(frozen=True)
class LocalCluster:
    """The names ``hack/localkube`` gives the builder and the registry (a unit test keeps
    them equal to localkube's own constants)."""

    builder_namespace: str = "shipway-buildkit"
    builder_service: str = "shipway-buildkitd"
    client_namespace: str = "shipway-system"
    client_secret: str = "shipway-buildkit-client"
    client_image: str = "localkube.shipway.dev/buildctl:v0.34.2"
    registry_namespace: str = "localkube-system"
    registry_service: str = "registry"
    push_image: str = "localkube.shipway.dev/crane:v0.22.1"
    """crane and a busybox shell, imported into the node by ``localkube up``."""
    credential_secret: str = "shipway-registry-credentials"
    """Its ``key`` derives each namespace's registry credential (token auth on, localkube's
    ``SHIPWAY_LOCALKUBE_REGISTRY_AUTH=token``), in the client namespace."""
    ca_config_map: str = "kube-root-ca.crt"
    """The cluster CA, in every namespace: it signs the local registries' certificates."""

    @property
    def builder(self) -> str:
        return f"tcp://{self.builder_service}.{self.builder_namespace}.svc:1234"

    @property
    def registry(self) -> str:
        return f"{self.registry_service}.{self.registry_namespace}.svc.cluster.local"


LOCAL = LocalCluster()


async def on_local_cluster(api: DiscoveryApi) -> bool:
    """Whether this is the local cluster (``hack/localkube``): its registry's Service exists
    (an error reading it: not the local cluster)."""
    try:
        local = await api.get_service(LOCAL.registry_namespace, LOCAL.registry_service)
    except KubeError:
        return False
    return local is not None


async def discover_docker(api: DiscoveryApi, config: DockerConfig) -> DockerConfig:
    """On the local cluster, ``add_docker``'s daemons pull Docker Hub images through its
    registry and trust its CA (unless a mirror is configured, or the feature is off)."""
    if not config.enabled or config.mirror or not await on_local_cluster(api):
        return config
    log.info("docker daemons: mirror %s (local cluster)", LOCAL.registry)
    return replace(config, mirror=LOCAL.registry, ca_config_map=LOCAL.ca_config_map)


class SecretApi(Protocol):
    async def get_secret(self, namespace: str, name: str) -> Manifest | None: ...
    async def create_secret(self, namespace: str, manifest: Manifest) -> None: ...
    async def delete_secret(self, namespace: str, name: str) -> None: ...


class DiscoveryApi(SecretApi, Protocol):
    async def get_service(self, namespace: str, name: str) -> Manifest | None: ...


async def discover(api: DiscoveryApi, config: BuildConfig) -> BuildConfig:
    """Fill in what the environment left unset from the local cluster's well-known objects.

    So ``shipway operator`` run against ``hack/localkube`` finds its builder and registry
    with no flags; on any other cluster nothing is found and nothing changes.
    """

    async def exists(kind: str, namespace: str, name: str) -> bool:
        get = api.get_service if kind == "service" else api.get_secret
        try:
            return await get(namespace, name) is not None
        except KubeError:  # not ours to read: not the local cluster's layout
            return False

    found = config
    if not found.builder and await exists(
        "service", LOCAL.builder_namespace, LOCAL.builder_service
    ):
        namespace = found.namespace or LOCAL.client_namespace
        if await exists("secret", namespace, found.client_secret or LOCAL.client_secret):
            found = replace(
                found,
                builder=LOCAL.builder,
                namespace=namespace,
                client_secret=found.client_secret or LOCAL.client_secret,
                client_image=(
                    LOCAL.client_image
                    if found.client_image == BuildConfig().client_image
                    else found.client_image
                ),
            )
    if not found.registry and await exists(
        "service", LOCAL.registry_namespace, LOCAL.registry_service
    ):
        found = replace(found, registry=LOCAL.registry)
    if (
        found.registry == LOCAL.registry
        and not found.credential_secret
        and await exists(
            "secret", found.namespace or LOCAL.client_namespace, LOCAL.credential_secret
        )
    ):
        found = replace(
            found,
            credential_secret=LOCAL.credential_secret,
            namespace=found.namespace or LOCAL.client_namespace,
        )
    if found != config:
        log.info("builds: builder %s, registry %s (local cluster)", found.builder, found.registry)
    return found


async def discover_push(api: DiscoveryApi, config: PushConfig) -> PushConfig:
    """On the local cluster, push pods run its crane image and trust its CA (no settings)."""
    if config != PushConfig() or not await on_local_cluster(api):
        return config
    log.info("pushes: %s, trusting %s (local cluster)", LOCAL.push_image, LOCAL.ca_config_map)
    return PushConfig(image=LOCAL.push_image, ca_config_map=LOCAL.ca_config_map)


class BuildSecrets:
    """Copies of the builder's client certificate, one per Pipeline that builds."""

    def __init__(
        self, api: SecretApi, config: BuildConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api = api
        self.config = config
        self._clock = clock
        self._cached: tuple[float, dict[str, str], str | None] | None = None
        self.credentials = RegistryCredentials(api, config, clock)

    async def _source(self) -> tuple[dict[str, str], str | None]:
        """The certificate's data (base64, as read) and the push credentials, if any."""
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
            return self._cached[1], self._cached[2]
        namespace, name = self.config.namespace or "", self.config.client_secret or ""
        secret = await self.api.get_secret(namespace, name)
        data: Mapping[str, str] = (secret or {}).get("data") or {}
        missing = [k for k in ("ca.crt", "tls.crt", "tls.key") if not data.get(k)]
        if secret is None or missing:
            what = "does not exist" if secret is None else f"lacks {', '.join(missing)}"
            raise BuildSecretError(
                f"the builder's client certificate, Secret {namespace}/{name}, {what}"
            )
        docker_config = None
        if self.config.push_secret and not self.config.credential_secret:
            push = await self.api.get_secret(namespace, self.config.push_secret)
            docker_config = ((push or {}).get("data") or {}).get(".dockerconfigjson")
            if not docker_config:
                raise BuildSecretError(
                    f"the registry's push credentials, Secret {namespace}/"
                    f"{self.config.push_secret}, have no .dockerconfigjson"
                )
            base64.b64decode(docker_config, validate=True)
        self._cached = (now, dict(data), docker_config)
        return dict(data), docker_config

    async def ensure(self, ref: PipelineRef) -> str | None:
        """Make the Pipeline's copy (again: harmless); what is wrong when it cannot be made."""
        try:
            data, docker_config = await self._source()
            if self.credentials.enabled:
                # The namespace's own credential, never the cluster-wide push Secret.
                docker_config = await self.credentials.docker_config(ref.namespace)
                await self.credentials.ensure_pull_secret(ref, docker_config)
        except (BuildSecretError, CredentialError) as exc:
            log.warning("%s/%s: builds refused: %s", ref.namespace, ref.name, exc)
            return str(exc)
        manifest = client_secret_manifest(
            build_secret_name(ref.name, ref.uid),
            ref.namespace,
            owner_reference(ref),
            ref.name,
            client=data,
            docker_config=docker_config,
        )
        await self.api.create_secret(ref.namespace, manifest)
        return None

    async def drop(self, ref: PipelineRef) -> None:
        await self.api.delete_secret(ref.namespace, build_secret_name(ref.name, ref.uid))

    async def drop_pull(self, ref: PipelineRef) -> None:
        """The run is over: its pull Secret (the namespace's registry credential) goes too, so
        no credential outlives the pods that needed it."""
        if self.credentials.enabled:
            await self.api.delete_secret(ref.namespace, pull_secret_name(ref))


class BuildSecretError(Exception):
    """The operator's own copy of the certificate is missing: builds cannot start."""
