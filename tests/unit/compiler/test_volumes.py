"""Volumes become subPaths of one claim; volumes_from is transitive; nothing escapes."""

from __future__ import annotations

import pytest

from shipway.compiler.errors import FieldError
from shipway.compiler.volumes import ANONYMOUS_ROOT, Mount, parse_volume, resolve_mounts
from shipway.models import Service


@pytest.mark.parametrize(
    ("entry", "mount"),
    [
        ("./tmp:/app", Mount("tmp", "/app")),
        ("tmp:/app", Mount("tmp", "/app")),
        ("./:/code", Mount("", "/code")),
        (".:/code", Mount("", "/code")),
        ("./a/b/../c:/x/", Mount("a/c", "/x")),
        ("./tmp:/app:ro", Mount("tmp", "/app", read_only=True)),
        ("./tmp:/app:rw", Mount("tmp", "/app")),
        ("/data", Mount(f"{ANONYMOUS_ROOT}/web/data", "/data")),
        # the build machine's directories: directories of the claim, gone with the pipeline
        ("/tmp:/log", Mount(".shipway/host/tmp", "/log")),
        ("/dev/shm:/dev/shm", Mount(".shipway/host/dev/shm", "/dev/shm")),
        ("/../../etc:/etc:ro", Mount(".shipway/host/etc", "/etc", read_only=True)),
        ("/:/host", Mount(".shipway/host", "/host")),
        ("~/.m2:/root/.m2", Mount(".shipway/host/~/.m2", "/root/.m2")),
    ],
)
def test_volume_entries_map_to_sub_paths(entry: str, mount: Mount) -> None:
    assert parse_volume("web", 0, entry) == mount


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("../x:/x", "escapes the workspace"),
        ("a/../../x:/x", "escapes the workspace"),
        ("..:/x", "escapes the workspace"),
        ("./tmp:relative", "container path must be absolute"),
        ("./tmp:/", "container path must be absolute and not /"),
        ("data", "anonymous volume needs an absolute path"),
        ("./tmp:/app:bogus", "unknown mode"),
        ("a:b:c:d", "expected host:container"),
    ],
)
def test_bad_volume_entries_name_the_service_and_entry(entry: str, problem: str) -> None:
    result = parse_volume("web", 3, entry)
    assert isinstance(result, FieldError)
    assert result.field == "spec.services.web.volumes[3]"
    assert problem in result.message
    assert entry in result.message


def _services(**defs: dict[str, object]) -> dict[str, Service]:
    return {name: Service.model_validate({"image": "busybox", **d}) for name, d in defs.items()}


def test_volumes_from_is_transitive_and_ro_makes_inherited_mounts_read_only() -> None:
    services = _services(
        data={"volumes": ["/cache", "./out:/out"]},
        build={"volumes": ["./src:/src"], "volumes_from": ["data"]},
        test={"volumes_from": ["build:ro"]},
    )
    mounts, errors = resolve_mounts(services)
    assert errors == []
    assert mounts["test"] == [
        Mount("src", "/src", read_only=True),
        Mount(f"{ANONYMOUS_ROOT}/data/cache", "/cache", read_only=True),
        Mount("out", "/out", read_only=True),
    ]


def test_a_service_own_mount_wins_over_an_inherited_one() -> None:
    services = _services(
        a={"volumes": ["./one:/app"]}, b={"volumes": ["./two:/app"], "volumes_from": ["a"]}
    )
    mounts, _ = resolve_mounts(services)
    assert mounts["b"] == [Mount("two", "/app")]


@pytest.mark.parametrize(
    ("defs", "field", "problem"),
    [
        (
            {"a": {"volumes_from": ["ghost"]}},
            "spec.services.a.volumes_from[0]",
            "unknown service 'ghost'",
        ),
        ({"a": {"volumes_from": ["a"]}}, "spec.services.a.volumes_from[0]", "itself"),
        ({"a": {"volumes_from": ["b:xx"]}, "b": {}}, "spec.services.a.volumes_from[0]", "name:ro"),
        (
            {
                "a": {"volumes_from": ["b"]},
                "b": {"volumes_from": ["c"]},
                "c": {"volumes_from": ["a"]},
            },
            "volumes_from",
            "cycle",
        ),
    ],
)
def test_volumes_from_errors(defs: dict[str, dict[str, object]], field: str, problem: str) -> None:
    _, errors = resolve_mounts(_services(**defs))
    assert any(field in e.field and problem in e.message for e in errors), errors
