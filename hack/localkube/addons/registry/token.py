"""Per-namespace rights on the local cluster's registry (issue #30, item 3), on by default.

``localkube up`` runs the main registry with distribution's token auth, with Shipway's token
service (``shipway registry-token serve``) as its realm. ``SHIPWAY_LOCALKUBE_REGISTRY_AUTH``
unset or ``token`` keeps it so (the default); ``none`` leaves the registry open, as it was before.
What each identity may do is ``shipway.registryauth.policy``'s: a namespace pulls and pushes
``<namespace>/…``, anyone pulls the mirror (``library/*``, ``docker/*``: so kubelet pulls of
``image: busybox`` need no credential), nothing lists the catalog or writes the mirror but the
admin, whose credential stays on the host (localkube's mirror seeding, retention and the
operator image's push use it). The operator's image (``shipway-dev/``) is public like the
mirror.

Where the token service runs, and why: a host process of localkube (like the API server),
listening on ``0.0.0.0:5001`` with a certificate from the cluster CA. Its realm is
``https://registry-token.localkube-system.svc.cluster.local:5001/token``, a DNS name, because
crane (go-containerregistry 0.22) refuses a realm at a private IP literal unless it is the
registry's own host:port. Pods resolve the name through cluster DNS (a selector-less Service
whose endpoint is the node's address); the node's containerd, which has no cluster DNS, gets it
from an ``/etc/hosts`` bind-mounted into the node's own mount namespace (never the host's), and
localkube's own crane runs inside that namespace too (``mirror.crane``).

Keys live in the state directory (0600), made once: the credential key (also in the Secret
``shipway-registry-credentials`` of ``shipway-system``, where the operator finds it and mints
each namespace's credential), the token signing key (the registry trusts its public half, a
``jwks`` file in its ConfigMap) and the admin's password (only in the host's admin
``config.json``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from localkube import config
from localkube.addons.registry import server as registry
from localkube.cluster import pki
from localkube.config import Paths
from localkube.errors import LocalkubeError

SETTING = "SHIPWAY_LOCALKUBE_REGISTRY_AUTH"
NAME = "registry-token"
NAMESPACE = config.SYSTEM_NAMESPACE
HOST = f"{NAME}.{NAMESPACE}.svc.{config.CLUSTER_DOMAIN}"
PORT = 5001
REALM = f"https://{HOST}:{PORT}/token"
SERVICE = registry.HOST
"""The registry's ``auth.token.service``: the tokens' audience."""
ISSUER = "shipway-registry-token"
ADMIN_USER = "_admin"
JWKS_KEY = "jwks.json"
CREDENTIAL_NAMESPACE = "shipway-system"
CREDENTIAL_SECRET = "shipway-registry-credentials"
"""Where the operator finds the key (``shipway.controller.builder.LocalCluster``)."""
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "localkube"}
CERT = pki.CertSpec(
    NAME,
    HOST,
    dns_names=(f"{NAME}.{NAMESPACE}", f"{NAME}.{NAMESPACE}.svc", HOST),
    server=True,
)
ROOT = config.REPO
PUBLIC_PREFIXES = ("library/", "docker/", "shipway-dev/")
"""Anyone pulls, only the admin pushes: the docker.io mirror and the operator's own image
(``buildkit_build.OPERATOR_REPOSITORY``, which the chart's e2e install pulls)."""


def wanted(env: dict[str, str] | None = None) -> bool:
    """Whether ``up`` turns token auth on (the setting; on by default: a registry every
    namespace could write, the mirror included, is not one a CI cluster should have)."""
    value = (env if env is not None else dict(os.environ)).get(SETTING, "").strip().lower()
    if value in ("none", "off"):
        return False
    if value in ("", "token"):
        return True
    raise LocalkubeError(f"{SETTING} is 'token' or 'none', not {value!r}")


# -- state ----------------------------------------------------------------------------------


def _dir(paths: Paths) -> Path:
    return paths.state / NAME


def _secret_file(path: Path, make: bytes) -> bytes:
    if path.is_file():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.write_bytes(make)
    return make


def key_file(paths: Paths) -> Path:
    return _dir(paths) / "credential.key"


def signing_key_file(paths: Paths) -> Path:
    return _dir(paths) / "signing.pem"


def admin_password_file(paths: Paths) -> Path:
    return _dir(paths) / "admin.password"


def admin_config_dir(paths: Paths) -> Path:
    """``DOCKER_CONFIG`` of localkube's own crane while token auth is on (absent when off)."""
    return _dir(paths) / "admin-docker"


def node_hosts_file(paths: Paths) -> Path:
    return _dir(paths) / "node-hosts"


def active(paths: Paths) -> bool:
    """Token auth is on (``up`` left the admin's config): crane must use it."""
    return (admin_config_dir(paths) / "config.json").is_file()


def prepare(paths: Paths, keys: pki.Pki) -> None:
    """Make the keys (once), the service's certificate and the admin's crane config."""
    from shipway.registryauth.credentials import docker_config
    from shipway.registryauth.tokens import new_key_pem

    _secret_file(key_file(paths), secrets.token_urlsafe(48).encode())
    _secret_file(signing_key_file(paths), new_key_pem())
    admin = _secret_file(admin_password_file(paths), secrets.token_urlsafe(24).encode())
    pki.ensure_cert(keys, CERT)
    hosts = (registry.SERVICE_IP, *registry.DNS_NAMES)
    conf = admin_config_dir(paths) / "config.json"
    conf.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf.touch(mode=0o600)
    conf.write_text(docker_config(hosts, ADMIN_USER, admin.decode().strip()))


def turn_off(paths: Paths) -> None:
    """Back to no authentication: localkube's crane stops sending the admin's credential."""
    conf = admin_config_dir(paths) / "config.json"
    if conf.is_file():
        conf.unlink()


def jwks(paths: Paths) -> str:
    from shipway.registryauth.tokens import Signer

    return json.dumps(Signer(signing_key_file(paths).read_bytes()).jwks())


def token_auth() -> registry.TokenAuth:
    return registry.TokenAuth(
        realm=REALM, service=SERVICE, issuer=ISSUER, jwks=f"{registry.CONFIG_DIR}/{JWKS_KEY}"
    )


# -- the host process -----------------------------------------------------------------------


def argv(paths: Paths, keys: pki.Pki) -> list[str]:
    """``shipway registry-token serve`` from this checkout, with the project's interpreter."""
    return [
        sys.executable, "-m", "shipway", "registry-token", "serve",
        "--key-file", str(key_file(paths)),
        "--signing-key-file", str(signing_key_file(paths)),
        "--admin-password-file", str(admin_password_file(paths)),
        "--service", SERVICE,
        "--issuer", ISSUER,
        "--listen", f"0.0.0.0:{PORT}",
        *(arg for p in PUBLIC_PREFIXES for arg in ("--public-prefix", p)),
        "--tls-cert", str(keys.crt(NAME)),
        "--tls-key", str(keys.key(NAME)),
    ]  # fmt: skip


def env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")])}


def health_url() -> str:
    return f"https://127.0.0.1:{PORT}/healthz"


# -- the node's name for it -------------------------------------------------------------------


def node_hosts(host_hosts: str) -> str:
    """The node's ``/etc/hosts``: the host's, and the token service's name at the loopback
    (the service listens there; containerd asks for tokens at the realm by name)."""
    lines = [line for line in host_hosts.splitlines() if HOST not in line.split()[1:]]
    return "\n".join([*lines, f"127.0.0.1 {HOST}", ""])


# -- manifests --------------------------------------------------------------------------------


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def manifests(node_ip: str, credential_key: bytes) -> list[dict[str, Any]]:
    """The Service pods reach the host process by, and the key the operator mints from.

    Each Namespace comes before what lives in it: on a new cluster this runs before the
    registry's own manifests (the registry's config names this service), so nothing has
    made ``localkube-system`` yet."""
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": dict(LABELS)}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"ports": [{"name": "https", "port": PORT, "targetPort": PORT}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                **meta,
                "name": f"{NAME}-host",
                "labels": {**LABELS, "kubernetes.io/service-name": NAME},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": PORT, "protocol": "TCP"}],
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CREDENTIAL_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": CREDENTIAL_SECRET,
                "namespace": CREDENTIAL_NAMESPACE,
                "labels": dict(LABELS),
            },
            "data": {"key": _b64(credential_key)},
        },
    ]
