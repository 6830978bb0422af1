"""A second registry that wants a password: where push steps push in the e2e tests and demo.

The same distribution image as the main registry (``registry``), with htpasswd authentication
and a serving certificate from the cluster CA, so pods trust it through ``kube-root-ca.crt``
as they trust the main one. Its storage is an ``emptyDir``: what is pushed there is test
output. Pods reach it as ``registry-auth.localkube-system.svc.cluster.local``.

The one user is ``shipway``; its password is made once and kept in the state directory and
in the Secret ``registry-auth-credentials`` of ``localkube-system`` (``username``,
``password`` and a ready ``.dockerconfigjson``), from where tests and the demo copy it.
"""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from pathlib import Path
from typing import Any

from localkube import config
from localkube.addons import rollout as addons
from localkube.addons.registry import server as registry
from localkube.cluster import pki
from localkube.cluster.runtime import kubectl
from localkube.config import Paths

NAME = "registry-auth"
NAMESPACE = config.SYSTEM_NAMESPACE
HOST = f"{NAME}.{NAMESPACE}.svc.{config.CLUSTER_DOMAIN}"
USER = "shipway"
CREDENTIALS_SECRET = f"{NAME}-credentials"
REALM = "localkube registry-auth"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "localkube"}
CERT = pki.CertSpec(
    NAME,
    HOST,
    dns_names=(f"{NAME}.{NAMESPACE}", f"{NAME}.{NAMESPACE}.svc", HOST),
    server=True,
)


def htpasswd_line(user: str, password: str) -> str:
    """``user:bcrypt`` as distribution's htpasswd wants (bcrypt only), from libcrypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}"


def docker_config(user: str, password: str, host: str = HOST) -> str:
    """A ``.dockerconfigjson`` for ``host``."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"username": user, "password": password, "auth": auth}}})


def registry_config() -> str:
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        f"storage:\n  filesystem:\n    rootdirectory: {registry.DATA_DIR}\n"
        "  delete:\n    enabled: true\n"
        "auth:\n"
        f"  htpasswd:\n    realm: {REALM}\n    path: {registry.CONFIG_DIR}/auth/htpasswd\n"
        "http:\n"
        f"  addr: :{registry.CONTAINER_PORT}\n"
        "  tls:\n"
        f"    certificate: {registry.CONFIG_DIR}/tls/tls.crt\n"
        f"    key: {registry.CONFIG_DIR}/tls/tls.key\n"
    )


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def manifests(tls_crt: bytes, tls_key: bytes, htpasswd: str, password: str) -> list[dict[str, Any]]:
    """Its Secrets, config, Deployment and Service (the namespace is the main registry's)."""

    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": NAMESPACE, "labels": dict(LABELS)}

    probe = {"tcpSocket": {"port": "registry"}, "periodSeconds": 5}
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(f"{NAME}-server"),
            "type": "Opaque",
            "data": {
                "tls.crt": _b64(tls_crt),
                "tls.key": _b64(tls_key),
                "htpasswd": _b64(htpasswd + "\n"),
                "config.yml": _b64(registry_config()),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(CREDENTIALS_SECRET),
            "type": "kubernetes.io/dockerconfigjson",
            "data": {
                ".dockerconfigjson": _b64(docker_config(USER, password)),
                "username": _b64(USER),
                "password": _b64(password),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(NAME),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": dict(LABELS)},
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
                                "image": registry.IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["serve", f"{registry.CONFIG_DIR}/config.yml"],
                                "env": [{"name": "OTEL_TRACES_EXPORTER", "value": "none"}],
                                "ports": [
                                    {"name": "registry", "containerPort": registry.CONTAINER_PORT}
                                ],
                                "readinessProbe": probe,
                                "resources": {
                                    "requests": {"cpu": "10m", "memory": "32Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": registry.DATA_DIR},
                                    {
                                        "name": "server",
                                        "mountPath": registry.CONFIG_DIR,
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "data", "emptyDir": {"sizeLimit": "4Gi"}},
                            {
                                "name": "server",
                                "secret": {
                                    "secretName": f"{NAME}-server",
                                    "items": [
                                        {"key": "config.yml", "path": "config.yml"},
                                        {"key": "htpasswd", "path": "auth/htpasswd"},
                                        {"key": "tls.crt", "path": "tls/tls.crt"},
                                        {"key": "tls.key", "path": "tls/tls.key"},
                                    ],
                                },
                            },
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(NAME),
            "spec": {
                "selector": {"app.kubernetes.io/name": NAME},
                "ports": [{"name": "https", "port": 443, "targetPort": "registry"}],
            },
        },
    ]


def password(paths: Paths) -> str:
    """The user's password, made on first use and kept (0600) in the state directory."""
    path: Path = paths.state / f"{NAME}.password"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_urlsafe(18)
    path.touch(mode=0o600)
    path.write_text(made + "\n")
    return made


def ensure(paths: Paths) -> None:
    """Deployed and answering (idempotent): its certificate, Secrets, Deployment, Service."""
    keys = pki.Pki(paths.pki, "", "")
    pki.ensure_cert(keys, CERT)
    secret = password(paths)
    docs = manifests(
        keys.crt(NAME).read_bytes(),
        keys.key(NAME).read_bytes(),
        htpasswd_line(USER, secret),
        secret,
    )
    current = kubectl(
        paths, "-n", NAMESPACE, "get", "secret", CREDENTIALS_SECRET, "-o", "name", check=False
    )
    if current:
        # Keep the htpasswd (a new salt would restart the registry for nothing).
        docs = [d for d in docs if d["metadata"]["name"] != f"{NAME}-server"] + [
            d for d in docs if d["metadata"]["name"] == f"{NAME}-server" and not _same(paths, d)
        ]
    addons.apply(paths, docs, "the password-protected registry")
    kubectl(paths, "-n", NAMESPACE, "rollout", "status", f"deployment/{NAME}", "--timeout=120s")


def _same(paths: Paths, doc: dict[str, Any]) -> bool:
    """The server Secret in the cluster matches ``doc`` but for the htpasswd's salt."""
    out = kubectl(
        paths, "-n", NAMESPACE, "get", "secret", f"{NAME}-server", "-o", "json", check=False
    )
    if not out:
        return False
    data = json.loads(out).get("data") or {}
    wanted = doc["data"]
    return all(data.get(k) == wanted[k] for k in ("tls.crt", "tls.key", "config.yml")) and bool(
        data.get("htpasswd")
    )
