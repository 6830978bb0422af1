"""Our fixtures shaped after Codeship's examples (tests/codeship_examples), converted as
`shipway run --dir`.

EXPECTED is the one table of what each example does today: it converts (with exactly these
warnings), or it is refused with messages naming the limit. Work that lifts a limit (``build:``
services, ``type: push``) updates the rows it changes; docs/codeship-examples.md explains each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

CORPUS = Path(__file__).resolve().parents[2] / "codeship_examples"

# The limits, as the messages name them.
NO_KEY = "need the project's AES key"
"""No AES key: 20's args and the top level's files are sealed with a key that is in no
directory (variables, build args and registry credentials alike)."""
NO_FILES = "none of codeship-services.yml, docker-compose.yml found"
"""17.caching is only a README (deprecated by Codeship)."""

LOOPBACK = "where localhost is the pod itself and no registry listens"
"""16 and 19 push to a registry started by hand on the developer's machine, as with jet."""

LIMITS = (NO_KEY, LOOPBACK)
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


def old_dockerfile_path(*services: str) -> tuple[tuple[str, WarningKind], ...]:
    """``build.dockerfile_path``: Codeship's old spelling, converted with a warning."""
    return tuple((f"{service}.build.dockerfile_path", DEPRECATED) for service in services)


EXPECTED: dict[str, Converts | Refused] = {
    ".": Refused(
        {
            "reader11.encrypted_env_file": NO_KEY,
            "credentials19.encrypted_env_file": NO_KEY,
            "app20.build.encrypted_args_file": NO_KEY,
            "app20.build.encrypted_args": NO_KEY,
            "[14].encrypted_dockercfg_path": NO_KEY,
        }
    ),
    "01.dockerfile": Converts(old_dockerfile_path("rubyapp")),
    "02.redis": Converts(old_dockerfile_path("counter")),
    "03.redis-postgres": Converts(old_dockerfile_path("counter")),
    "04.parallelised": Converts(),
    "05.matrix": Converts((("[0].type", DEPRECATED),)),
    "06.matrix-complex": Converts((("[0].type", DEPRECATED),)),
    "07.volumes": Converts(old_dockerfile_path("producer")),
    # add_docker converts: whether a daemon runs is the cluster's choice (engine/docker.py)
    "08.deployment-container": Converts((("fromdaemon.dockerfile", IGNORED),)),
    "09.branch-only": Converts(),
    "10.lots-of-parallel": Converts(),
    # its encrypted_env_file decrypts with the codeship.aes it holds
    "11.encrypted-aes": Converts((("reader.encrypted_env_file", NOTE),), secrets=1),
    "14.add_docker": Converts(),
    "15.parallel-output-to-volume": Converts(),
    # a push to localhost:5000: nothing listens there in a push pod (refused, naming why)
    "16.docker_push": Refused({"[1].image_name": LOOPBACK}),
    "17.caching": Refused({"": NO_FILES}),
    "18.load-balancer": Converts(
        (
            *old_dockerfile_path("web1", "web2"),
            ("proxy.ports", IGNORED),
            *old_dockerfile_path("proxy", "probe"),
        )
    ),
    # as 16 (its dockercfg_service would run the built credentials writer before the push)
    "19.dockercfg-service": Refused({"[1].image_name": LOOPBACK}),
    "20.build-args": Refused(
        {"app.build.encrypted_args": NO_KEY, "app.build.encrypted_args_file": NO_KEY}
    ),
    "22.working_dir": Converts(),
    "23.depends_on": Converts(),
    "24.healthchecks": Converts(),
}


def directories() -> list[str]:
    found = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    return [".", *found]


UPLOAD: dict[str, Any] = {"upload": {}}
"""The source ``shipway run --dir`` gives: the directory itself (builds need one)."""


def convert_like_the_cli(name: str, aes_key: bytes | None = None) -> Converts | Refused:
    """What ``shipway run --dir`` converts (``convert --upload``): the directory as the
    source, with the project's codeship.aes as the key when it has one, as jet reads it."""
    directory = CORPUS / name
    options = Options(
        name=default_name(directory) if name != "." else "codeship-examples",
        aes_key=aes_key if aes_key is not None else read_aes_key(directory),
        source=UPLOAD,
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


def test_the_table_covers_every_example() -> None:
    assert sorted(EXPECTED) == directories()


@pytest.mark.parametrize("name", directories())
def test_each_example_converts_or_is_refused_naming_the_limit(name: str) -> None:
    assert convert_like_the_cli(name) == EXPECTED[name]


def test_the_corpus_summary() -> None:
    """How many of the 20 example directories (17 has no files) convert today."""
    converting = sorted(n for n, o in EXPECTED.items() if isinstance(o, Converts))
    assert converting == [
        "01.dockerfile",
        "02.redis",
        "03.redis-postgres",
        "04.parallelised",
        "05.matrix",
        "06.matrix-complex",
        "07.volumes",
        "08.deployment-container",
        "09.branch-only",
        "10.lots-of-parallel",
        "11.encrypted-aes",
        "14.add_docker",
        "15.parallel-output-to-volume",
        "18.load-balancer",
        "22.working_dir",
        "23.depends_on",
        "24.healthchecks",
    ]


def test_builds_convert_into_shipways_spelling() -> None:
    """Example 02: the old dockerfile_path becomes dockerfile, the context stays the root."""
    conversion = convert_directory(
        CORPUS / "02.redis", options=Options(name="redis", source=UPLOAD)
    )
    counter = conversion.manifest["spec"]["services"]["counter"]
    assert counter["build"] == {"image": "visit-counter", "dockerfile": "Dockerfile"}
    assert "image" not in counter


def test_the_top_levels_files_are_not_decrypted_by_example_11s_key() -> None:
    """Files sealed with another key: refused as a wrong key, with nothing created."""
    key = read_aes_key(CORPUS / "11.encrypted-aes")
    outcome = convert_like_the_cli(".", aes_key=key)
    assert isinstance(outcome, Refused)
    for where in ("reader11.encrypted_env_file", "credentials19.encrypted_env_file"):
        assert "cannot be decrypted with this AES key (wrong key" in outcome.errors[where]


def test_example_11_decrypts_with_the_key_it_holds(tmp_path: Path) -> None:
    """The same files with an image (no build, so no source needed) give its variables in a
    Secret."""
    source = CORPUS / "11.encrypted-aes"
    for name in ("codeship-steps.yml", "environment.encrypted", "codeship.aes"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    services = (source / "codeship-services.yml").read_text()
    (tmp_path / "codeship-services.yml").write_text(services.replace("build: ./", "image: busybox"))
    conversion = convert_directory(
        tmp_path, options=Options(name="encrypted-aes", aes_key=read_aes_key(tmp_path))
    )
    (secret,) = conversion.secrets
    assert sorted(secret["data"]) == ["GREETING", "TOKEN"]
    assert conversion.manifest["spec"]["services"]["reader"]["envFrom"] == [
        {"secretRef": {"name": secret["metadata"]["name"]}}
    ]


def test_without_a_source_a_build_says_to_give_one() -> None:
    with pytest.raises(ConversionError) as info:
        convert_directory(CORPUS / "02.redis", options=Options(name="redis"))
    (error,) = info.value.errors
    assert error.where == ""
    assert error.message.startswith("a build needs the project's files (counter build from")
    assert "--git-remote" in error.message
    assert "--upload" in error.message
