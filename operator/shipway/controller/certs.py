"""A self-signed serving certificate for the webhook of an operator run outside the cluster.

kopf can make one itself, through ``certbuilder`` and ``oscrypto``; but oscrypto 1.3.0 cannot
parse OpenSSL 3.0.10 and later's version string ("Error detecting the version of libcrypto")
and has had no release since, so it fails on current Debian and Ubuntu. ``cryptography`` (already a
dependency, for Codeship's encrypted files) is maintained and ships its own OpenSSL. In-cluster the
Helm chart issues the certificate, and the operator only reads it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def self_signed(hosts: list[str], directory: Path) -> CertFiles:
    """An ECDSA P-256 certificate for ``hosts`` (names or IPs) that is its own CA.

    The API server trusts it through the webhook configuration's ``caBundle``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(directory / "tls.crt", directory / "tls.key")
    files.key.touch(mode=0o600)
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files
