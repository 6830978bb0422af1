"""BuildKit in the local cluster: buildkitd in its own namespace, reachable with client certificates.

The Kubernetes objects come from the Helm chart itself (``charts/shipway``, values
``buildkit.*``, rendered with ``helm template --show-only`` into the committed
``manifests/buildkit.yaml``, see :mod:`localkube.addons.buildkit.manifest`), so what the local cluster
runs is what the chart deploys, and the cluster needs no Helm to run it. Only the certificates are made here: a CA of the builder's own (not
the cluster's, so no Kubernetes credential is a BuildKit credential and back), the server
certificate for the Service's names, and one client certificate whose Secret lives only in
the operator's namespace (``shipway-system``; e2e tests copy it where they act as the operator).

``python -m localkube.addons.buildkit.builder [up|status|env]``; ``localkube up`` calls :func:`up`.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localkube import config
from localkube.addons.buildkit import images as buildkit_images
from localkube.addons.registry import mirror
from localkube.addons.registry import server as registry
from localkube.cluster import pki
from localkube.cluster.runtime import kubectl
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images import recipes as imageset
from localkube.images.oci import image_digests, import_archive
from localkube.toolchain import build

ROOT = config.REPO
CHART = ROOT / "charts" / "shipway"
NAMESPACE = "shipway-buildkit"
#: Where the client certificate's Secret lives: the operator's namespace, and only there.
CLIENT_NAMESPACE = "shipway-system"
CLIENT_SECRET = "shipway-buildkit-client"
SERVER_SECRET = "shipway-buildkitd-tls"
#: The chart's names for release "shipway" (templates/_helpers.tpl "shipway.buildkit.name").
RELEASE = "shipway"
NAME = "shipway-buildkitd"
SERVICE_DNS = f"{NAME}.{NAMESPACE}.svc"
ADDRESS = f"tcp://{SERVICE_DNS}:1234"
#: rootless or privileged: docs/buildkit.md has the measurements and the trade-off.
MODE = "rootless"
#: The local cache: GC keeps it under 10 GiB (the volume is a host directory, not size-capped).
CACHE = {"size": "20Gi", "maxUsedSpace": "10GiB", "reservedSpace": "1GiB", "minFreeSpace": "5GiB"}
MAX_PARALLELISM = 2
ROLLOUT_TIMEOUT = 180


def log(msg: str) -> None:
    print(f"localkube: buildkit: {msg}", flush=True)


# -- certificates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_crt: Path
    server_key: Path
    client_crt: Path
    client_key: Path


def cert_specs(service_ip: str) -> tuple[pki.CertSpec, ...]:
    names = (NAME, f"{NAME}.{NAMESPACE}", SERVICE_DNS, f"{SERVICE_DNS}.{config.CLUSTER_DOMAIN}")
    return (
        pki.CertSpec("buildkitd", NAME, (), (*names, "localhost"),
                     ("127.0.0.1", service_ip) if service_ip else ("127.0.0.1",), server=True),
        pki.CertSpec("client", "shipway-build", ("shipway",), client=True),
    )  # fmt: skip


def ensure_certs(paths: Paths, service_ip: str) -> Certs:
    """The builder's CA and certificates under the cluster's PKI directory (re-issued on change)."""
    d = paths.pki / "buildkit"
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    store = pki.Pki(d, "", "")
    if not (store.crt("ca").exists() and store.key("ca").exists()):
        pki._make_ca(store, "ca", "shipway-buildkit-ca")
    for spec in cert_specs(service_ip):
        stamp = d / f"{spec.name}.spec"
        current = stamp.exists() and stamp.read_text() == spec.fingerprint()
        if current and store.crt(spec.name).exists():
            continue
        pki._issue(store, spec)
        stamp.write_text(spec.fingerprint())
    return Certs(store.crt("ca"), store.crt("buildkitd"), store.key("buildkitd"),
                 store.crt("client"), store.key("client"))  # fmt: skip


def client_certs(paths: Paths) -> Certs:
    """The certificates ``up`` issued (the client's is what the host uses to build)."""
    d = paths.pki / "buildkit"
    certs = Certs(d / "ca.crt", d / "buildkitd.crt", d / "buildkitd.key",
                  d / "client.crt", d / "client.key")  # fmt: skip
    if not certs.client_key.is_file():
        raise LocalkubeError(
            f"no BuildKit client certificate in {d}: run `python -m localkube.addons.buildkit.builder up`"
        )
    return certs


def tls_secret(name: str, namespace: str, ca: Path, crt: Path, *, key: Path) -> dict[str, Any]:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "shipway", "shipway.dev/buildkit": "tls"},
        },
        "data": {"ca.crt": b64(ca), "tls.crt": b64(crt), "tls.key": b64(key)},
    }


# -- the chart's objects -------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    """The in-cluster registry buildkitd pulls through (docker.io mirror) and pushes to."""

    host: str
    ca_pem: str


def local_registry(paths: Paths) -> Registry:
    """localkube's registry: its Service name, its certificate from the cluster CA."""
    return Registry(registry.HOST, (paths.pki / "ca.crt").read_text())


def chart_values(reg: Registry | None, *, mode: str = MODE) -> dict[str, Any]:
    """The chart's ``buildkit`` values for the local builder."""
    registries: dict[str, Any] = {}
    if reg is not None:
        registries = {
            "docker.io": {"mirrors": [reg.host]},
            reg.host: {"ca": reg.ca_pem},
        }
    return {
        "fullnameOverride": RELEASE,
        "buildkit": {
            "deploy": True,
            "mode": mode,
            "image": buildkit_images.BUILDKIT_IMAGE,
            "imagePullPolicy": "Never",
            "serverSecret": SERVER_SECRET,
            "clientSecret": CLIENT_SECRET,
            "clientImage": buildkit_images.BUILDCTL_IMAGE,
            "maxParallelism": MAX_PARALLELISM,
            "cache": {**CACHE, "storageClassName": config.STORAGE_CLASS},
            "registries": registries,
            # The local network (CNI bridge) enforces no NetworkPolicy: rendering one would
            # only pretend. The client certificate is the access control here.
            "networkPolicy": {"enabled": False},
        },
    }


# -- deploy ----------------------------------------------------------------------------------


def ensure_images(paths: Paths) -> None:
    """buildkitd's and buildctl's images into containerd; the frontend into the registry."""
    present = image_digests(address=paths.containerd_socket)
    for key in ("buildkitd", "buildctl"):
        info = imageset.ensure_archive(buildkit_images.RECIPES[key], paths)
        if present.get(info.ref) != info.manifest_digest:
            import_archive(info.archive, address=paths.containerd_socket)
    frontend = imageset.ensure_archive(buildkit_images.RECIPES["dockerfile-frontend"], paths)
    repo, tags = buildkit_images.FRONTEND_REPO, buildkit_images.FRONTEND_TAGS
    stale = [
        t for t in tags
        if mirror.remote_digest(paths, f"{registry.SERVICE_IP}/{repo}:{t}")
        != frontend.manifest_digest
    ]  # fmt: skip
    if stale:
        log(f"pushing docker.io/{repo}:{','.join(stale)} (the Dockerfile frontend)")
        mirror.push(paths, frontend, repo, stale)


def _apply(paths: Paths, docs: list[dict[str, Any]] | str) -> None:
    text = docs if isinstance(docs, str) else json.dumps({"apiVersion": "v1", "kind": "List",
                                                         "items": docs})  # fmt: skip
    kubectl(paths, "apply", "-f", "-", input=text)


def up(paths: Paths, reg: Registry | None = None) -> str:
    """Deploy (or update) the builder and wait for it; return its address."""
    reg = reg or local_registry(paths)
    started = time.monotonic()
    build.build(build.BUILDKIT, paths)
    ensure_images(paths)
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        for ns in (NAMESPACE, CLIENT_NAMESPACE)
    ]
    _apply(paths, namespaces)
    _forget_other_mode(paths, MODE)
    from localkube.addons.buildkit import manifest as buildkit_manifest  # it imports this module

    manifest = buildkit_manifest.objects(reg.ca_pem)
    _apply(paths, manifest)  # the Service first gets its address, which the certificate names
    service_ip = kubectl(
        paths, "get", "service", NAME, "-n", NAMESPACE, "-o", "jsonpath={.spec.clusterIP}"
    ).strip()
    certs = ensure_certs(paths, service_ip)
    _apply(paths, [
        tls_secret(SERVER_SECRET, NAMESPACE, certs.ca, certs.server_crt, key=certs.server_key),
        tls_secret(CLIENT_SECRET, CLIENT_NAMESPACE, certs.ca, certs.client_crt, key=certs.client_key),
    ])  # fmt: skip
    wait_ready(paths)
    log(f"buildkitd is ready at {ADDRESS} ({time.monotonic() - started:.0f}s)")
    return ADDRESS


def running_mode(paths: Paths) -> str | None:
    """The mode of the deployed builder (its container's command says it), or None."""
    command = kubectl(
        paths, "get", "statefulset", NAME, "-n", NAMESPACE, "--ignore-not-found",
        "-o", "jsonpath={.spec.template.spec.containers[0].command[0]}", check=False,
    ).strip()  # fmt: skip
    if not command:
        return None
    return "rootless" if command == "rootlesskit" else "privileged"


def _forget_other_mode(paths: Paths, mode: str) -> None:
    """Switching modes drops the builder and its cache: a privileged builder's files belong
    to root, which the rootless user cannot write (and the cache is only a cache)."""
    current = running_mode(paths)
    if current is None or current == mode:
        return
    log(f"switching buildkitd from {current} to {mode}: dropping it and its cache volume")
    kubectl(paths, "delete", "statefulset", NAME, "-n", NAMESPACE, "--wait=true",
            "--timeout=120s")  # fmt: skip
    kubectl(paths, "delete", "pvc", f"cache-{NAME}-0", "-n", NAMESPACE, "--ignore-not-found",
            "--wait=true", "--timeout=120s")  # fmt: skip


def wait_ready(paths: Paths, timeout: int = ROLLOUT_TIMEOUT) -> None:
    """Wait for the builder's pod; on timeout, say what its pod is doing."""
    out = kubectl(
        paths, "-n", NAMESPACE, "rollout", "status", f"statefulset/{NAME}",
        f"--timeout={timeout}s", check=False,
    )  # fmt: skip
    if "rolled out" in out or "partitioned roll out complete" in out:
        return
    pod = kubectl(paths, "-n", NAMESPACE, "get", "pod", f"{NAME}-0", "-o", "wide",
                          check=False)  # fmt: skip
    logs = kubectl(paths, "-n", NAMESPACE, "logs", f"{NAME}-0", "--tail=20",
                           check=False)  # fmt: skip
    raise LocalkubeError(
        f"buildkitd ({NAMESPACE}/{NAME}) is not ready after {timeout}s:\n{pod}\n{logs}"
    )


def status(paths: Paths) -> str:
    return kubectl(paths, "-n", NAMESPACE, "get", "statefulset,pod,pvc,service",
                           "-o", "wide", check=False)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.addons.buildkit.builder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("command", choices=["up", "status", "env"])
    args = parser.parse_args(argv)
    paths = Paths.default()
    try:
        if args.command == "up":
            print(up(paths))
        elif args.command == "status":
            print(status(paths))
        else:
            print(f"export BUILDKIT_HOST={ADDRESS}")
            print(f"# client certificate: secret {CLIENT_NAMESPACE}/{CLIENT_SECRET}")
    except LocalkubeError as exc:
        print(f"localkube: buildkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
