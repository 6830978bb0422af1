"""The docker.io mirror: which images, the project's own Dockerfile bases, errors naming the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from localkube.addons.registry import mirror
from localkube.config import Paths
from localkube.errors import LocalkubeError

ROOT = Path(__file__).resolve().parents[4]


def test_dockerfile_bases_substitute_args_and_skip_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=debian:12.11-slim\n"
        "FROM ${BASE} AS build\n"
        "FROM --platform=linux/amd64 ruby:3.1\n"
        "FROM build\n"
        "FROM scratch\n"
        "FROM $BASE\n"
    )
    assert mirror.dockerfile_bases(text) == ["debian:12.11-slim", "ruby:3.1"]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", ("library/busybox", "latest")),
        ("debian:12", ("library/debian", "12")),
        ("docker.io/library/redis:7", ("library/redis", "7")),
        ("docker/dockerfile:1", ("docker/dockerfile", "1")),
        ("ghcr.io/org/app:1", None),
        ("localhost:5000/app", None),
        ("debian@sha256:" + "0" * 64, None),
    ],
)
def test_docker_hub_names(image: str, expected: tuple[str, str] | None) -> None:
    assert mirror.docker_hub_repo(image) == expected


def test_the_projects_own_dockerfile_base_is_mirrored() -> None:
    mirrored = mirror.with_project_bases(mirror.MIRRORED, ROOT / "Dockerfile")
    tags = {f"{m.repo}:{t}" for m in mirrored for t in m.tags}
    for image in mirror.dockerfile_bases((ROOT / "Dockerfile").read_text()):
        found = mirror.docker_hub_repo(image)
        assert found is not None
        assert f"{found[0]}:{found[1]}" in tags


def test_the_images_the_issue_promises_are_in_the_mirror() -> None:
    tags = {f"{m.repo}:{t}" for m in mirror.MIRRORED for t in m.tags}
    for wanted in (
        "library/busybox:latest", "library/busybox:1.36", "library/redis:7",
        "library/redis:latest", "library/debian:12", "library/debian:bookworm",
        "library/debian:latest", "library/postgres:15", "library/ruby:3.1",
    ):  # fmt: skip
        assert wanted in tags
    assert set(mirror.recipes()) >= {m.recipe for m in mirror.MIRRORED}


def test_the_docker_engine_is_mirrored_only_when_asked_for() -> None:
    """add_docker's image is for its e2e tests: ``up`` (names None) never builds it."""
    assert "docker" not in {m.recipe for m in mirror.selected(None)}
    (docker,) = mirror.selected(["docker"])
    assert docker.repo == "library/docker"
    assert {"20.10", "20.10-dind"} <= set(docker.tags)
    assert [m.recipe for m in mirror.selected(["busybox"])] == ["busybox"]
    with pytest.raises(LocalkubeError, match="no mirrored image nope"):
        mirror.selected(["nope"])


def test_the_operators_default_daemon_image_is_the_mirrored_one() -> None:
    from shipway.engine.settings import DEFAULT_DOCKER_IMAGE as DEFAULT_IMAGE

    (docker,) = mirror.selected(["docker"])
    name, _, tag = DEFAULT_IMAGE.partition(":")
    assert (f"library/{name}", tag) in {(docker.repo, t) for t in docker.tags}


def test_an_unreachable_registry_is_named_in_the_error(tmp_path: Path) -> None:
    """Only the built crane comes from the host: a cluster's state there (up, or killed half
    way and left with token auth on) must not change what this test sees."""
    paths = Paths(cache=Paths.default().cache, state=tmp_path / "state", run=tmp_path / "run")
    if not (paths.bin / "crane").exists():
        pytest.skip("crane is not built (python -m localkube build crane)")
    with pytest.raises(LocalkubeError, match=r"the registry \(127\.0\.0\.1:9\) does not answer"):
        mirror.remote_digest(paths, "127.0.0.1:9/library/busybox:latest")
