"""Pod names are deterministic, unique per pipeline instance, step and attempt, ≤ 63 characters."""

from __future__ import annotations

import itertools
import re

import pytest

from shipway.engine.naming import (
    build_task_id,
    container_name,
    host_names,
    instance_tag,
    label_value,
    pod_name,
    pvc_name,
)

UID = "6a1f0c5e-0000-4000-8000-000000000001"
TAG = instance_tag(UID)


def test_pod_names_are_readable_and_deterministic() -> None:
    assert len(TAG) == 5
    assert pod_name("volumes-demo", UID, "1", "write artifact") == (
        f"volumes-demo-{TAG}-1-write-artifact"
    )
    assert pod_name("volumes-demo", UID, "1", "write artifact", attempt=2) == (
        f"volumes-demo-{TAG}-1-r2-write-artifact"
    )
    assert pod_name("x", UID, "12", "Test: (unit)!") == pod_name("x", UID, "12", "Test: (unit)!")


@pytest.mark.parametrize("pipeline", ["p", "a" * 40, "b" * 63, "long-" * 12 + "end"])
def test_pod_names_fit_and_never_collide(pipeline: str) -> None:
    names = set()
    for step, attempt in itertools.product(range(1, 1200, 7), range(3)):
        name = pod_name(
            pipeline[:63], UID, str(step), "a very long step name " * 5, attempt=attempt
        )
        assert len(name) <= 63
        assert not name.endswith("-")
        assert not name.startswith("-")
        names.add(name)
    assert len(names) == len(range(1, 1200, 7)) * 3


def test_names_that_met_before_are_apart_now() -> None:
    """Issue 18: pipeline foo, step '1 y' and pipeline foo-1, step 'y' both made foo-1-1-y."""
    one = pod_name("foo", "uid-a", "1", "y")
    two = pod_name("foo-1", "uid-b", "1", "y")
    assert one != two


def test_a_new_instance_of_a_pipeline_gets_new_names() -> None:
    """A pipeline re-created under the same name never meets the old one's pods or claim."""
    assert pod_name("ci", "uid-old", "1", "test") != pod_name("ci", "uid-new", "1", "test")
    assert pvc_name("ci", "uid-old") != pvc_name("ci", "uid-new")
    assert pvc_name("ci", UID) == f"ci-{TAG}-workspace"


def test_long_pipelines_with_a_common_prefix_get_different_names() -> None:
    one = pod_name("x" * 60 + "one", "uid-1", "1", "s")
    two = pod_name("x" * 60 + "two", "uid-2", "1", "s")
    assert one != two


def test_service_names_with_underscores_become_valid_container_and_host_names() -> None:
    assert container_name("volumes_test") == "volumes-test"
    assert host_names("redis") == ["redis"]
    assert host_names("my_db") == ["my-db"]


def test_codeship_service_names_get_dns_safe_forms_and_keep_reachable_host_names() -> None:
    """camelCase and '/' names (issue #28): objects take DNS-safe forms, hostAliases the forms
    a host name can take (Kubernetes allows lower-case DNS names only there)."""
    assert container_name("webApp") == "webapp"
    assert host_names("webApp") == ["webapp"]
    assert container_name("test/php-7.2") == "test-php-7-2"
    assert host_names("test/php-7.2") == ["test-php-7.2", "test-php-7-2"]
    assert host_names("db.internal") == ["db.internal", "db-internal"]


@pytest.mark.parametrize("service", ["webApp", "test/php-7.2", "a" * 63, "my_db", "x/" * 30 + "y"])
def test_label_values_of_service_names_are_valid_and_apart(service: str) -> None:
    label = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
    for value in (label_value(service), build_task_id(service)):
        assert len(value) <= 63
        assert label.fullmatch(value), value
    assert label_value("webApp") == "webApp"
    assert build_task_id("webApp") == "build-webApp"
    assert label_value("test/php-7.2") != label_value("test-php-7.2")
