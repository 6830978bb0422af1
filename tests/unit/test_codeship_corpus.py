"""Codeship's own published examples (tests/codeship_examples), converted as `shipway convert --dir`.

EXPECTED is the one table of what each example does today: it converts (with exactly these
warnings), or it is refused with messages naming the limit. Work that lifts a limit (``build:``
services, ``type: push``) updates the rows it changes; docs/codeship-examples.md explains each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipway.codeship import (
    ConversionError,
    FileError,
    Options,
    WarningKind,
    convert_directory,
    default_name,
    read_aes_key,
)

CORPUS = Path(__file__).resolve().parents[1] / "codeship_examples"

# The limits, as the messages name them.
BUILD = "image builds are not supported yet"
"""Until `build:` services exist (01, 02, 03, 07, 08, 11, 15, 16, 18, 19, 20, 22, 23, 24)."""
PUSH = "push steps are not supported yet"
"""Until `type: push` exists (16, 19)."""
NO_DAEMON = "no Docker daemon in step pods"
"""A documented limit: add_docker, docker:dind, the host's docker.sock (08, 14)."""
NO_KEY = "encrypted files cannot be used"
"""No AES key: the top level's files are encrypted with Codeship's unpublished project key."""
NO_FILES = "none of codeship-services.yml, docker-compose.yml found"
"""17.caching is only a README (deprecated by Codeship)."""

LIMITS = (BUILD, PUSH, NO_DAEMON, NO_KEY)
DEPRECATED, IGNORED, NOTE = WarningKind.DEPRECATED, WarningKind.IGNORED, WarningKind.NOTE


@dataclass(frozen=True)
class Converts:
    warnings: tuple[tuple[str, WarningKind], ...] = ()
    """(where, kind) of every warning, in order."""
    secrets: int = 0


@dataclass(frozen=True)
class Refused:
    errors: dict[str, str] = field(default_factory=dict)
    """where → the limit its message names; every error of the conversion is listed."""


def builds(*services: str) -> dict[str, str]:
    return {f"{service}.build": BUILD for service in services}


EXPECTED: dict[str, Converts | Refused] = {
    ".": Refused(
        {
            **builds(
                "01demodockerfile",
                "01demodockerfiledockercompose",
                "02demo",
                "03demo",
                "07write",
                "08compiledemo",
                "08deploy",
                "08builder",
            ),
            "08builder.add_docker": NO_DAEMON,
            **builds("08app2", "11busybox"),
            "11busybox.encrypted_env_file": NO_KEY,
            **builds("15app", "16demo", "18app", "18lb", "18test", "19demo"),
            "19dockercfg_generator.build": BUILD,
            "19dockercfg_generator.encrypted_env_file": NO_KEY,
            **builds("20buildargs", "22workingdir", "23dependson", "24healthchecks"),
            "24elasticsearch.build": BUILD,
            "adddocker.add_docker": NO_DAEMON,
            "[13].type": PUSH,
            "[15].type": PUSH,
        }
    ),
    "01.dockerfile": Refused(builds("demodockerfile", "demodockerfiledockercompose")),
    "02.redis": Refused(builds("demo")),
    "03.redis-postgres": Refused(builds("demo")),
    "04.parallelised": Converts(),
    "05.matrix": Converts((("[0].type", DEPRECATED),)),
    "06.matrix-complex": Converts((("[0].type", DEPRECATED),)),
    "07.volumes": Refused(builds("write")),
    "08.deployment-container": Refused(
        {
            **builds("compiledemo", "deploy", "builder"),
            "builder.add_docker": NO_DAEMON,
            **builds("app2"),
        }
    ),
    "09.branch-only": Converts(),
    "10.lots-of-parallel": Converts(),
    # its encrypted_env_file decrypts with the codeship.aes it ships (no error for it)
    "11.encrypted-aes": Refused(builds("checker")),
    "14.add_docker": Refused({"adddocker.add_docker": NO_DAEMON}),
    "15.parallel-output-to-volume": Refused(builds("app")),
    "16.docker_push": Refused({**builds("demo"), "[1].type": PUSH}),
    "17.caching": Refused({"": NO_FILES}),
    "18.load-balancer": Refused(builds("app1", "app2", "lb", "test")),
    "19.dockercfg-service": Refused({**builds("demo", "dockercfg_generator"), "[1].type": PUSH}),
    "20.build-args": Refused(builds("app")),
    "22.working_dir": Refused(builds("app")),
    "23.depends_on": Refused(builds("app")),
    "24.healthchecks": Refused(builds("elasticsearch", "app")),
}


def directories() -> list[str]:
    found = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    return [".", *found]


def convert_like_the_cli(name: str, aes_key: bytes | None = None) -> Converts | Refused:
    """What ``shipway convert --dir`` does (client.commands._convert), with the project's
    codeship.aes as the key when the directory has one, as jet reads it."""
    directory = CORPUS / name
    options = Options(
        name=default_name(directory) if name != "." else "codeship-tool-examples",
        aes_key=aes_key if aes_key is not None else read_aes_key(directory),
    )
    try:
        conversion = convert_directory(directory, options=options)
    except FileError as exc:
        return Refused({"": NO_FILES}) if NO_FILES in str(exc) else Refused({"": str(exc)})
    except ConversionError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors:
            named = [limit for limit in LIMITS if limit in error.message]
            errors[error.where] = named[0] if named else error.message
        return Refused(errors)
    return Converts(
        tuple((w.where, w.kind) for w in conversion.warnings), secrets=len(conversion.secrets)
    )


def test_the_table_covers_every_vendored_example() -> None:
    assert sorted(EXPECTED) == directories()


@pytest.mark.parametrize("name", directories())
def test_each_example_converts_or_is_refused_naming_the_limit(name: str) -> None:
    assert convert_like_the_cli(name) == EXPECTED[name]


def test_the_corpus_summary() -> None:
    """How many of Codeship's 20 example directories (17 has no files) convert today."""
    converting = sorted(n for n, o in EXPECTED.items() if isinstance(o, Converts))
    assert converting == [
        "04.parallelised",
        "05.matrix",
        "06.matrix-complex",
        "09.branch-only",
        "10.lots-of-parallel",
    ]


def test_the_top_levels_files_are_not_decrypted_by_example_11s_key() -> None:
    """Real files of another key: refused as a wrong key, with nothing created."""
    key = read_aes_key(CORPUS / "11.encrypted-aes")
    outcome = convert_like_the_cli(".", aes_key=key)
    assert isinstance(outcome, Refused)
    for where in ("11busybox.encrypted_env_file", "19dockercfg_generator.encrypted_env_file"):
        assert "cannot be decrypted with this AES key (wrong key" in outcome.errors[where]


def test_example_11_decrypts_with_the_key_it_ships(tmp_path: Path) -> None:
    """Its only refusal is the build: the same files with an image give FOO=bar in a Secret."""
    source = CORPUS / "11.encrypted-aes"
    for name in ("codeship-steps.yml", "environment.encrypted", "codeship.aes"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    services = (source / "codeship-services.yml").read_text()
    (tmp_path / "codeship-services.yml").write_text(services.replace("build: ./", "image: busybox"))
    conversion = convert_directory(
        tmp_path, options=Options(name="encrypted-aes", aes_key=read_aes_key(tmp_path))
    )
    (secret,) = conversion.secrets
    assert sorted(secret["data"]) == ["BAZ", "FOO"]
    assert conversion.manifest["spec"]["services"]["checker"]["envFrom"] == [
        {"secretRef": {"name": secret["metadata"]["name"]}}
    ]
