"""The Pipeline watch against a stand-in API server: its requests, every change handed to
the operator with deletions marked, and a relist noticing the Pipelines deleted meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import pytest

from shipway.controller import pipelinewatch
from shipway.controller.pipelinewatch import PipelineFeed, PipelineWatch
from shipway.engine.objects import Key
from tests.unit.standin import ListWatch, list_then_watch, stand_in_default

PATHS: list[str] = []


def body(name: str, version: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": "ci", "uid": f"uid-{name}",
                     "resourceVersion": version},
        "status": {"phase": phase},
    }  # fmt: skip


class Handler(ListWatch):
    paths = PATHS

    def page(self) -> dict[str, Any]:
        return {"items": [body("a", "5"), body("b", "5")], "metadata": {"resourceVersion": "5"}}

    def events(self) -> list[dict[str, Any]]:
        return [
            {"type": "MODIFIED", "object": body("a", "6", "Succeeded")},
            {"type": "DELETED", "object": body("b", "7")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
        ]


class Operator:
    """What the feed calls: the operator's pipeline_changed, pipeline_gone and its keys."""

    def __init__(self, known: Iterable[Key] = ()) -> None:
        self.known = set(known)
        self.calls: list[tuple[str, Any, Any]] = []

    def changed(self, body: Mapping[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        self.calls.append(("changed", meta["name"], (meta["resourceVersion"], deleted)))

    def gone(self, key: Key) -> None:
        self.calls.append(("gone", key, None))

    def feed(self) -> PipelineFeed:
        return PipelineFeed(self.changed, self.gone, lambda: self.known)


def test_a_namespace_is_listed_then_watched_and_each_change_reaches_the_operator() -> None:
    PATHS.clear()
    operator = Operator(known=[("ci", "a"), ("ci", "b")])
    with stand_in_default(Handler):
        version = list_then_watch(
            lambda loop: PipelineWatch("ci", operator.feed(), loop, lambda key: None)
        )
    assert version == "8"
    assert operator.calls == [
        ("changed", "a", ("5", False)),
        ("changed", "b", ("5", False)),
        ("changed", "a", ("6", False)),
        ("changed", "b", ("7", True)),  # deleted, with its last body (the history's record)
    ]
    assert PATHS == [
        "/apis/shipway.dev/v1alpha1/namespaces/ci/pipelines?limit=500",
        "/apis/shipway.dev/v1alpha1/namespaces/ci/pipelines?watch=true"
        "&resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=240",
    ]


def test_the_cluster_scope_watches_every_namespace() -> None:
    PATHS.clear()
    with stand_in_default(Handler):
        list_then_watch(lambda loop: PipelineWatch(None, Operator().feed(), loop, lambda key: None))
    assert PATHS[0] == "/apis/shipway.dev/v1alpha1/pipelines?limit=500"


def test_a_relist_reports_the_pipelines_deleted_while_the_watch_was_away() -> None:
    operator = Operator(known=[("ci", "a"), ("ci", "gone"), ("other", "kept")])
    operator.feed().replace("ci", [("ci", "a", body("a", "9"))])
    assert operator.calls == [("changed", "a", ("9", False)), ("gone", ("ci", "gone"), None)]


def test_a_cluster_relist_reports_deletions_in_every_namespace() -> None:
    operator = Operator(known=[("ci", "a"), ("other", "b")])
    operator.feed().replace(None, [])
    assert sorted(c[1] for c in operator.calls) == [("ci", "a"), ("other", "b")]


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("e2e-ab12-x", "e2e-ab12-*", True),
        ("shipway-helm-1", "e2e-ab12-*", False),
        ("myapp-test", "myapp-*, !*-pr-*, *pr-123", True),
        ("myapp-pr-123", "myapp-*, !*-pr-*, *pr-123", True),
        ("myapp-pr-456", "myapp-*, !*-pr-*, *pr-123", False),
        ("otherapp-pr-123", "myapp-*, !*-pr-*, *pr-123", False),
        ("otherapp-pr-123", "!*-pr-*, *pr-123", True),
        ("kube-system", "!kube-*", False),
        ("ci", "!kube-*", True),
    ],
)
def test_namespace_patterns_match_as_kopfs_do(name: str, pattern: str, expected: bool) -> None:
    assert pipelinewatch.matches(name, pattern) is expected


class FakeWatch:
    """A watch thread that records being started and stopped, and talks to no server."""

    made: ClassVar[list[FakeWatch]] = []

    def __init__(self, scope: str | None, *args: Any) -> None:
        self.scope = scope
        self.running = False
        FakeWatch.made.append(self)

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


@pytest.fixture
def fake_watches(monkeypatch: pytest.MonkeyPatch) -> list[FakeWatch]:
    """Every watch thread PipelineWatches makes, as a FakeWatch."""
    FakeWatch.made.clear()
    monkeypatch.setattr(pipelinewatch, "PipelineWatch", FakeWatch)
    monkeypatch.setattr(pipelinewatch, "NamespaceWatch", FakeWatch)
    return FakeWatch.made


def test_patterns_serve_each_matching_namespace_while_it_exists(
    fake_watches: list[FakeWatch],
) -> None:
    operator = Operator(known=[("e2e-1", "old"), ("ci", "kept")])
    watches = pipelinewatch.PipelineWatches(operator.feed(), ["ci", "e2e-*"], clusterwide=False)

    def running() -> set[str | None]:
        return {w.scope for w in fake_watches if w.running}

    async def scenario() -> None:
        watches.start()
        assert running() == {"ci", None}  # the named one, and the Namespaces' watch
        watches.replace(None, [("", "e2e-1", "e2e-1"), ("", "other", "other")])
        assert running() == {"ci", "e2e-1", None}
        watches.put("", "e2e-2", "e2e-2")
        assert running() == {"ci", "e2e-1", "e2e-2", None}
        watches.put("", "e2e-1", None)  # deleted: its watch stops, its Pipelines are gone
        assert running() == {"ci", "e2e-2", None}
        assert ("gone", ("e2e-1", "old"), None) in operator.calls
        watches.replace(None, [])  # a relist without them: the named one stays
        assert running() == {"ci", None}
        watches.stop()
        assert running() == set()

    asyncio.run(scenario())
    assert ("gone", ("ci", "kept"), None) not in operator.calls


def test_without_scanning_patterns_are_ignored_as_kopf_ignores_them(
    fake_watches: list[FakeWatch],
) -> None:
    watches = pipelinewatch.PipelineWatches(
        Operator().feed(), ["ci", "e2e-*"], clusterwide=False, scanning=False
    )

    async def scenario() -> None:
        watches.start()
        watches.stop()

    asyncio.run(scenario())
    assert [w.scope for w in fake_watches] == ["ci"]
