"""Builds against a registry with per-namespace rights, through the operator (issue #30, item 3).

A second registry with token auth runs in a namespace of this test (the cluster's own is left
as it is), its token service (``shipway.registryauth``) in this process, wired as localkube's
token mode wires its own: HTTPS with a certificate from the cluster CA, the realm a DNS name
(crane refuses a private IP), which pods resolve through a selector-less Service and the
node's containerd through an ``/etc/hosts`` bind-mounted into the node's mount namespace (the
node's file plus that name; unmounted at the end). An operator of the test's own mints each
namespace's credential from a key Secret (``SHIPWAY_REGISTRY_CREDENTIAL_SECRET``). Then:

* a namespace builds (buildctl pushes the image and its cache with the namespace's own
  credential, fetching the tokens itself over TLS), its step runs the image through the
  kubelet with the Pipeline's pull Secret, and its push step reads the image with that
  credential (crane) and pushes it into the namespace's own folder: a normal build, push, run;
* nothing but that namespace's own credential lands in its namespace (no admin's, no
  cluster-wide push credential);
* a pod of another namespace naming that image by its path, with its own namespace's
  credential or none, is refused by the registry.

The registry's certificate is the cluster CA's too, named by its ClusterIP (the node's
containerd trusts it by a ``hosts.toml`` of that address only, removed at the end); BuildKit
pushes with ``registry.insecure``, as the shared builder is configured for the cluster's
registry names only. crane's moves (catalog, overwriting a cache tag, writing the mirror) are
tried in ``test_registry_tenancy``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localkube import config as lk_config
from localkube.addons.registry import server as lk_registry
from localkube.cluster import host as lk_host
from localkube.cluster import pki
from localkube.cluster.runtime import in_node_mounts
from localkube.config import Paths
from shipway.controller.builder import LOCAL
from shipway.registryauth.credentials import docker_config, namespace_password
from shipway.registryauth.server import make_server
from shipway.registryauth.service import Settings
from shipway.registryauth.tokens import Signer, new_key_pem

from . import crds
from .conftest import ROOT, OperatorProcess
from .kube import Cluster
from .pipelines import Kubectl
from .test_build import builds, pod_images, run_dir, steps, write

pytestmark = pytest.mark.e2e

SERVICE = "token-builds.test"
ISSUER = "shipway-registry-token"
KUBELET_REFUSED = re.compile(r"insufficient_scope|pull access denied|authorization failed")


@dataclass
class TokenCluster:
    prefix: str
    registry: str
    """The registry's ClusterIP: what images are named by."""
    key: bytes
    admin_password: str

    def namespace(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def docker_config(self, namespace: str) -> str:
        return docker_config((self.registry,), namespace, namespace_password(self.key, namespace))


def _registry_docs(realm: str, jwks: str, crt: bytes, key: bytes) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "token-registry"}
    config = (
        "version: 0.1\nlog:\n  level: info\n"
        "storage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
        "  delete:\n    enabled: true\n"
        + lk_registry.token_auth_config(
            lk_registry.TokenAuth(realm, SERVICE, ISSUER, "/etc/registry/jwks.json")
        )
        + "http:\n  addr: :5000\n  tls:\n"
        "    certificate: /etc/registry/tls.crt\n    key: /etc/registry/tls.key\n"
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "token-registry"},
            "data": {
                name: base64.b64encode(value).decode()
                for name, value in (
                    ("config.yml", config.encode()),
                    ("jwks.json", jwks.encode()),
                    ("tls.crt", crt),
                    ("tls.key", key),
                )
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "token-registry"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "registry",
                                "image": lk_registry.IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["serve", "/etc/registry/config.yml"],
                                "env": [{"name": "OTEL_TRACES_EXPORTER", "value": "none"}],
                                "ports": [{"name": "registry", "containerPort": 5000}],
                                "readinessProbe": {
                                    "tcpSocket": {"port": "registry"},
                                    "periodSeconds": 2,
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/registry"},
                                    {"name": "data", "mountPath": "/var/lib/registry"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config", "secret": {"secretName": "token-registry"}},
                            {"name": "data", "emptyDir": {"sizeLimit": "2Gi"}},
                        ],
                    },
                },
            },
        },
        REGISTRY_SERVICE,
    ]


REGISTRY_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "token-registry"},
    "spec": {
        "selector": {"app.kubernetes.io/name": "token-registry"},
        "ports": [{"port": 443, "targetPort": 5000}],
    },
}


def _token_service_docs(node_ip: str, port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "token-service"},
            "spec": {"ports": [{"name": "https", "port": port, "targetPort": port}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "token-service-host",
                "labels": {"kubernetes.io/service-name": "token-service"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    ]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def token_cluster(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not cluster.local:
        pytest.skip("serves the token service from this machine to the local cluster's node")
    prefix = f"regtok-{secrets.token_hex(3)}-"
    home = f"{prefix}registry"
    key, admin = secrets.token_bytes(32), secrets.token_urlsafe(24)
    signer = Signer(new_key_pem())
    settings = Settings(
        key=key, signer=signer, service=SERVICE, issuer=ISSUER, admin_password=admin
    )
    port = _free_port()
    paths = Paths.default()
    token_dns = f"token-service.{home}.svc.{lk_config.CLUSTER_DOMAIN}"
    keys = pki.Pki(paths.pki, "", "")
    cert = pki.CertSpec(f"e2e-{prefix}token", token_dns, dns_names=(token_dns,), server=True)
    pki.ensure_cert(keys, cert)
    made = [cert.name]
    server = make_server(
        settings, "0.0.0.0", port, tls_cert=keys.crt(cert.name), tls_key=keys.key(cert.name)
    )
    stop = threading.Event()

    def serve() -> None:
        server.timeout = 0.5
        while not stop.is_set():
            try:
                server.handle_request()
            except OSError:  # a client that gave up during the TLS handshake
                continue
        server.server_close()

    threading.Thread(target=serve, daemon=True, name="token-builds").start()
    certs_dir: Path | None = None
    hosts_mounted = False
    key_secret = f"{prefix}registry-key"
    cluster.kubectl("create", "namespace", home)
    try:
        cluster.apply(home, *_token_service_docs(lk_host.node_ip(), port))
        token_ip = cluster.json("get", "service", "token-service", "-n", home)["spec"]["clusterIP"]
        # A name, as localkube's token mode has it: crane refuses a realm at a private IP.
        # Pods resolve it through cluster DNS; the node's containerd through /etc/hosts in the
        # node's own mount namespace (the host's file plus this name; unmounted at the end).
        realm = f"https://{token_dns}:{port}/token"
        node_hosts = Path(tmp_path_factory.mktemp("node-hosts")) / "hosts"
        current = subprocess.run(
            in_node_mounts(paths, ["cat", "/etc/hosts"]), capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        node_hosts.write_text(current.rstrip("\n") + f"\n{token_ip} {token_dns}\n")
        node_hosts.chmod(0o644)
        subprocess.run(
            in_node_mounts(paths, ["mount", "--bind", str(node_hosts), "/etc/hosts"]), check=True
        )
        hosts_mounted = True
        cluster.apply(home, REGISTRY_SERVICE)
        reg_ip = cluster.json("get", "service", "token-registry", "-n", home)["spec"]["clusterIP"]
        # Its certificate from the cluster CA too, as localkube's registry has it: the node's
        # containerd checks the realm with the CA of the registry's hosts.toml.
        reg_cert = pki.CertSpec(
            f"e2e-{prefix}registry", reg_ip, ip_addresses=(reg_ip,), server=True
        )
        made.append(reg_cert.name)
        pki.ensure_cert(keys, reg_cert)
        crt, tls_key = keys.crt(reg_cert.name).read_bytes(), keys.key(reg_cert.name).read_bytes()
        cluster.apply(home, *_registry_docs(realm, json.dumps(signer.jwks()), crt, tls_key))
        cluster.kubectl("rollout", "status", "-n", home, "deploy/token-registry", "--timeout=120s")
        # The node's containerd trusts its certificate at this address (nothing else changes).
        certs_dir = paths.containerd_hosts / reg_ip
        certs_dir.mkdir(parents=True, exist_ok=True)
        (certs_dir / "hosts.toml").write_text(
            f'server = "https://{reg_ip}"\n\n[host."https://{reg_ip}"]\n'
            f'  capabilities = ["pull", "resolve"]\n  ca = "{keys.ca_crt}"\n'
        )
        cluster.apply(
            LOCAL.client_namespace,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": key_secret},
                "data": {"key": base64.b64encode(key).decode()},
            },
        )
        yield TokenCluster(prefix, reg_ip, key, admin), key_secret
    finally:
        logs = cluster.run("logs", "-n", home, "deploy/token-registry", "--tail=30", check=False)
        sys.stderr.write(f"\ntoken registry log:\n{logs.stdout[-4000:]}\n")
        if hosts_mounted:
            subprocess.run(in_node_mounts(paths, ["umount", "/etc/hosts"]), check=False)
        for name in made:  # the test's certificates, out of the cluster's PKI again
            for suffix in (".crt", ".key", ".spec"):
                (keys.dir / f"{name}{suffix}").unlink(missing_ok=True)
        stop.set()
        if certs_dir is not None:
            shutil.rmtree(certs_dir, ignore_errors=True)
        cluster.run("delete", "secret", key_secret, "-n", LOCAL.client_namespace, check=False)
        cluster.run("delete", "namespace", home, "--wait=false", check=False)


@pytest.fixture(scope="module")
def token_operator(
    cluster: Cluster, token_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenCluster]:
    reg, key_secret = token_cluster
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")]),
        "SHIPWAY_BUILDKIT_ADDR": LOCAL.builder,
        "SHIPWAY_BUILDKIT_CLIENT_SECRET": LOCAL.client_secret,
        "SHIPWAY_NAMESPACE": LOCAL.client_namespace,
        "SHIPWAY_BUILDKIT_CLIENT_IMAGE": LOCAL.client_image,
        "SHIPWAY_REGISTRY_URL": reg.registry,
        "SHIPWAY_REGISTRY_INSECURE": "true",
        "SHIPWAY_REGISTRY_CREDENTIAL_SECRET": key_secret,
        # push pods: the local crane; they and the build pods trust the cluster CA (the realm's)
        "SHIPWAY_PUSH_IMAGE": LOCAL.push_image,
        "SHIPWAY_PUSH_CA_CONFIGMAP": LOCAL.ca_config_map,
    }
    log = tmp_path_factory.mktemp("token-operator") / "operator.log"
    operator = OperatorProcess(
        [sys.executable, "-m", "shipway", "operator", "-n", f"{reg.prefix}*"], env, log
    )
    operator.start()
    try:
        yield reg
    finally:
        operator.stop()


def _tenant(cluster: Cluster, reg: TokenCluster) -> Iterator[str]:
    """A namespace the test's operator watches (and the session's does not)."""
    name = reg.namespace(secrets.token_hex(2))
    cluster.kubectl("create", "namespace", name)
    deadline = time.monotonic() + 60
    while not cluster.run("get", "serviceaccount", "default", "-n", name, check=False).stdout:
        assert time.monotonic() < deadline, "no default service account"
        time.sleep(0.5)
    yield name
    cluster.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def tenants(cluster: Cluster, token_operator: TokenCluster) -> Iterator[tuple[str, str]]:
    """Two namespaces the test's operator watches: the builder and its neighbour."""
    first, second = _tenant(cluster, token_operator), _tenant(cluster, token_operator)
    yield next(first), next(second)
    for made in (first, second):
        next(made, None)


PROJECT = {
    "codeship-services.yml": "app:\n  build: .\n  cached: true\n",
    "codeship-steps.yml": (
        "- name: show\n  service: app\n  command: cat /built.txt\n"
        "- name: push\n  service: app\n  type: push\n  image_name: $TARGET\n  image_tag: v1\n"
    ),
    "Dockerfile": "FROM busybox\nRUN echo built-by-its-namespace > /built.txt\n",
}


def pod_of_step_names_pull_secret(k: Kubectl, pod: str) -> bool:
    names = [s["name"] for s in k.json("get", "pod", pod)["spec"].get("imagePullSecrets", [])]
    return any(name.endswith("-build-pull") or "-build-" in name for name in names)


def _pull_failure(cluster: Cluster, namespace: str, pod: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cluster.json("get", "pod", pod, "-n", namespace).get("status", {})
        for cs in status.get("containerStatuses", []):
            waiting = cs.get("state", {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                return str(waiting.get("message", ""))
        time.sleep(1)
    return ""


def test_a_namespace_builds_pushes_and_runs_its_image_and_no_other_namespace_can(
    cluster: Cluster, token_operator: TokenCluster, tenants: tuple[str, str], tmp_path: Path
) -> None:
    tenant, other_tenant = tenants
    reg = token_operator
    k = Kubectl(tenant)
    crds.apply(k)
    target = f"{reg.registry}/{tenant}/pushed"  # its own folder, so its credential may push
    files = {
        **PROJECT,
        "codeship-steps.yml": PROJECT["codeship-steps.yml"].replace("$TARGET", target),
    }
    done, body = run_dir(k, write(tmp_path / "p", files), "--push")
    assert body["status"]["phase"] == "Succeeded", (done.stdout + done.stderr)[-3000:]
    app = builds(body)["app"]
    image = f"{app['image']}@{app['digest']}"
    assert image.startswith(f"{reg.registry}/{tenant}/"), image
    assert "built-by-its-namespace" in done.stdout + done.stderr
    # the push pod read the built image with the namespace's credential and pushed it
    pushed = steps(body)["push"]
    assert pushed["phase"] == "Succeeded", pushed
    assert pushed["image"] == f"{target}:v1"
    assert pushed["digest"] == app["digest"]
    pod = steps(body)["show"]["pod"]
    assert pod_images(k, pod)["app"] == image
    # What the operator wrote into the namespace: its own credential, and nothing else's.
    for secret in k.json("get", "secrets")["items"]:
        for value in (secret.get("data") or {}).values():
            text = base64.b64decode(value).decode(errors="replace")
            assert reg.admin_password not in text
            if '"auths"' in text:
                (entry,) = json.loads(text)["auths"].values()
                assert entry["username"] == tenant, secret["metadata"]["name"]

    # Another namespace runs that image by its path: refused, with its own credential or none.
    pinned = image
    assert pod_of_step_names_pull_secret(k, pod)
    pull = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "own-registry-credential"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(reg.docker_config(other_tenant).encode())
                 .decode()},
    }  # fmt: skip

    def pod_of(name: str, with_secret: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": pinned, "command": ["true"]}],
        }
        if with_secret:
            spec["imagePullSecrets"] = [{"name": "own-registry-credential"}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}

    cluster.apply(other_tenant, pull, pod_of("theirs", True), pod_of("theirs-anonymous", False))
    for name in ("theirs", "theirs-anonymous"):
        message = _pull_failure(cluster, other_tenant, name)
        assert message, f"{name}: another namespace's image was handed to this namespace's pod"
        assert KUBELET_REFUSED.search(message), message
