"""The in-cluster registry (CNCF distribution v3): its manifests, its configuration and the
node's containerd host configuration for it. Pure: ``addons`` applies what this decides.

* Pods reach it by its Service name ``registry.localkube-system.svc.cluster.local`` (port 443,
  through cluster DNS); the node's containerd, which does not use cluster DNS, reaches the
  same Service by its fixed ClusterIP (kube-proxy's rules apply to host processes too): a
  ``hosts.toml`` per registry name maps the name to ``https://10.96.0.20``.
* TLS: a serving certificate from the cluster CA (``pki``) naming the Service's DNS names and
  its ClusterIP. Every pod can trust it through the ``kube-root-ca.crt`` ConfigMap (or its
  service account's ``ca.crt``), which holds that CA.
* ``docker.io`` is mirrored: containerd asks the registry first (``library/busybox`` and so
  on, pushed there by ``mirror``) and Docker Hub after it.
* No authentication by default: any pod of the cluster may pull and push. With
  ``SHIPWAY_LOCALKUBE_REGISTRY_AUTH=token`` (``registrytoken``) distribution's token auth
  gives each namespace its own repositories and the mirror read-only (docs/registry.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localkube import config

NAMESPACE = config.SYSTEM_NAMESPACE
NAME = config.REGISTRY_SERVICE
HOST = config.REGISTRY_HOST
SERVICE_IP = config.REGISTRY_SERVICE_IP
#: What the registry answers at, from the host (containerd, crane) and from pods.
URL = f"https://{SERVICE_IP}"
CONTAINER_PORT = 5000
IMAGE = config.REGISTRY_IMAGE
DATA_DIR = "/var/lib/registry"
CONFIG_DIR = "/etc/registry"
#: Every name of the registry: its certificate's DNS names and containerd's host entries.
DNS_NAMES = (
    f"{NAME}.{NAMESPACE}",
    f"{NAME}.{NAMESPACE}.svc",
    HOST,
)
#: Registries whose images the in-cluster registry mirrors (the upstream is tried after it).
MIRRORED = {"docker.io": "https://registry-1.docker.io"}
DATA_SIZE = "50Gi"
LABELS = {"app.kubernetes.io/name": "registry", "app.kubernetes.io/part-of": "localkube"}


def hosts_toml(server: str, ca: Path, *, mirror: str | None = None) -> str:
    """containerd's ``hosts.toml``: ``mirror`` first (pull and resolve only), then ``server``.

    Without a mirror the registry itself is the one host entry (every capability) and the
    server: containerd 1.6 refuses a hosts.toml without a ``host`` table ("invalid `host`
    tree") and then ignores the file.
    """
    entry = mirror or server
    capabilities = '["pull", "resolve"]' if mirror else '["pull", "resolve", "push"]'
    lines = [f'server = "{server}"']
    if mirror is None:
        lines.append(f'ca = "{ca}"')
    lines += ["", f'[host."{entry}"]', f"  capabilities = {capabilities}", f'  ca = "{ca}"']
    return "\n".join(lines) + "\n"


def containerd_hosts(ca: Path) -> dict[str, str]:
    """``{directory name: hosts.toml}`` for containerd's ``config_path``."""
    files = {name: hosts_toml(URL, ca) for name in (*DNS_NAMES, SERVICE_IP)}
    for upstream, server in MIRRORED.items():
        files[upstream] = hosts_toml(server, ca, mirror=URL)
    return files


@dataclass(frozen=True)
class TokenAuth:
    """distribution's ``auth: token:``: each request needs a JWT from the token service at
    ``realm`` (``shipway registry-token serve``), signed by a key of the ``jwks`` file."""

    realm: str
    service: str
    issuer: str
    jwks: str


def token_auth_config(token: TokenAuth) -> str:
    """The ``auth:`` section: ES256 tokens only, checked against the key set."""
    return (
        "auth:\n  token:\n"
        f"    realm: {token.realm}\n"
        f"    service: {token.service}\n"
        f"    issuer: {token.issuer}\n"
        f"    jwks: {token.jwks}\n"
        "    signingalgorithms: [ES256]\n"
    )


def registry_config(*, read_only: bool = False, token: TokenAuth | None = None) -> str:
    """distribution's config.yml: filesystem storage, deletes allowed (for retention), TLS.

    ``read_only`` is the maintenance mode garbage collection runs under: pulls work, pushes
    are refused with 503, so no upload races the sweep. ``token``: every request needs a token
    of the token service (per-namespace rights).
    """
    maintenance = (
        "    readonly:\n      enabled: true\n    uploadpurging:\n      enabled: false\n"
        if read_only
        else "    uploadpurging:\n      enabled: true\n      age: 24h\n      interval: 1h\n"
        "      dryrun: false\n"
    )
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {DATA_DIR}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"  maintenance:\n{maintenance}" + (token_auth_config(token) if token else "") + "http:\n"
        f"  addr: :{CONTAINER_PORT}\n"
        "  tls:\n"
        f"    certificate: {CONFIG_DIR}/tls/tls.crt\n"
        f"    key: {CONFIG_DIR}/tls/tls.key\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
        "health:\n  storagedriver:\n    enabled: true\n    interval: 10s\n    threshold: 3\n"
    )


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "labels": dict(LABELS), **extra}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def manifests(
    tls_crt: bytes,
    tls_key: bytes,
    *,
    read_only: bool = False,
    token: TokenAuth | None = None,
    jwks: str | None = None,
) -> list[dict[str, Any]]:
    """Namespace, TLS Secret, config, data claim, Deployment and the fixed-address Service.

    ``token`` and ``jwks`` (the key set the tokens are checked against, kept in the
    ConfigMap next to the configuration): token auth on.
    """
    config_file = "readonly.yml" if read_only else "config.yml"
    pod_labels = {"app.kubernetes.io/name": "registry"}
    probe: dict[str, Any] = {
        # With token auth /v2/ answers 401 to a probe: a TCP check then.
        **(
            {"tcpSocket": {"port": "registry"}}
            if token
            else {"httpGet": {"path": "/v2/", "port": "registry", "scheme": "HTTPS"}}
        ),
        "periodSeconds": 5,
        "timeoutSeconds": 3,
    }
    config_data = {
        "config.yml": registry_config(token=token),
        "readonly.yml": registry_config(read_only=True, token=token),
    }
    auth_annotation: dict[str, Any] = {}
    if token and jwks:
        config_data[token.jwks.rsplit("/", 1)[-1]] = jwks
        # A new configuration in the ConfigMap restarts nothing by itself: the pod template
        # changes with it (and back, when token auth is turned off).
        stamp = hashlib.sha256(json.dumps(config_data, sort_keys=True).encode()).hexdigest()
        auth_annotation = {"annotations": {"localkube.shipway.dev/auth": f"token-{stamp[:16]}"}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": _meta("registry-tls"),
            "data": {"tls.crt": _b64(tls_crt), "tls.key": _b64(tls_key)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("registry-config"),
            "data": config_data,
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta("registry-data"),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": config.STORAGE_CLASS,
                "resources": {"requests": {"storage": DATA_SIZE}},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(NAME),
            "spec": {
                "replicas": 1,
                # One writer of the volume at a time.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": pod_labels},
                "template": {
                    "metadata": {"labels": {**LABELS, **pod_labels}, **auth_annotation},
                    "spec": {
                        "enableServiceLinks": False,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "registry",
                                "image": IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["serve", f"{CONFIG_DIR}/{config_file}"],
                                # distribution v3 traces through OpenTelemetry: no collector.
                                "env": [{"name": "OTEL_TRACES_EXPORTER", "value": "none"}],
                                "ports": [{"name": "registry", "containerPort": CONTAINER_PORT}],
                                "readinessProbe": probe,
                                "livenessProbe": {**probe, "failureThreshold": 6},
                                "resources": {
                                    "requests": {"cpu": "10m", "memory": "32Mi"},
                                    "limits": {"memory": "512Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": DATA_DIR},
                                    {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                                    {
                                        "name": "tls",
                                        "mountPath": f"{CONFIG_DIR}/tls",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "data",
                                "persistentVolumeClaim": {"claimName": "registry-data"},
                            },
                            {"name": "config", "configMap": {"name": "registry-config"}},
                            {"name": "tls", "secret": {"secretName": "registry-tls"}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(NAME),
            "spec": {
                "clusterIP": SERVICE_IP,
                "selector": pod_labels,
                "ports": [
                    {"name": "https", "port": 443, "targetPort": "registry", "protocol": "TCP"}
                ],
            },
        },
    ]
