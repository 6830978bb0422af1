"""The signed token distribution checks: a JWT (ES256) and the key set it trusts.

distribution's ``auth: token:`` takes a ``jwks`` file: the public key, named by its RFC 7638
thumbprint, which the token's ``kid`` header repeats. So no certificate is needed, only a P-256
key the token service keeps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from shipway.registryauth.policy import Scope

ALGORITHM = "ES256"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _coordinates(key: ec.EllipticCurvePublicKey) -> tuple[str, str]:
    numbers = key.public_numbers()
    return b64url(numbers.x.to_bytes(32, "big")), b64url(numbers.y.to_bytes(32, "big"))


def new_key_pem() -> bytes:
    """A fresh P-256 private key (PKCS #8 PEM) for the token service."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Claims:
    issuer: str
    audience: str
    subject: str
    access: tuple[Scope, ...]
    issued_at: int
    expires_at: int

    def payload(self, jti: str) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.audience,
            "iat": self.issued_at,
            "nbf": self.issued_at - 10,
            "exp": self.expires_at,
            "jti": jti,
            "access": [s.claim() for s in self.access],
        }


class Signer:
    """Signs tokens with the service's private key; tells its public half as a JWKS."""

    def __init__(self, pem: bytes) -> None:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("the token signing key must be an EC P-256 private key (PEM)")
        self._key = key
        x, y = _coordinates(key.public_key())
        self._public = {"crv": "P-256", "kty": "EC", "x": x, "y": y}
        canonical = json.dumps(self._public, separators=(",", ":"), sort_keys=True)
        self.kid = b64url(hashlib.sha256(canonical.encode()).digest())

    def jwks(self) -> dict[str, Any]:
        """The key set for distribution's ``jwks`` option."""
        return {"keys": [{**self._public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def sign(self, claims: Claims) -> str:
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": self.kid}
        body = claims.payload(secrets.token_urlsafe(12))
        signing_input = ".".join(
            b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, body)
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of ``token`` if a key of ``jwks`` signed it (raises ValueError otherwise).

    What distribution does, for tests and for ``shipway registry-token`` checks.
    """
    try:
        head, body, signature = token.split(".")
        header = json.loads(unb64url(head))
        key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    except (ValueError, KeyError, StopIteration) as exc:
        raise ValueError(f"not a token of this key set: {exc}") from None
    if header.get("alg") != ALGORITHM:
        raise ValueError(f"unexpected algorithm {header.get('alg')!r}")
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(unb64url(key["x"]), "big"),
        int.from_bytes(unb64url(key["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw = unb64url(signature)
    if len(raw) != 64:
        raise ValueError("bad signature length")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad signature") from None
    claims: dict[str, Any] = json.loads(unb64url(body))
    return claims
