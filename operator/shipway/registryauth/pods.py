"""A namespace's registry credential in its pods: the pull Secret and where pods use it.

Pure: the operator (``shipway.controller.registrycreds``) creates what these return. The
credential is the namespace's own (``credentials.namespace_password``), so a Secret holding it
gives a step of that namespace nothing it did not have: its own repositories and the mirror.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from shipway.registryauth.credentials import docker_config, namespace_password

Manifest = dict[str, Any]
CA_MOUNT = "/etc/shipway/registry-token-ca"
"""Where a build pod finds the CA of the token service's certificate (buildctl asks the
realm for tokens itself, on behalf of the shared builder)."""


def registry_host(registry: str) -> str:
    """``host[:port]`` of ``host[:port][/prefix]``: what image references and pull
    credentials name."""
    return registry.split("/", 1)[0]


def registry_prefix(registry: str) -> str:
    """The path before ``<namespace>/`` (the token service's ``--prefix``)."""
    _, _, prefix = registry.partition("/")
    return f"{prefix.strip('/')}/" if prefix.strip("/") else ""


def namespace_docker_config(key: bytes, registry: str, namespace: str) -> str:
    """The namespace's ``.dockerconfigjson``, base64 as a Secret's data holds it."""
    text = docker_config((registry_host(registry),), namespace, namespace_password(key, namespace))
    return base64.b64encode(text.encode()).decode()


def pull_secret_manifest(
    name: str,
    namespace: str,
    owner: Manifest,
    labels: Mapping[str, str],
    encoded: str,
) -> Manifest:
    """A ``kubernetes.io/dockerconfigjson`` Secret (the kubelet reads no other type) with the
    namespace's credential, owned by the Pipeline."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [owner],
        },
        "data": {".dockerconfigjson": encoded},
    }


def _images(spec: Manifest) -> list[str]:
    return [
        str(c.get("image", ""))
        for key in ("initContainers", "containers")
        for c in spec.get(key) or ()
    ]


def with_pull_secret(pod: Manifest, secret: str, registry: str) -> bool:
    """Add ``secret`` to the pod's imagePullSecrets when one of its images is in
    ``registry`` (a built image); whether it did."""
    spec = pod["spec"]
    host = registry_host(registry) + "/"
    if not any(image.startswith(host) for image in _images(spec)):
        return False
    names = spec.setdefault("imagePullSecrets", [])
    if {"name": secret} not in names:
        names.append({"name": secret})
    return True


def with_realm_trust(pod: Manifest, container: str, ca_config_map: str) -> None:
    """Make ``container`` (buildctl, which fetches the registry's tokens) trust the CA of
    ``ca_config_map`` besides the system's roots (Go reads every folder of SSL_CERT_DIR)."""
    spec = pod["spec"]
    targets = [
        c for key in ("initContainers", "containers") for c in spec.get(key) or ()
        if c.get("name") == container
    ]  # fmt: skip
    if not targets:
        return
    volumes = spec.setdefault("volumes", [])
    if not any(v.get("name") == "registry-token-ca" for v in volumes):
        volumes.append(
            {
                "name": "registry-token-ca",
                "configMap": {
                    "name": ca_config_map,
                    "optional": True,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                },
            }
        )
    for target in targets:
        mounts = target.setdefault("volumeMounts", [])
        if not any(m.get("name") == "registry-token-ca" for m in mounts):
            mounts.append({"name": "registry-token-ca", "mountPath": CA_MOUNT, "readOnly": True})
        env = [e for e in target.get("env") or () if e.get("name") != "SSL_CERT_DIR"]
        env.append({"name": "SSL_CERT_DIR", "value": f"{CA_MOUNT}:/etc/ssl/certs"})
        target["env"] = env
