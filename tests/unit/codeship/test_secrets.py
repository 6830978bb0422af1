"""Encrypted variables with the project's AES key → a Secret next to the Pipeline, envFrom it."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from shipway.codeship import (
    Conversion,
    ConversionError,
    FileError,
    Options,
    convert_directory,
    read_aes_key,
)
from shipway.codeship.jetcrypt import encrypt, parse_key

EXAMPLE = Path(__file__).resolve().parents[2] / "codeship_examples" / "11.encrypted-aes"
KEY = parse_key((EXAMPLE / "codeship.aes").read_text())
OTHER_KEY = bytes(range(32))
STEPS = "- service: app\n  command: printenv\n"
PLAINTEXT = "s3cr3t-Value"


def project(tmp_path: Path, services: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "codeship-services.yml").write_text(services)
    (tmp_path / "codeship-steps.yml").write_text(STEPS)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    return tmp_path


def sealed(text: str, key: bytes = KEY) -> str:
    return encrypt(text.encode(), key)


def convert(root: Path, **options: Any) -> Conversion:
    return convert_directory(root, options=Options(name="demo", **options))


def refused(root: Path, **options: Any) -> list[str]:
    with pytest.raises(ConversionError) as info:
        convert(root, **options)
    return [f"{e.where}: {e.message}" for e in info.value.errors]


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_codeships_example_decrypts_into_a_secret_the_service_reads(tmp_path: Path) -> None:
    """Fixture 11, with an image instead of its build: its variables reach the step."""
    root = project(
        tmp_path,
        "app:\n  image: busybox\n  encrypted_env_file: environment.encrypted\n",
    )
    shutil.copy(EXAMPLE / "environment.encrypted", root)
    conversion = convert(root, aes_key=KEY)
    (secret,) = conversion.secrets
    name = secret["metadata"]["name"]
    assert name.startswith("demo-app-env-")
    assert secret["kind"] == "Secret"
    assert secret["type"] == "Opaque"
    assert secret_values(secret) == {"GREETING": "ahoy", "TOKEN": "tok-7f3a9c"}
    assert secret["metadata"]["annotations"] == {
        "shipway.dev/decrypted-from": "environment.encrypted"
    }
    service = conversion.manifest["spec"]["services"]["app"]
    assert service == {"image": "busybox", "envFrom": [{"secretRef": {"name": name}}]}


def test_no_plaintext_in_the_pipeline_the_warnings_or_reprs(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "app:\n  image: busybox\n  encrypted_env_file: env.encrypted\n",
        {"env.encrypted": sealed(f"TOKEN={PLAINTEXT}\n")},
    )
    conversion = convert(root, aes_key=KEY)
    visible = json.dumps(conversion.manifest) + repr(conversion) + repr(conversion.warnings)
    assert PLAINTEXT not in visible
    assert secret_values(conversion.secrets[0]) == {"TOKEN": PLAINTEXT}
    # a wrong key's error does not quote what it decrypted either
    errors = refused(root, aes_key=OTHER_KEY)
    assert errors == [
        "app.encrypted_env_file: env.encrypted: cannot be decrypted with this AES key (wrong key, or not a jet-encrypted file)"
    ]


def test_the_name_is_deterministic_and_follows_the_contents(tmp_path: Path) -> None:
    services = "app:\n  image: busybox\n  encrypted_env_file: env.encrypted\n"
    root = project(tmp_path, services, {"env.encrypted": sealed("A=1\n")})
    first = convert(root, aes_key=KEY).secrets[0]["metadata"]["name"]
    # a new encryption of the same variables (new IV) keeps the name
    (root / "env.encrypted").write_text(sealed("A=1\n"))
    assert convert(root, aes_key=KEY).secrets[0]["metadata"]["name"] == first
    (root / "env.encrypted").write_text(sealed("A=2\n"))
    assert convert(root, aes_key=KEY).secrets[0]["metadata"]["name"] != first
    assert len(first) <= 63


def test_codeships_order_encrypted_wins_over_plain_and_the_file_over_the_list(
    tmp_path: Path,
) -> None:
    first, second = sealed("A=list\nB=list\n"), sealed("B=list2\nC=list2\n")
    services = f"""
app:
  image: busybox
  environment:
    A: plain
    KEEP: plain
  encrypted_environment:
    - {first}
    - {second}
  encrypted_env_file: env.encrypted
"""
    root = project(tmp_path, services, {"env.encrypted": sealed("C=file\n")})
    conversion = convert(root, aes_key=KEY)
    assert secret_values(conversion.secrets[0]) == {"A": "list", "B": "list2", "C": "file"}
    service = conversion.manifest["spec"]["services"]["app"]
    # in a Pod env would win over envFrom: the plain A is dropped so the encrypted one wins
    assert service["environment"] == {"KEEP": "plain"}
    assert conversion.secrets[0]["metadata"]["annotations"]["shipway.dev/decrypted-from"] == (
        "encrypted_environment[0], encrypted_environment[1], env.encrypted"
    )
    assert [w.where for w in conversion.warnings] == ["app.environment", "app"]


def test_the_secret_goes_to_the_pipelines_namespace(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "app:\n  image: busybox\n  encrypted_env_file: e\n",
        {"e": sealed("A=1\n")},
    )
    conversion = convert(root, aes_key=KEY, namespace="ci")
    assert conversion.secrets[0]["metadata"]["namespace"] == "ci"
    assert conversion.manifest["metadata"]["namespace"] == "ci"


def test_a_named_secret_wins_over_decrypting(tmp_path: Path) -> None:
    root = project(tmp_path, "app:\n  image: busybox\n  encrypted_env_file: missing.encrypted\n")
    conversion = convert(root, aes_key=KEY, env_secrets={"app": "app-env"})
    assert conversion.secrets == ()
    assert conversion.manifest["spec"]["services"]["app"]["envFrom"] == [
        {"secretRef": {"name": "app-env"}}
    ]


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({}, "cannot read env.encrypted"),
        ({"env.encrypted": "codeship:v2\nAAAA"}, "jet decrypt"),
        ({"env.encrypted": sealed("not a variable line\n")}, "line 1 is not KEY=VALUE"),
    ],
    ids=["missing", "signed-v2", "not-variables"],
)
def test_files_that_cannot_be_used_are_errors(
    tmp_path: Path, files: dict[str, str], needle: str
) -> None:
    root = project(tmp_path, "app:\n  image: busybox\n  encrypted_env_file: env.encrypted\n", files)
    (error,) = refused(root, aes_key=KEY)
    assert error.startswith("app.encrypted_env_file: ")
    assert needle in error


def test_without_a_key_the_conversion_still_refuses(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "app:\n  image: busybox\n  encrypted_env_file: e\n",
        {"e": sealed("A=1\n")},
    )
    (error,) = refused(root)
    assert "--env-secret" in error


def test_bare_names_are_left_out_with_a_warning(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "app:\n  image: busybox\n  encrypted_env_file: e\n",
        {"e": sealed("A=1\nHOST_VAR\n")},
    )
    conversion = convert(root, aes_key=KEY)
    assert secret_values(conversion.secrets[0]) == {"A": "1"}
    assert any("e line 2" in w.message for w in conversion.warnings)


# -- the key file ------------------------------------------------------------------------------


def test_the_key_is_codeship_aes_in_the_project_unless_named(tmp_path: Path) -> None:
    assert read_aes_key(tmp_path) is None
    shutil.copy(EXAMPLE / "codeship.aes", tmp_path)
    assert read_aes_key(tmp_path) == KEY
    other = tmp_path / "other.aes"
    other.write_text(base64.b64encode(OTHER_KEY).decode() + "\n")
    assert read_aes_key(tmp_path, other) == OTHER_KEY


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "No such file"), ("short", "not base64"), ("c2hvcnQ=", "holds 5 bytes")],
)
def test_an_unusable_key_file_is_a_file_error(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    key_file = tmp_path / "k.aes"
    if content is not None:
        key_file.write_text(content)
    with pytest.raises(FileError, match=needle):
        read_aes_key(tmp_path, key_file)
