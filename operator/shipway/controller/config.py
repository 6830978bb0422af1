"""The operator's configuration, parsed once: from its environment (the Helm chart sets it)
and the ``shipway operator`` flags, into one frozen :class:`OperatorConfig` passed down.

A bad setting raises :class:`ConfigError` naming the variable, so the operator stops at
start-up instead of failing in a retry loop later.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shipway.compiler.source import parse_quantity
from shipway.controller.historyconfig import HistorySettings, history_settings
from shipway.engine.approval import DEFAULT_APPROVAL_TIMEOUT_SECONDS
from shipway.engine.buildpods import DEFAULT_CLIENT_IMAGE, BuildConfig
from shipway.engine.checkout import DEFAULT_GIT_IMAGE, DEFAULT_MAX_SIZE, SourceSettings
from shipway.engine.docker import DEFAULT_IMAGE as DEFAULT_DOCKER_IMAGE
from shipway.engine.docker import DockerConfig
from shipway.engine.manifests import PROCESS_SEAL_KEY, PodOptions
from shipway.engine.outcome import START_GRACE_SECONDS, UNSCHEDULABLE_GRACE_SECONDS
from shipway.engine.planner import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_NAMESPACE_PODS,
    MAX_RUNNING_PODS,
    Settings,
)
from shipway.engine.pushpods import DEFAULT_PUSH_IMAGE, PushConfig
from shipway.engine.steps import RETRY_GRACE_SECONDS
from shipway.models.durations import parse_duration

RESTRICTED: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The Pod Security "restricted" profile, applied to every container with SHIPWAY_RESTRICTED_PODS."""

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A setting the operator cannot run with."""


@dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator is told by whoever runs it (not by Pipeline authors)."""

    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    """``--all-namespaces``: one pod watch for the cluster instead of one per namespace."""
    metrics_port: int | None = None
    """Serve ``/metrics`` here (``--metrics-port`` or ``SHIPWAY_METRICS_PORT``; 0: off)."""
    start_grace: float = START_GRACE_SECONDS
    """``SHIPWAY_START_GRACE``: how long a container may wait on an image pull or config."""
    unschedulable_grace: float = UNSCHEDULABLE_GRACE_SECONDS
    """``SHIPWAY_UNSCHEDULABLE_GRACE``: how long a step's pod may wait for a node."""
    default_timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    """``SHIPWAY_DEFAULT_TIMEOUT``: a pipeline's limit when it sets none ("0": none)."""
    max_running_pods: int | None = MAX_RUNNING_PODS
    """``SHIPWAY_MAX_RUNNING_PODS``: pods of one pipeline at once ("0": no limit)."""
    retry_grace: float = RETRY_GRACE_SECONDS
    """``SHIPWAY_RETRY_GRACE``: how long a retry waits for the previous attempt's pod to go."""
    max_namespace_pods: int | None = MAX_NAMESPACE_PODS
    """``SHIPWAY_MAX_NAMESPACE_PODS``: step pods of one namespace at once, all its pipelines
    together ("0": no limit)."""
    approval_timeout: float | None = DEFAULT_APPROVAL_TIMEOUT_SECONDS
    """``SHIPWAY_APPROVAL_TIMEOUT``: how long a manual gate waits by default ("0": for ever)."""
    pods: PodOptions = field(default_factory=PodOptions)
    peering: str | None = None
    """``SHIPWAY_PEERING``: overrides ``--peering``; peering is then mandatory."""
    peering_priority: int = 0
    """``SHIPWAY_PEERING_PRIORITY``: a number, or ``auto`` for a random one."""
    scanning: bool = True
    """``SHIPWAY_SCANNING``: kopf's cluster-wide watch of namespaces and CRDs."""
    build: BuildConfig = field(default_factory=BuildConfig)
    """Where ``build:`` services are built and pushed (:func:`build_config`)."""
    history: HistorySettings = field(default_factory=HistorySettings)
    """The history store and retention (``SHIPWAY_HISTORY``, ``SHIPWAY_RETAIN_*``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorConfig:
        return cls(
            metrics_port=_port(env.get("SHIPWAY_METRICS_PORT")),
            start_grace=_duration(env, "SHIPWAY_START_GRACE", START_GRACE_SECONDS),
            unschedulable_grace=_duration(
                env, "SHIPWAY_UNSCHEDULABLE_GRACE", UNSCHEDULABLE_GRACE_SECONDS
            ),
            default_timeout=_duration(env, "SHIPWAY_DEFAULT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
            or None,
            max_running_pods=_count(env, "SHIPWAY_MAX_RUNNING_PODS", MAX_RUNNING_PODS) or None,
            retry_grace=_positive(_duration(env, "SHIPWAY_RETRY_GRACE", RETRY_GRACE_SECONDS)),
            max_namespace_pods=_count(env, "SHIPWAY_MAX_NAMESPACE_PODS", MAX_NAMESPACE_PODS)
            or None,
            approval_timeout=_duration(
                env, "SHIPWAY_APPROVAL_TIMEOUT", DEFAULT_APPROVAL_TIMEOUT_SECONDS
            )
            or None,
            pods=pod_options(env),
            peering=env.get("SHIPWAY_PEERING", "").strip() or None,
            peering_priority=peering_priority(env.get("SHIPWAY_PEERING_PRIORITY")),
            scanning=flag(env, "SHIPWAY_SCANNING", default=True),
            build=build_config(env),
            history=history_settings(env, ConfigError),
        )

    def with_flags(
        self,
        *,
        namespaces: tuple[str, ...] = (),
        clusterwide: bool = False,
        metrics_port: int | None = None,
    ) -> OperatorConfig:
        """The command line's choices; a flag wins over the environment."""
        return replace(
            self,
            namespaces=namespaces,
            clusterwide=clusterwide,
            metrics_port=metrics_port if metrics_port is not None else self.metrics_port,
        )

    @property
    def settings(self) -> Settings:
        """What the planner needs of it."""
        return Settings(
            start_grace=self.start_grace,
            unschedulable_grace=self.unschedulable_grace,
            default_timeout=self.default_timeout,
            max_running_pods=self.max_running_pods,
            approval_timeout=self.approval_timeout,
            build=self.build,
            retry_grace=self.retry_grace,
            max_namespace_pods=self.max_namespace_pods,
        )


def flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (any case); empty: the default."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of {'/'.join(_TRUE)} or {'/'.join(_FALSE)}")


def build_config(env: Mapping[str, str]) -> BuildConfig:
    """The builder and the registry, as the Helm chart passes them.

    ``SHIPWAY_REGISTRY_URL`` (host[:port][/prefix]); ``SHIPWAY_BUILDKIT_ADDR`` (tcp://host:port)
    with ``SHIPWAY_BUILDKIT_CLIENT_SECRET`` (a Secret of the operator's namespace,
    ``SHIPWAY_OPERATOR_NAMESPACE``, formerly ``SHIPWAY_NAMESPACE``, with ca.crt, tls.crt and tls.key); ``SHIPWAY_BUILDKIT_CLIENT_IMAGE``;
    ``SHIPWAY_REGISTRY_PUSH_SECRET`` (a dockerconfigjson Secret there);
    ``SHIPWAY_BUILDKIT_WAIT`` and ``SHIPWAY_BUILD_TIMEOUT`` (durations);
    ``SHIPWAY_REGISTRY_INSECURE`` (a flag: plain HTTP or no TLS verification with it). Left unset against the
    local cluster, ``shipway operator`` finds the local ones itself.
    """

    def text(name: str) -> str | None:
        return env.get(name, "").strip() or None

    registry = text("SHIPWAY_REGISTRY_URL")
    if registry and "://" in registry:
        raise ConfigError(f"SHIPWAY_REGISTRY_URL is host[:port][/prefix], not a URL: {registry!r}")
    builder = text("SHIPWAY_BUILDKIT_ADDR")
    if builder and not builder.startswith(("tcp://", "unix://")):
        raise ConfigError(f"SHIPWAY_BUILDKIT_ADDR must be tcp://host:port, not {builder!r}")
    wait = _duration(env, "SHIPWAY_BUILDKIT_WAIT", 60.0)
    timeout = _duration(env, "SHIPWAY_BUILD_TIMEOUT", 3600.0)
    return BuildConfig(
        registry=registry.rstrip("/") if registry else None,
        builder=builder,
        client_secret=text("SHIPWAY_BUILDKIT_CLIENT_SECRET"),
        client_image=text("SHIPWAY_BUILDKIT_CLIENT_IMAGE") or DEFAULT_CLIENT_IMAGE,
        push_secret=text("SHIPWAY_REGISTRY_PUSH_SECRET"),
        namespace=(
            text("SHIPWAY_OPERATOR_NAMESPACE") or text("SHIPWAY_NAMESPACE") or text("POD_NAMESPACE")
        ),
        wait_seconds=max(1, int(wait)),
        timeout_seconds=max(1, int(timeout)),
        insecure=flag(env, "SHIPWAY_REGISTRY_INSECURE", default=False),
    )


def _port(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"SHIPWAY_METRICS_PORT is not a port number: {value!r}") from None


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ConfigError("SHIPWAY_RETRY_GRACE must be longer than 0")
    return seconds


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    if value == "0":
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def pod_options(env: Mapping[str, str]) -> PodOptions:
    """The step pods' cluster-wide options, from the operator's environment.

    ``SHIPWAY_RESTRICTED_PODS`` (a flag) applies :data:`RESTRICTED` to every container;
    ``SHIPWAY_DEFAULT_STEP_SERVICE_ACCOUNT`` names the ServiceAccount of step pods whose
    Pipeline sets no ``serviceAccountName``; ``SHIPWAY_STEP_TOLERATIONS`` (a JSON list of
    tolerations) and ``SHIPWAY_STEP_NODE_SELECTOR`` (a JSON object of labels) send every step
    pod to a dedicated, possibly tainted, pool of nodes. ``SHIPWAY_GIT_IMAGE`` is the image of
    checkout and upload pods (git, ssh and a shell); ``SHIPWAY_SOURCE_MAX_SIZE`` (a quantity,
    default 2Gi) the largest file a checkout may write and the ceiling of ``git.maxSize``.
    ``SHIPWAY_PUSH_IMAGE`` (crane and sh) and ``SHIPWAY_PUSH_CA_CONFIGMAP`` (a ConfigMap of
    every namespace whose ``ca.crt`` push pods trust) are how push steps run.
    """
    restricted = flag(env, "SHIPWAY_RESTRICTED_PODS", default=False)
    account = env.get("SHIPWAY_DEFAULT_STEP_SERVICE_ACCOUNT", "").strip()
    allowed = env.get("SHIPWAY_STEP_SERVICE_ACCOUNTS", "")
    own_namespace, own_account = operator_identity(env)
    return PodOptions(
        security_context=RESTRICTED if restricted else None,
        default_service_account=account or None,
        tolerations=_tolerations(env.get("SHIPWAY_STEP_TOLERATIONS", "")),
        node_selector=_node_selector(env.get("SHIPWAY_STEP_NODE_SELECTOR", "")),
        source=_source_settings(env),
        push=PushConfig(
            image=env.get("SHIPWAY_PUSH_IMAGE", "").strip() or DEFAULT_PUSH_IMAGE,
            ca_config_map=env.get("SHIPWAY_PUSH_CA_CONFIGMAP", "").strip() or None,
            insecure=flag(env, "SHIPWAY_REGISTRY_INSECURE", default=False),
        ),
        allowed_service_accounts=tuple(a.strip() for a in allowed.split(",") if a.strip()),
        operator_service_account=own_account,
        operator_namespace=own_namespace,
        docker=docker_config(env),
        seal_key=_seal_key(env),
    )


def docker_config(env: Mapping[str, str]) -> DockerConfig:
    """``add_docker``'s daemon: ``SHIPWAY_DOCKER`` (a flag, off by default),
    ``SHIPWAY_DOCKER_NAMESPACES`` (comma-separated; empty: every namespace served),
    ``SHIPWAY_DOCKER_IMAGE``, ``SHIPWAY_DOCKER_MIRROR`` (host[:port] of a Docker Hub mirror) and
    ``SHIPWAY_DOCKER_CA_CONFIGMAP`` (a ConfigMap in every namespace with the mirror's CA)."""
    mirror = env.get("SHIPWAY_DOCKER_MIRROR", "").strip() or None
    if mirror and "://" in mirror:
        raise ConfigError(f"SHIPWAY_DOCKER_MIRROR is host[:port], not a URL: {mirror!r}")
    return DockerConfig(
        enabled=flag(env, "SHIPWAY_DOCKER", default=False),
        namespaces=tuple(
            n.strip() for n in env.get("SHIPWAY_DOCKER_NAMESPACES", "").split(",") if n.strip()
        ),
        image=env.get("SHIPWAY_DOCKER_IMAGE", "").strip() or DEFAULT_DOCKER_IMAGE,
        mirror=mirror,
        ca_config_map=env.get("SHIPWAY_DOCKER_CA_CONFIGMAP", "").strip() or None,
    )


def _seal_key(env: Mapping[str, str]) -> bytes:
    """``SHIPWAY_POD_SEAL_KEY``: the key that seals the operator's pods (engine.ownership),
    at least 16 characters; unset: a key of this process alone."""
    value = env.get("SHIPWAY_POD_SEAL_KEY", "").strip()
    if not value:
        return PROCESS_SEAL_KEY
    if len(value) < 16:
        raise ConfigError("SHIPWAY_POD_SEAL_KEY must be at least 16 characters (a random secret)")
    return value.encode()


TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def operator_identity(env: Mapping[str, str], token: Path = TOKEN) -> tuple[str | None, str | None]:
    """The operator's own (namespace, ServiceAccount), which step pods may never use.

    ``SHIPWAY_OPERATOR_SERVICE_ACCOUNT`` and ``SHIPWAY_OPERATOR_NAMESPACE`` (the Helm chart
    sets both from the downward API); else, in a pod, the subject of its mounted token.
    Out of a cluster, with neither, the operator runs as a person's kubeconfig: (None, None).
    """
    name = env.get("SHIPWAY_OPERATOR_SERVICE_ACCOUNT", "").strip() or None
    namespace = env.get("SHIPWAY_OPERATOR_NAMESPACE", "").strip() or None
    if name is None:
        subject = _token_subject(token)
        if subject is not None:
            namespace, name = subject
    return namespace, name


def _token_subject(token: Path) -> tuple[str, str] | None:
    """(namespace, name) from a ServiceAccount token's ``sub``; None without a readable one."""
    try:
        payload = token.read_text().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError):
        return None
    parts = str(claims.get("sub", "")).split(":") if isinstance(claims, dict) else []
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return parts[2], parts[3]
    return None


def _source_settings(env: Mapping[str, str]) -> SourceSettings:
    image = env.get("SHIPWAY_GIT_IMAGE", "").strip() or DEFAULT_GIT_IMAGE
    size = env.get("SHIPWAY_SOURCE_MAX_SIZE", "").strip()
    try:
        max_size = parse_quantity(size) if size else DEFAULT_MAX_SIZE
    except ValueError as exc:
        raise ConfigError(f"SHIPWAY_SOURCE_MAX_SIZE: {exc}") from None
    if max_size < 1:
        raise ConfigError("SHIPWAY_SOURCE_MAX_SIZE must be positive")
    return SourceSettings(image=image, max_size=max_size)


def _json_setting(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc}") from None


def _tolerations(value: str) -> tuple[dict[str, Any], ...]:
    if not value.strip():
        return ()
    parsed = _json_setting("SHIPWAY_STEP_TOLERATIONS", value)
    if not isinstance(parsed, list) or not all(isinstance(t, dict) for t in parsed):
        raise ConfigError("SHIPWAY_STEP_TOLERATIONS must be a JSON list of toleration objects")
    return tuple(parsed)


def _node_selector(value: str) -> dict[str, str] | None:
    if not value.strip():
        return None
    parsed = _json_setting("SHIPWAY_STEP_NODE_SELECTOR", value)
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise ConfigError("SHIPWAY_STEP_NODE_SELECTOR must be a JSON object of string labels")
    return parsed or None


def peering_priority(value: str | None) -> int:
    """``SHIPWAY_PEERING_PRIORITY``: an integer (default 0), or ``auto`` for a random one.

    Replicas of one Deployment share their pod template, so they cannot be given distinct
    numbers; ``auto`` draws one from [1, 2**31), distinct with overwhelming probability
    (kopf pauses peers of equal priority rather than letting both act).
    """
    if value is None or not value.strip():
        return 0
    if value.strip().lower() == "auto":
        return random.SystemRandom().randrange(1, 2**31)
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            f"SHIPWAY_PEERING_PRIORITY must be a number or 'auto', not {value!r}"
        ) from None
