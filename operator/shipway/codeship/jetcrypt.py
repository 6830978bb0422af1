"""Codeship's encrypted files (``jet encrypt``), read and written with the project's AES key.

The format, checked on Codeship's published example (codeship/codeship-tool-examples'
``11.encrypted-aes``, which publishes its key, plaintext and ciphertext; not kept in this
repository, whose tests pin the mode with NIST's CFB128-AES256 known answer): the file is the
base64 of a 16-byte IV followed by the AES-256-CFB ciphertext; the key file ``codeship.aes`` is
the base64 of the 32-byte key. CFB has no integrity check, so a wrong key is recognised by its result: random
bytes instead of text (and, for variables, instead of ``KEY=VALUE`` lines).

Files written by jet 2.6 and later may start with ``codeship:v2`` (signed with a checksum). No
published sample comes with its key, so that layout cannot be checked here: such files are
refused with a message saying how to turn them into something Shipway reads.

Nothing here prints or logs, and no error message quotes decrypted text.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # cryptography < 47: CFB was still one of the primitive modes
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from shipway.compiler.errors import ShipwayError

KEY_BYTES = 32
IV_BYTES = 16
SIGNED_HEADER = "codeship:v2"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class JetCryptError(ShipwayError):
    """A key or encrypted file Shipway cannot use; the message never quotes plaintext."""


def parse_key(text: str | bytes) -> bytes:
    """The AES key from the contents of ``codeship.aes`` (base64 of 32 bytes)."""
    raw = text.encode() if isinstance(text, str) else text
    try:
        key = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise JetCryptError("the AES key is not base64 (expected codeship.aes)") from None
    if len(key) != KEY_BYTES:
        raise JetCryptError(
            f"the AES key holds {len(key)} bytes, not {KEY_BYTES} (expected codeship.aes)"
        )
    return key


def new_key() -> str:
    """A fresh key in ``codeship.aes``'s form: the base64 of 32 random bytes (44 characters,
    like the key Codeship's project settings hand out)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _cipher(key: bytes, iv: bytes) -> Cipher[CFB]:
    if len(key) != KEY_BYTES:
        raise JetCryptError(f"the AES key holds {len(key)} bytes, not {KEY_BYTES}")
    return Cipher(algorithms.AES(key), CFB(iv))


def encrypt(plaintext: bytes, key: bytes, iv: bytes | None = None) -> str:
    """What ``jet encrypt`` (before 2.6) writes: base64 of IV + AES-256-CFB ciphertext."""
    iv = os.urandom(IV_BYTES) if iv is None else iv
    if len(iv) != IV_BYTES:
        raise JetCryptError(f"the IV must be {IV_BYTES} bytes")
    encryptor = _cipher(key, iv).encryptor()
    return base64.b64encode(iv + encryptor.update(plaintext) + encryptor.finalize()).decode()


def decrypt(content: str | bytes, key: bytes) -> bytes:
    """The plaintext bytes of a jet-encrypted file or value (no check that the key was right)."""
    raw = content.encode() if isinstance(content, str) else content
    raw = raw.strip()
    if raw.startswith(SIGNED_HEADER.encode()):
        raise JetCryptError(
            f"signed by jet 2.6 or later ({SIGNED_HEADER!r} header), a format Shipway cannot "
            "verify yet: decrypt it with `jet decrypt FILE OUT`, then store the variables in "
            "a Secret (kubectl create secret generic NAME --from-env-file=OUT) and convert with "
            "--env-secret SERVICE=NAME, or re-encrypt OUT in the unsigned format, which jet "
            "also reads: shipway encrypt OUT FILE"
        )
    try:
        data = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise JetCryptError("not a jet-encrypted file: the content is not base64") from None
    if len(data) <= IV_BYTES:
        raise JetCryptError(
            f"not a jet-encrypted file: {len(data)} bytes, shorter than the {IV_BYTES}-byte IV"
        )
    decryptor = _cipher(key, data[:IV_BYTES]).decryptor()
    return decryptor.update(data[IV_BYTES:]) + decryptor.finalize()


WRONG_KEY = "cannot be decrypted with this AES key (wrong key, or not a jet-encrypted file)"


def decrypt_text(content: str | bytes, key: bytes) -> str:
    """The plaintext as text; JetCryptError when the result is not text (the wrong key)."""
    plain = decrypt(content, key)
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise JetCryptError(WRONG_KEY) from None
    if _CONTROL.search(text):
        raise JetCryptError(WRONG_KEY)
    return text


@dataclass(frozen=True)
class Variables:
    """The ``KEY=VALUE`` lines of a decrypted env file, in order (later ones win)."""

    values: dict[str, str]
    without_value: tuple[int, ...] = ()
    """Line numbers of bare names (docker takes those from the host, which a Pod lacks)."""


def parse_variables(text: str) -> Variables:
    """Docker's env-file format: ``KEY=VALUE`` taken literally, ``#`` comments, blank lines.

    A line that is not a variable means the key was wrong (or the file is not an env file); the
    error names the line number only.
    """
    values: dict[str, str] = {}
    bare: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not _VARIABLE.fullmatch(key):
            raise JetCryptError(
                f"line {number} is not KEY=VALUE (wrong AES key, or not a file of variables)"
            )
        if sep:
            values[key] = value
        else:
            bare.append(number)
    return Variables(values, tuple(bare))


def decrypt_variables(content: str | bytes, key: bytes) -> Variables:
    """An ``encrypted_env_file`` (or one ``encrypted_environment`` entry) as variables."""
    return parse_variables(decrypt_text(content, key))
