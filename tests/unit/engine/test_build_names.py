"""Names of build pods, images and caches: valid for Kubernetes and the registry, never shared."""

from __future__ import annotations

import re

import pytest

from shipway.engine.naming import (
    build_pod_name,
    build_task_id,
    cache_repository,
    image_repository,
    normalise_git_url,
    project_key,
    repo_component,
    tag_for,
)

REPO_PATH = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _path(repository: str) -> str:
    return repository.split("/", 1)[1]


def test_an_image_is_named_by_namespace_pipeline_uid_and_service() -> None:
    repo = image_repository("registry.local:5000", "team-a", "seed", "uid-1", service="demo")
    assert repo.startswith("registry.local:5000/team-a/seed-")
    assert repo.endswith("/demo")
    assert REPO_PATH.fullmatch(_path(repo))


def test_images_never_collide_between_namespaces_reruns_or_services() -> None:
    names = {
        image_repository("r", ns, pipeline, uid, service=service)
        for ns in ("a", "b")
        for pipeline in ("seed", "seed-2")
        for uid in ("u1", "u2")
        for service in ("demo", "volumes_test", "volumes-test", "x.y", "x_y")
    }
    assert len(names) == 2 * 2 * 2 * 5
    assert all(REPO_PATH.fullmatch(_path(n)) for n in names)


@pytest.mark.parametrize("text", ["ok", "a..b", "_x", "A_B", "a__b", "x.", "é", "a" * 80])
def test_repository_components_are_valid_and_changed_ones_keep_a_hash(text: str) -> None:
    component = repo_component(text)
    assert REPO_PATH.fullmatch(component)
    assert len(component) <= 63
    if component != text:
        assert component != repo_component(text + "x")


def test_git_urls_of_one_project_share_a_key_and_credentials_never_show() -> None:
    same = [
        "https://user:secret@Git.Example.com/team/app.git",
        "https://git.example.com/team/app",
        "git@git.example.com:team/app.git",
        "ssh://git@git.example.com/team/app.git/",
    ]
    assert {normalise_git_url(u) for u in same} == {"git.example.com/team/app"}
    keys = {project_key(None, u, None, "run-1") for u in same}
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith("app-")
    assert "secret" not in key
    assert project_key(None, "https://git.example.com/team/other", None, "x") != key


def test_project_key_prefers_the_explicit_key_then_git_then_generate_name() -> None:
    assert project_key("shop", "https://g/x/app", "seed-", "seed-abc12") == "shop"
    assert project_key(None, None, "seed-", "seed-abc12") == "seed"
    assert project_key(None, None, None, "nightly") == "nightly"


def test_cache_lives_beside_the_namespace_images_and_branches_become_tags() -> None:
    repo = cache_repository("r:5000", "team-a", "seed", "demo")
    assert repo == "r:5000/team-a/cache/seed/demo"
    assert tag_for("main") == "main"
    feature = tag_for("feature/login")
    assert feature.startswith("feature-login-")
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", feature)
    assert tag_for("feature/login") != tag_for("feature-login")


def test_build_pods_are_dns_labels_unique_per_uid_and_service() -> None:
    long = "p" * 63
    names = {
        build_pod_name(pipeline, uid, service)
        for pipeline in ("seed", long)
        for uid in ("u1", "u2")
        for service in ("demo", "volumes_test", "volumes-test", "s" * 63)
    }
    assert len(names) == 2 * 2 * 4
    assert all(DNS_LABEL.fullmatch(n) for n in names), names
    assert build_pod_name("seed", "u1", "demo").startswith("seed-")
    assert build_pod_name("seed", "u1", "demo").endswith("-build-demo")


def test_build_task_ids_are_label_values_and_never_step_numbers() -> None:
    assert build_task_id("demo") == "build-demo"
    long = build_task_id("s" * 63)
    assert len(long) <= 63
    assert long != build_task_id("s" * 62)
    assert not build_task_id("1").isdigit()
