"""The credential a test namespace needs when it uses the cluster's registry directly.

With the local cluster's registry on token auth (``SHIPWAY_LOCALKUBE_REGISTRY_AUTH=token``,
docs/registry.md "Per-namespace rights"), a pod pushes and pulls ``<registry>/<namespace>/…``
only with its namespace's credential, minted here from the key localkube keeps in the Secret
the operator reads (as the operator mints it); the mirror (``library/*``) needs none. Without
token auth every helper here gives nothing and pods use the registry as before.
"""

from __future__ import annotations

import base64
from typing import Any

from localkube.addons.registry import server as lk_registry
from localkube.addons.registry import token as registrytoken
from localkube.cluster.runtime import in_node_mounts
from localkube.config import Paths
from shipway.controller.builder import LOCAL
from shipway.registryauth.credentials import docker_config, namespace_password

from .kube import Cluster

SECRET = "registry-credential"
MOUNT = "/etc/registry-credential"
CA_MOUNT = "/etc/registry-token-ca"


def key(cluster: Cluster) -> bytes | None:
    """The key namespaces' credentials derive from; None when the registry is open."""
    found = cluster.run(
        "get", "secret", LOCAL.credential_secret, "-n", LOCAL.client_namespace,
        "-o", "jsonpath={.data.key}", check=False,
    )  # fmt: skip
    if found.returncode != 0 or not found.stdout.strip():
        return None
    return base64.b64decode(found.stdout.strip()).strip()


def namespace_config(cluster: Cluster, namespace: str) -> str | None:
    """The namespace's ``config.json`` for every name of the cluster's registry, or None."""
    secret = key(cluster)
    if secret is None:
        return None
    hosts = (*lk_registry.DNS_NAMES, lk_registry.SERVICE_IP)
    return docker_config(hosts, namespace, namespace_password(secret, namespace))


def ensure_secret(cluster: Cluster, namespace: str) -> bool:
    """Create the namespace's pull Secret (``SECRET``) when the registry wants one."""
    config = namespace_config(cluster, namespace)
    if config is None:
        return False
    cluster.apply(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
        },
    )
    return True


def with_credential(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` pulls with the namespace's credential and its containers' crane pushes with it
    (``DOCKER_CONFIG``), when the registry wants one; unchanged otherwise."""
    if not ensure_secret(cluster, namespace):
        return pod
    spec = pod["spec"]
    spec.setdefault("imagePullSecrets", []).append({"name": SECRET})
    spec.setdefault("volumes", []).append(
        {
            "name": SECRET,
            "secret": {
                "secretName": SECRET,
                "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
            },
        }
    )
    # The token service's certificate is the cluster CA's (clients fetch tokens themselves).
    spec["volumes"].append(
        {"name": "registry-token-ca", "configMap": {"name": LOCAL.ca_config_map}}
    )
    for container in spec["containers"]:
        container.setdefault("volumeMounts", []).extend(
            [
                {"name": SECRET, "mountPath": MOUNT, "readOnly": True},
                {"name": "registry-token-ca", "mountPath": CA_MOUNT, "readOnly": True},
            ]
        )
        container.setdefault("env", []).extend(
            [
                {"name": "DOCKER_CONFIG", "value": MOUNT},
                {"name": "SSL_CERT_DIR", "value": f"{CA_MOUNT}:/etc/ssl/certs"},
            ]
        )
    return pod


def login(cluster: Cluster, namespace: str) -> tuple[str, str] | None:
    """(user, password) of the namespace's credential, when the registry wants one."""
    secret = key(cluster)
    if secret is None:
        return None
    return namespace, namespace_password(secret, namespace)


def host_argv(paths: Paths, argv: list[str]) -> list[str]:
    """``argv`` as this machine runs a registry client (crane) against the cluster: inside
    the node's mount namespace when token auth is on, where the realm's name resolves."""
    return in_node_mounts(paths, argv) if registrytoken.active(paths) else argv


def admin_env(paths: Paths) -> dict[str, str]:
    """``DOCKER_CONFIG`` of localkube's admin when token auth is on (else nothing)."""
    if registrytoken.active(paths):
        return {"DOCKER_CONFIG": str(registrytoken.admin_config_dir(paths))}
    return {}
