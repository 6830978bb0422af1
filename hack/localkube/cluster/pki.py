"""The cluster's certificates and keys, made with the ``openssl`` command line (ECDSA P-256).

Three CAs, as kubeadm does: one for etcd (so no Kubernetes client certificate can talk to
etcd), one for the aggregation layer's front proxy, and one for everything else. A certificate is re-issued whenever what it should say
(subject, names, addresses, usage) changes, e.g. when the node's address changes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localkube import config
from localkube.process import run

CERT_DAYS = 3650


@dataclass(frozen=True)
class CertSpec:
    name: str
    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    server: bool = False
    client: bool = False
    ca: str = "ca"

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Pki:
    """Paths of every file in the cluster's PKI directory."""

    dir: Path
    node_ip: str
    hostname: str
    specs: tuple[CertSpec, ...] = field(default=())

    def crt(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def ca_crt(self) -> Path:
        return self.crt("ca")

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def cert_specs(node_ip: str, hostname: str) -> tuple[CertSpec, ...]:
    node_user = f"system:node:{config.NODE_NAME}"
    apiserver_dns = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{config.CLUSTER_DOMAIN}",
        "localhost",
        hostname,
        config.NODE_NAME,
    )
    return (
        CertSpec(
            "etcd-server", "etcd-server", (), ("localhost",), ("127.0.0.1",), True, True, "etcd-ca"
        ),
        CertSpec("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True, ca="etcd-ca"),
        CertSpec(
            "apiserver",
            "kube-apiserver",
            dns_names=apiserver_dns,
            ip_addresses=("127.0.0.1", config.KUBERNETES_SERVICE_IP, node_ip),
            server=True,
        ),
        CertSpec(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            ("system:masters",),
            client=True,
        ),
        CertSpec("admin", "kubernetes-admin", ("system:masters",), client=True),
        CertSpec("controller-manager", "system:kube-controller-manager", client=True),
        CertSpec("scheduler", "system:kube-scheduler", client=True),
        CertSpec("kube-proxy", "system:kube-proxy", client=True),
        CertSpec("kubelet-client", node_user, ("system:nodes",), client=True),
        CertSpec(
            "kubelet-server",
            node_user,
            ("system:nodes",),
            ("localhost", hostname, config.NODE_NAME),
            ("127.0.0.1", node_ip),
            server=True,
        ),
        CertSpec("kwok", "localkube-kwok", ("system:masters",), client=True),
        # The aggregation layer: the API server's identity towards extension API servers.
        CertSpec("front-proxy-client", "front-proxy-client", client=True, ca="front-proxy-ca"),
        # The in-cluster registry: its Service names for pods, its ClusterIP for the node.
        CertSpec(
            "registry",
            config.REGISTRY_HOST,
            dns_names=(
                f"{config.REGISTRY_SERVICE}.{config.SYSTEM_NAMESPACE}",
                f"{config.REGISTRY_SERVICE}.{config.SYSTEM_NAMESPACE}.svc",
                config.REGISTRY_HOST,
                "localhost",
            ),
            ip_addresses=(config.REGISTRY_SERVICE_IP, "127.0.0.1"),
            server=True,
        ),
    )


def ensure(pki_dir: Path, node_ip: str, hostname: str) -> Pki:
    """Create (or complete, or refresh) the PKI in ``pki_dir`` and return its paths."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki_dir.chmod(0o700)
    specs = cert_specs(node_ip, hostname)
    pki = Pki(pki_dir, node_ip, hostname, specs)
    for ca, cn in (
        ("ca", "localkube-ca"),
        ("etcd-ca", "localkube-etcd-ca"),
        ("front-proxy-ca", "localkube-front-proxy-ca"),
    ):
        if not (pki.crt(ca).exists() and pki.key(ca).exists()):
            _make_ca(pki, ca, cn)
    for spec in specs:
        ensure_cert(pki, spec)
    if not (pki.sa_key.exists() and pki.sa_pub.exists()):
        _new_key(pki.sa_key)
        run(["openssl", "pkey", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub)])
    return pki


def ensure_cert(pki: Pki, spec: CertSpec) -> None:
    """Issue ``spec`` unless its certificate is there and says what it should."""
    stamp = pki.dir / f"{spec.name}.spec"
    if (
        pki.crt(spec.name).exists()
        and pki.key(spec.name).exists()
        and stamp.exists()
        and stamp.read_text() == spec.fingerprint()
    ):
        return
    _issue(pki, spec)
    stamp.write_text(spec.fingerprint())


def _new_key(path: Path) -> None:
    run(
        [
            "openssl", "genpkey", "-algorithm", "EC",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path),
        ]
    )  # fmt: skip
    path.chmod(0o600)


def _make_ca(pki: Pki, name: str, common_name: str) -> None:
    _new_key(pki.key(name))
    run(
        [
            "openssl", "req", "-x509", "-new", "-key", str(pki.key(name)),
            "-out", str(pki.crt(name)), "-days", str(CERT_DAYS), "-subj", f"/CN={common_name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ]
    )  # fmt: skip


def _subject(spec: CertSpec) -> str:
    return "".join(f"/O={o}" for o in spec.organizations) + f"/CN={spec.common_name}"


def _extensions(spec: CertSpec) -> str:
    usages: list[str] = []
    if spec.server:
        usages.append("serverAuth")
    if spec.client:
        usages.append("clientAuth")
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    sans = [f"DNS:{d}" for d in _unique(spec.dns_names)] + [
        f"IP:{ip}" for ip in _unique(spec.ip_addresses)
    ]
    if sans:
        lines.append(f"subjectAltName={','.join(sans)}")
    return "\n".join(lines) + "\n"


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _issue(pki: Pki, spec: CertSpec) -> None:
    key, crt = pki.key(spec.name), pki.crt(spec.name)
    csr = pki.dir / f"{spec.name}.csr"
    ext = pki.dir / f"{spec.name}.ext"
    _new_key(key)
    run(["openssl", "req", "-new", "-key", str(key), "-out", str(csr), "-subj", _subject(spec)])
    ext.write_text(_extensions(spec))
    run(
        [
            "openssl", "x509", "-req", "-in", str(csr),
            "-CA", str(pki.crt(spec.ca)), "-CAkey", str(pki.key(spec.ca)),
            "-set_serial", str(secrets.randbits(63)), "-days", str(CERT_DAYS),
            "-extfile", str(ext), "-out", str(crt),
        ]
    )  # fmt: skip
    csr.unlink()
    ext.unlink()
