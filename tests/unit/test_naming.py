"""Pod names are deterministic, unique per step and attempt, and at most 63 characters."""

from __future__ import annotations

import itertools

import pytest

from shipway.engine.naming import container_name, host_names, pod_name


def test_pod_names_are_readable_and_deterministic() -> None:
    assert pod_name("volumes-demo", "1", "write artifact", 0) == "volumes-demo-1-write-artifact"
    assert pod_name("volumes-demo", "1", "write artifact", 2) == "volumes-demo-1-r2-write-artifact"
    assert pod_name("x", "12", "Test: (unit)!", 0) == pod_name("x", "12", "Test: (unit)!", 0)


@pytest.mark.parametrize("pipeline", ["p", "a" * 40, "b" * 63, "long-" * 12 + "end"])
def test_pod_names_fit_and_never_collide(pipeline: str) -> None:
    names = set()
    for step, attempt in itertools.product(range(1, 1200, 7), range(3)):
        name = pod_name(pipeline[:63], str(step), "a very long step name " * 5, attempt)
        assert len(name) <= 63
        assert not name.endswith("-")
        names.add(name)
    assert len(names) == len(range(1, 1200, 7)) * 3


def test_long_pipelines_with_a_common_prefix_get_different_names() -> None:
    one = pod_name("x" * 60 + "one", "1", "s", 0)
    two = pod_name("x" * 60 + "two", "1", "s", 0)
    assert one != two


def test_service_names_with_underscores_become_valid_container_and_host_names() -> None:
    assert container_name("volumes_test") == "volumes-test"
    assert host_names("redis") == ["redis"]
    assert host_names("my_db") == ["my-db"]
