"""A namespace's registry credential in its pods: the pull Secret and where pods use it.

Pure: the operator (``shipway.controller.registrycreds``) creates what these return. The
credential is the namespace's own (``credentials.namespace_password``), so a Secret holding it
gives a step of that namespace nothing it did not have: its own repositories and the mirror.
"""

from __future__ import annotations

import base64
import json
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
    *,
    owner: Manifest,
    labels: Mapping[str, str],
    encoded: str,
) -> Manifest:
    """A ``kubernetes.io/dockerconfigjson`` Secret (the kubelet reads no other type) with the
    namespace's credential, owned by the Pipeline; ``username`` and ``password`` too, for
    the push pods' crane login."""
    config = json.loads(base64.b64decode(encoded))
    (entry,) = list(config["auths"].values())[:1]
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
        "data": {
            ".dockerconfigjson": encoded,
            "username": base64.b64encode(entry["username"].encode()).decode(),
            "password": base64.b64encode(entry["password"].encode()).decode(),
        },
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


PUSH_CONTAINER = "push"
_PUSH_ANCHOR = 'say "copying $SHIPWAY_SOURCE to $SHIPWAY_TARGET"'
# Run in the push pod before its copy: its credentials (a Secret's, a generator's or none) are
# copied into a writable config, and the namespace's own credential for the cluster's registry
# (the copy's source) is added to it with crane's own login.
SOURCE_LOGIN = r"""
if [ -n "${SHIPWAY_SOURCE_USER:-}" ]; then
  mkdir -p "$tmp/source-docker"
  given="${DOCKER_CONFIG:-$HOME/.docker}/config.json"
  if [ -s "$given" ]; then cat "$given" > "$tmp/source-docker/config.json"
  else echo '{"auths":{}}' > "$tmp/source-docker/config.json"; fi
  export DOCKER_CONFIG="$tmp/source-docker"
  printf '%s' "$SHIPWAY_SOURCE_PASSWORD" | crane auth login "$SHIPWAY_SOURCE_REGISTRY" \
    -u "$SHIPWAY_SOURCE_USER" --password-stdin > "$tmp/login" 2>&1 ||
    fail "the namespace's credential for $SHIPWAY_SOURCE_REGISTRY was not accepted: $(tail -n 2 "$tmp/login")"
fi
"""


def with_source_login(pod: Manifest, secret: str, registry: str, namespace: str) -> bool:
    """Let a push pod read its source, a built image in ``registry``, with the namespace's
    credential (``password`` of the pull Secret ``secret``) besides its own target's."""
    host = registry_host(registry)
    for container in pod["spec"].get("containers") or ():
        if container.get("name") != PUSH_CONTAINER:
            continue
        env = container.get("env") or []
        source = next((e.get("value", "") for e in env if e.get("name") == "SHIPWAY_SOURCE"), "")
        command = container.get("command") or []
        if not source.startswith(host + "/") or len(command) < 3 or _PUSH_ANCHOR not in command[2]:
            return False
        command[2] = command[2].replace(_PUSH_ANCHOR, SOURCE_LOGIN.strip() + "\n" + _PUSH_ANCHOR)
        container["env"] = [
            *env,
            {"name": "SHIPWAY_SOURCE_REGISTRY", "value": host},
            {"name": "SHIPWAY_SOURCE_USER", "value": namespace},
            {
                "name": "SHIPWAY_SOURCE_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}},
            },
        ]
        return True
    return False
