"""``shipway encrypt | decrypt | keygen`` against example 11 of tests/codeship_examples (our own
fixture shaped after Codeship's: its key, plaintext and file sealed in jet's format), and an
independent AES-CFB decryption that reads what ``shipway encrypt`` writes as jet would."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from shipway.cli import main
from shipway.codeship import jetcrypt

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # cryptography < 47
    from cryptography.hazmat.primitives.ciphers.modes import CFB

AES = Path(__file__).resolve().parents[2] / "codeship_examples" / "11.encrypted-aes"
KEY = AES / "codeship.aes"
SEALED = AES / "environment.encrypted"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def variables(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_decrypt_prints_the_values_of_example_11(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["decrypt", "--key-path", str(KEY), str(SEALED)]) == 0
    out = capsys.readouterr().out
    assert variables(out) == ["GREETING=ahoy", "TOKEN=tok-7f3a9c"]
    assert variables(out) == variables((AES / "environment").read_text())


def test_decrypt_writes_the_plaintext_readable_by_the_user_only(tmp_path: Path) -> None:
    out = tmp_path / "environment"
    out.write_text("old")
    out.chmod(0o644)
    assert main(["decrypt", "--key-path", str(KEY), str(SEALED), str(out)]) == 0
    assert out.read_bytes().endswith(b"\nGREETING=ahoy\nTOKEN=tok-7f3a9c\n")
    assert mode(out) == 0o600


def test_the_key_defaults_to_codeship_aes_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(AES)
    assert main(["decrypt", "environment.encrypted", str(tmp_path / "env")]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["decrypt", str(SEALED)]) == 2
    err = capsys.readouterr().err
    assert err == (
        "shipway: codeship.aes: no such key file: give --key-path FILE or run shipway keygen\n"
    )


def independent_decrypt(sealed: bytes, key_file: Path) -> bytes:
    """AES-256-CFB straight from the library, as jet reads the file (not Shipway's code)."""
    raw = base64.b64decode(sealed)
    key = base64.b64decode(key_file.read_text())
    decryptor = Cipher(algorithms.AES(key), CFB(raw[:16])).decryptor()
    return decryptor.update(raw[16:]) + decryptor.finalize()


def test_encrypt_writes_jets_layout_and_round_trips(tmp_path: Path) -> None:
    plain = (AES / "environment").read_bytes()
    sealed, back = tmp_path / "env.encrypted", tmp_path / "env"
    assert main(["encrypt", "--key-path", str(KEY), str(AES / "environment"), str(sealed)]) == 0
    data = sealed.read_bytes()
    # as jet's files are: one base64 line without a newline, a 16-byte IV, no padding
    assert b"\n" not in data
    assert not SEALED.read_bytes().endswith(b"\n")
    assert len(base64.b64decode(data, validate=True)) == 16 + len(plain)
    assert independent_decrypt(data, KEY) == plain
    assert main(["decrypt", "--aes-key", str(KEY), str(sealed), str(back)]) == 0
    assert back.read_bytes() == plain


def test_a_wrong_key_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.aes"
    assert main(["keygen", str(other)]) == 0
    capsys.readouterr()
    out = tmp_path / "env"
    assert main(["decrypt", "--key-path", str(other), str(SEALED), str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"shipway: {SEALED}: {jetcrypt.WRONG_KEY}\n"
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"%%%", "not base64"), (b"codeship:v2\nabc", "jet decrypt")],
)
def test_what_is_not_a_jet_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, needle: str
) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert main(["decrypt", "--key-path", str(KEY), str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1


def test_binary_files_need_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = bytes(range(256))
    (tmp_path / "blob").write_bytes(blob)
    sealed = tmp_path / "blob.encrypted"
    assert main(["encrypt", "--key-path", str(KEY), str(tmp_path / "blob"), str(sealed)]) == 0
    assert main(["decrypt", "--key-path", str(KEY), str(sealed), str(tmp_path / "x")]) == 2
    assert "wrong key" in capsys.readouterr().err
    out = tmp_path / "back"
    assert main(["decrypt", "--binary", "--key-path", str(KEY), str(sealed), str(out)]) == 0
    assert out.read_bytes() == blob


def test_keygen_writes_a_codeship_key_readable_by_the_user_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    previous = os.umask(0o022)  # a usual umask: the key is 0600 all the same
    try:
        assert main(["keygen"]) == 0
    finally:
        os.umask(previous)
    key_file = tmp_path / "codeship.aes"
    text = key_file.read_text()
    assert mode(key_file) == 0o600
    assert len(text) == len(KEY.read_text()) == 44  # the published key's form: no newline
    assert len(jetcrypt.parse_key(text)) == 32
    assert "codeship.aes (mode 0600)" in capsys.readouterr().err
    # and a key it wrote encrypts and decrypts
    (tmp_path / "env").write_text("A=1\n")
    assert main(["encrypt", "env", "env.encrypted"]) == 0
    assert main(["decrypt", "env.encrypted", "back"]) == 0
    assert (tmp_path / "back").read_text() == "A=1\n"


def test_keygen_never_replaces_a_key_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "codeship.aes"
    key_file.write_text("precious")
    key_file.chmod(0o644)
    assert main(["keygen", str(key_file)]) == 2
    assert capsys.readouterr().err == f"shipway: {key_file} exists: give --force to replace it\n"
    assert key_file.read_text() == "precious"
    assert main(["keygen", "--force", str(key_file)]) == 0
    assert len(jetcrypt.parse_key(key_file.read_text())) == 32
    assert mode(key_file) == 0o600


def test_keygen_never_writes_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "codeship.aes").symlink_to(target)
    assert main(["keygen", str(tmp_path / "codeship.aes")]) == 2
    assert not target.exists()


def test_fresh_keys_differ() -> None:
    assert jetcrypt.new_key() != jetcrypt.new_key()
