"""Codeship's encrypted files (jet's format), with the key and files of our fixture 11.

Our fixtures are sealed by ``jetcrypt.encrypt`` itself, so the mode is also pinned by a
standard known answer (NIST SP 800-38A's CFB128-AES256 vector) that no code of ours produced.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipway.codeship import jetcrypt
from shipway.codeship.jetcrypt import JetCryptError

EXAMPLES = Path(__file__).resolve().parents[2] / "codeship_examples"
AES = EXAMPLES / "11.encrypted-aes"
OPERATOR = Path(__file__).resolve().parents[3] / "operator"


def example_key() -> bytes:
    return jetcrypt.parse_key((AES / "codeship.aes").read_text())


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_decrypts_example_11() -> None:
    text = jetcrypt.decrypt_text((AES / "environment.encrypted").read_text(), example_key())
    assert text == (AES / "environment").read_text()
    assert lines(text) == ["GREETING=ahoy", "TOKEN=tok-7f3a9c"]
    variables = jetcrypt.decrypt_variables(
        (AES / "environment.encrypted").read_bytes(), example_key()
    )
    assert variables.values == {"GREETING": "ahoy", "TOKEN": "tok-7f3a9c"}
    assert variables.without_value == ()


@pytest.mark.parametrize(
    "encrypted",
    [
        "11.encrypted-aes/environment.encrypted.ci",
        "dockercfg.encrypted",
        "dockercfg.env.encrypted",
        "20.build-args/build_args.encrypted",
    ],
)
def test_files_of_another_key_are_refused_as_a_wrong_key(encrypted: str) -> None:
    """The corpus's other files were sealed with a key that is in no directory."""
    with pytest.raises(JetCryptError, match="wrong key"):
        jetcrypt.decrypt_variables((EXAMPLES / encrypted).read_text(), example_key())


def test_encrypt_round_trips_in_jets_layout() -> None:
    key = example_key()
    iv = bytes(range(16))
    sealed = jetcrypt.encrypt(b"FOO=bar\n", key, iv=iv)
    assert base64.b64decode(sealed)[:16] == iv
    assert len(base64.b64decode(sealed)) == 16 + len("FOO=bar\n")
    assert jetcrypt.decrypt_variables(sealed, key).values == {"FOO": "bar"}
    # a fresh IV each time: the same plaintext never gives the same file
    assert jetcrypt.encrypt(b"FOO=bar\n", key) != jetcrypt.encrypt(b"FOO=bar\n", key)


def test_the_cipher_is_aes256_cfb128_as_the_nist_known_answer_says() -> None:
    """SP 800-38A, F.3.17 (CFB128-AES256.Encrypt), first two blocks: jet's Go cipher.NewCFB
    is this full-block CFB, so a file of ours is the IV followed by exactly these bytes."""
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    cipher = bytes.fromhex("dc7e84bfda79164b7ecd8486985d386039ffed143b28b1c832113c6331e5407b")
    assert jetcrypt.encrypt(plain, key, iv=iv) == base64.b64encode(iv + cipher).decode()
    assert jetcrypt.decrypt(base64.b64encode(iv + cipher), key) == plain


def test_reencrypting_the_plaintext_with_its_iv_gives_the_file() -> None:
    sealed = (AES / "environment.encrypted").read_text().strip()
    iv = base64.b64decode(sealed)[:16]
    plain = jetcrypt.decrypt(sealed, example_key())
    assert jetcrypt.encrypt(plain, example_key(), iv=iv) == sealed


@pytest.mark.parametrize(
    ("key", "needle"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"x" * 16).decode(), "holds 16 bytes, not 32"),
        ("", "holds 0 bytes"),
    ],
)
def test_bad_keys_are_refused(key: str, needle: str) -> None:
    with pytest.raises(JetCryptError, match=needle):
        jetcrypt.parse_key(key)


def test_the_key_file_may_end_with_a_newline() -> None:
    assert jetcrypt.parse_key((AES / "codeship.aes").read_text() + "\n") == example_key()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("%%%", "not base64"),
        (base64.b64encode(b"short").decode(), "shorter than the 16-byte IV"),
        ("codeship:v2\nabcdef", "jet decrypt"),
    ],
)
def test_content_that_is_not_a_jet_file_is_refused(content: str, needle: str) -> None:
    with pytest.raises(JetCryptError, match=needle):
        jetcrypt.decrypt(content, example_key())


def test_text_that_is_not_variables_is_refused_by_line_number_only() -> None:
    key = example_key()
    sealed = jetcrypt.encrypt(b"FOO=bar\nsecret value here\n", key)
    with pytest.raises(JetCryptError) as info:
        jetcrypt.decrypt_variables(sealed, key)
    assert "line 2" in str(info.value)
    assert "secret" not in str(info.value)


def test_bare_names_are_reported_by_line() -> None:
    key = example_key()
    sealed = jetcrypt.encrypt(b"# c\nFOO=a=b\nTOKEN\n\n", key)
    variables = jetcrypt.decrypt_variables(sealed, key)
    assert variables.values == {"FOO": "a=b"}
    assert variables.without_value == (3,)


def test_falls_back_to_the_primitive_cfb_of_older_cryptography() -> None:
    """Before cryptography 47 there is no decrepit CFB; the module still loads and decrypts.

    Run in a fresh interpreter, so that no other test sees the module loaded that way. The
    primitive modes module is imported first (today it re-exports the decrepit CFB), then the
    decrepit module is hidden while Shipway's module loads, as on those versions.
    """
    script = (
        "import sys, warnings\n"
        "import cryptography.hazmat.primitives.ciphers.modes\n"
        "name = 'cryptography.hazmat.decrepit.ciphers.modes'\n"
        "decrepit, sys.modules[name] = sys.modules[name], None\n"
        "warnings.simplefilter('ignore')\n"
        "from shipway.codeship import jetcrypt\n"
        "sys.modules[name] = decrepit\n"
        f"key = jetcrypt.parse_key(open({str(AES / 'codeship.aes')!r}).read())\n"
        f"text = open({str(AES / 'environment.encrypted')!r}).read()\n"
        "print(jetcrypt.decrypt_variables(text, key).values)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(OPERATOR)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'GREETING': 'ahoy', 'TOKEN': 'tok-7f3a9c'}"
