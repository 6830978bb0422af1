"""Logs for kwok's fake pods, so the archiver reads real logs through the API server.

kwok plays the kubelet's API too: given a ``ClusterLogs`` resource (here in its config file,
no CRD needed) it answers ``/containerLogs/...`` for the pods it selects with a file's
content. The API server reaches a node's kubelet on the node's InternalIP and daemon port
and checks its serving certificate against the cluster CA
(``--kubelet-certificate-authority``), so the bench's kwok serves HTTPS on 127.0.0.1 with a
certificate the cluster CA signs for that address, and tells its nodes so
(``--node-ip``/``--node-port``). A ``GET pods/log`` of a bench step then goes
operator → API server → kwok → the file: the same calls as on a real node.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

LOG_LINE = "step output line {:04d}: the quick brown fox jumps over the lazy dog\n"


def log_file(directory: Path, size: int = 1024) -> Path:
    """A step log of about ``size`` bytes of output (1 KiB by default, as in the store's
    sizing), in the container runtime's (CRI) log format: kwok reads it with the kubelet's
    own log reader, which skips lines without the ``<time> stdout F`` prefix (a plain file
    reads as an empty log)."""
    lines: list[str] = []
    total = 0
    while total < size:
        line = LOG_LINE.format(len(lines))
        lines.append(f"2026-12-06T10:00:{len(lines) % 60:02d}.000000000Z stdout F {line}")
        total += len(line)
    path = directory / "step.log"
    path.write_text("".join(lines))
    return path


def cluster_logs(path: Path) -> str:
    """kwok config: every pod's every container logs ``path`` (no selector: all pods kwok
    plays, and the bench's kwok plays only its own nodes' pods)."""
    return (
        "apiVersion: kwok.x-k8s.io/v1alpha1\n"
        "kind: ClusterLogs\n"
        "metadata:\n"
        "  name: shipway-bench-logs\n"
        "spec:\n"
        "  logs:\n"
        f"    - logsFile: {path}\n"
        "      follow: false\n"
    )


DEBUGGING_OPTION = "  enableDebuggingHandlers: true\n"
"""For the KwokConfiguration's options (kwok reads only the first KwokConfiguration): kwok
answers ``/containerLogs`` only with its debugging handlers on ("Debug endpoints are
disabled", a 405 through the API server, otherwise)."""


def serving_cert(pki: Path, directory: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A kubelet serving certificate for ``address``, signed by the cluster CA in ``pki``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shipway-bench-kwok")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    crt_path, key_path = directory / "kwok-serving.crt", directory / "kwok-serving.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt_path, key_path
