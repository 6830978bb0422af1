"""The operator's settings that shape plans and pods (chart values → the environment).

One module, so :mod:`shipway.controller.config` builds its configuration from one place.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from shipway.engine.outcome import START_GRACE_SECONDS, UNSCHEDULABLE_GRACE_SECONDS

DEFAULT_APPROVAL_TIMEOUT_SECONDS = 7 * 24 * 3600.0
"""A gate nobody decides ends the pipeline after 7 days (``SHIPWAY_APPROVAL_TIMEOUT``)."""


DEFAULT_TIMEOUT_SECONDS = 5 * 3600.0
"""A pipeline without spec.timeout ends after 5 hours, as on Codeship."""


MAX_RUNNING_PODS = 20


MAX_NAMESPACE_PODS = 50


RETRY_GRACE_SECONDS = 120.0
"""How long a retry waits for the previous attempt's pod to go (a finalizer or a lost node
can hold it forever) before the step fails with ``RetryBlocked``."""


DEFAULT_CLIENT_IMAGE = "moby/buildkit:v0.34.2"


@dataclass(frozen=True)
class BuildConfig:
    """Where builds go: cluster configuration (chart values → the operator's environment)."""

    registry: str | None = None
    """``host[:port][/prefix]`` images and caches are pushed to; nodes pull from it."""
    builder: str | None = None
    """buildkitd's address, ``tcp://host:1234`` (TLS with client certificates)."""
    client_secret: str | None = None
    """Secret of the operator's namespace with ``ca.crt``, ``tls.crt``, ``tls.key``."""
    client_image: str = DEFAULT_CLIENT_IMAGE
    push_secret: str | None = None
    """A ``kubernetes.io/dockerconfigjson`` Secret of the operator's namespace, when the
    registry wants credentials to push."""
    credential_secret: str | None = None
    """A Secret of the operator's namespace whose ``key`` derives each namespace's own
    registry credential (``shipway.registryauth``): minted into the namespace instead of any
    cluster-wide credential (``push_secret`` is then never copied)."""
    namespace: str | None = None
    """The operator's namespace, where the two Secrets above live."""
    wait_seconds: int = 60
    """How long a build waits for an unreachable builder before it fails."""
    timeout_seconds: int = 3600
    """A build running longer fails (its pod's deadline)."""
    insecure: bool = False
    """The registry speaks plain HTTP or is not verified (development only)."""

    @property
    def registry_auth(self) -> bool:
        """Build pods get a ``.dockerconfigjson`` (the namespace's own or the push Secret's)."""
        return bool(self.credential_secret or self.push_secret)

    def problem(self) -> str | None:
        """Why builds cannot run here, or None."""
        missing = [
            what
            for what, value in (
                ("a registry (SHIPWAY_REGISTRY, Helm value registry.url)", self.registry),
                (
                    "a builder (SHIPWAY_BUILDKIT_ADDR, Helm values buildkit.deploy or "
                    "buildkit.address)",
                    self.builder,
                ),
                (
                    "the builder's client certificate (SHIPWAY_BUILDKIT_CLIENT_SECRET)",
                    self.client_secret,
                ),
            )
            if not value
        ]
        if not missing:
            return None
        return "this cluster cannot build images: the operator has no " + " and no ".join(missing)


DEFAULT_GIT_IMAGE = "localkube.shipway.dev/git:2.39"
"""The image with git (Debian's), ssh and busybox; ``SHIPWAY_GIT_IMAGE`` overrides it."""


DEFAULT_MAX_SIZE = 2 * 2**30
"""Largest file a checkout may write (its fetched pack, mostly); ``SHIPWAY_SOURCE_MAX_SIZE``."""


@dataclass(frozen=True)
class SourceSettings:
    """Cluster-wide choices of the operator for checkouts and uploads."""

    image: str = DEFAULT_GIT_IMAGE
    max_size: int = DEFAULT_MAX_SIZE


DEFAULT_DOCKER_IMAGE = "docker:20.10-dind"
"""An image with ``dockerd``, its runtime and ``sh``: Docker Hub's, or the local mirror's."""


@dataclass(frozen=True)
class DockerConfig:
    """The administrator's settings (chart values → the operator's environment)."""

    enabled: bool = False
    namespaces: tuple[str, ...] = ()
    """Where Pipelines may use it; empty: every namespace the operator serves."""
    image: str = DEFAULT_DOCKER_IMAGE
    mirror: str | None = None
    """A registry mirror of Docker Hub (host[:port]), reached over https."""
    ca_config_map: str | None = None
    """A ConfigMap in every namespace whose ``ca.crt`` signs the mirror's certificate."""


DEFAULT_PUSH_IMAGE = "gcr.io/go-containerregistry/crane/debug:v0.20.6"
"""crane with a busybox shell (the ``debug`` variant): the script needs ``sh``."""


@dataclass(frozen=True)
class PushConfig:
    """How pushes run: cluster configuration (chart values → the operator's environment)."""

    image: str = DEFAULT_PUSH_IMAGE
    """An image with ``crane`` and ``sh`` on its PATH."""
    ca_config_map: str | None = None
    """A ConfigMap present in every namespace whose ``ca.crt`` signs registries' certificates
    (``kube-root-ca.crt`` on the local cluster, whose registries it signs); trusted besides
    the image's own roots."""
    insecure: bool = False
    """The cluster's registry (the source) is plain HTTP or unverified: crane's --insecure,
    which crane applies to the target registry too (development only)."""


@dataclass(frozen=True)
class Settings:
    """The operator's choices that shape plans (from :class:`OperatorConfig`)."""

    start_grace: float = START_GRACE_SECONDS
    unschedulable_grace: float = UNSCHEDULABLE_GRACE_SECONDS
    default_timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    """Applies when spec.timeout is absent; None: no limit."""
    max_running_pods: int | None = MAX_RUNNING_PODS
    """At most this many pods of one pipeline at once; None: no limit."""
    approval_timeout: float | None = DEFAULT_APPROVAL_TIMEOUT_SECONDS
    """How long a manual gate waits when spec.approvalTimeout is absent; None: for ever."""
    build: BuildConfig = field(default_factory=BuildConfig)
    retry_grace: float = RETRY_GRACE_SECONDS
    """How long a retry waits for the previous attempt's pod to go."""
    max_namespace_pods: int | None = MAX_NAMESPACE_PODS
    """At most this many step pods of one namespace at once, all pipelines together."""


PROCESS_SEAL_KEY = secrets.token_bytes(32)
"""The seal key of an operator given none: its own pods are known until it restarts."""


@dataclass(frozen=True)
class PodOptions:
    """Cluster-wide choices of the operator, not of the pipeline's author."""

    security_context: dict[str, Any] | None = None
    """Applied to every container (e.g. a Pod Security "restricted" profile)."""
    termination_grace_seconds: int = 10
    default_service_account: str | None = None
    """ServiceAccount of step pods whose Pipeline sets no ``serviceAccountName``."""
    tolerations: tuple[dict[str, Any], ...] = ()
    """Added to every step pod (e.g. to run on a tainted pool of CI nodes)."""
    node_selector: dict[str, str] | None = None
    """Every step pod's ``nodeSelector`` (e.g. to keep builds on that pool)."""
    push: PushConfig = field(default_factory=PushConfig)
    """How push steps' pods copy images (crane's image, the CA registries are trusted by)."""
    source: SourceSettings = field(default_factory=SourceSettings)
    """The checkout's image and size limit."""
    allowed_service_accounts: tuple[str, ...] = ()
    """ServiceAccounts step pods may run as (besides the default above); empty: any."""
    operator_service_account: str | None = None
    """The operator's own ServiceAccount: never a step pod's."""
    operator_namespace: str | None = None
    """Its namespace; None: the name is refused in every namespace."""
    docker: DockerConfig = field(default_factory=DockerConfig)
    """``add_docker``'s daemon: whether it is allowed, where, and its image."""
    seal_key: bytes = field(default=PROCESS_SEAL_KEY, repr=False)
    """Signs every pod the operator creates (engine.ownership): ``SHIPWAY_POD_SEAL_KEY``; by
    default a key of this process (a pod created just before a restart is then not known)."""
