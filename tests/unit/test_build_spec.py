"""A service's build resolved from Codeship's keys: paths inside the checkout, args in order."""

from __future__ import annotations

from typing import Any

import pytest

from shipway.compiler.builds import ResolvedBuild
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import compile_pipeline


def _build(service: dict[str, Any]) -> ResolvedBuild | None:
    raw = {
        "services": {"app": service},
        "steps": [{"service": "app", "command": "true"}],
        "source": {"upload": {}},
    }
    return compile_pipeline(raw).services["app"].build


def _sources(build: ResolvedBuild) -> tuple[tuple[str, str], ...]:
    return tuple((name, value.source) for name, value in build.args)


def test_the_short_form_is_a_context_with_its_dockerfile() -> None:
    build = _build({"build": "./web/"})
    assert build is not None
    assert (build.context, build.dockerfile_dir, build.dockerfile_name) == (
        "web",
        "web",
        "Dockerfile",
    )
    assert not build.cached


def test_the_walkthrough_form_builds_dockerfile2_from_the_checkout_root() -> None:
    build = _build({"build": {"image": "volumestest", "dockerfile_path": "Dockerfile2"}})
    assert build is not None
    assert (build.context, build.dockerfile_dir, build.dockerfile_name) == (".", ".", "Dockerfile2")
    assert build.image_name == "volumestest"


def test_the_dockerfile_is_relative_to_the_context_and_may_sit_beside_it() -> None:
    build = _build({"build": {"path": "app", "dockerfile": "../docker/app.Dockerfile"}})
    assert build is not None
    assert (build.context, build.dockerfile_dir, build.dockerfile_name) == (
        "app",
        "docker",
        "app.Dockerfile",
    )


def test_args_keep_their_order_and_scalars_become_text() -> None:
    build = _build({"build": {"args": {"B": 1, "A": True, "C": None}, "target": "test"}})
    assert build is not None
    assert _sources(build) == (("B", "1"), ("A", "true"), ("C", ""))
    assert build.target == "test"
    listed = _build({"build": {"args": ["X=1=2", "Y="]}})
    assert listed is not None
    assert _sources(listed) == (("X", "1=2"), ("Y", ""))


def test_cache_settings_and_secret_args_come_along() -> None:
    build = _build(
        {
            "build": {"argsFrom": [{"secretRef": {"name": "npm-token"}}]},
            "cached": True,
            "default_cache_branch": "main",
        }
    )
    assert build is not None
    assert build.secret_sources == ("npm-token",)
    assert (build.cached, build.default_cache_branch) == (True, "main")


def test_a_service_with_image_only_has_no_build() -> None:
    assert _build({"image": "busybox"}) is None


def test_a_build_without_a_source_is_refused_naming_spec_source() -> None:
    raw = {"services": {"app": {"build": "."}}, "steps": [{"service": "app", "command": "true"}]}
    with pytest.raises(InvalidSpecError) as info:
        compile_pipeline(raw)
    (error,) = info.value.errors
    assert error.field == "spec.services.app.build"
    assert "set spec.source" in error.message
