"""The Pipeline watch against a stand-in API server: its requests, every change handed to
the operator with deletions marked, and a relist noticing the Pipelines deleted meanwhile."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kubernetes import client

from shipway.controller import pipelinewatch
from shipway.controller.pipelinewatch import PipelineFeed, PipelineWatch
from shipway.engine.objects import Key

PATHS: list[str] = []


def body(name: str, version: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": "ci", "uid": f"uid-{name}",
                     "resourceVersion": version},
        "status": {"phase": phase},
    }  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        PATHS.append(self.path)
        if "watch=true" not in self.path:
            page = {"items": [body("a", "5"), body("b", "5")], "metadata": {"resourceVersion": "5"}}
            data = json.dumps(page).encode()
        else:
            lines = [
                {"type": "MODIFIED", "object": body("a", "6", "Succeeded")},
                {"type": "DELETED", "object": body("b", "7")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
            ]
            data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


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


def serve() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    client.Configuration.set_default(configuration)
    return server


def run_once(watch_of: Any) -> str:
    async def run() -> str:
        watch = watch_of(asyncio.get_running_loop())
        version = await asyncio.to_thread(watch._list)
        version = await asyncio.to_thread(watch._watch, version)
        await asyncio.sleep(0.1)  # the posted calls run
        watch.api.close()
        return str(version)

    return asyncio.run(run())


def test_a_namespace_is_listed_then_watched_and_each_change_reaches_the_operator() -> None:
    PATHS.clear()
    server = serve()
    operator = Operator(known=[("ci", "a"), ("ci", "b")])
    try:
        version = run_once(
            lambda loop: PipelineWatch("ci", operator.feed(), loop, lambda key: None)
        )
    finally:
        client.Configuration.set_default(None)
        server.shutdown()
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
    server = serve()
    try:
        run_once(lambda loop: PipelineWatch(None, Operator().feed(), loop, lambda key: None))
    finally:
        client.Configuration.set_default(None)
        server.shutdown()
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
