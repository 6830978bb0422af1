"""The pod watch's list and watch requests against a stand-in API server, and its events
handed to the event loop in order, many per wake-up, and none once it is stopped."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client

from shipway.controller.podwatch import PodWatch
from shipway.engine.objects import Key

PATHS: list[str] = []


def pod(name: str, version: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ci",
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "labels": {"shipway.dev/pipeline": "demo", "shipway.dev/step": "s1"},
        },
        "status": {"phase": "Pending"},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        PATHS.append(self.path)
        if "watch=true" not in self.path:
            body = json.dumps({"items": [pod("a", "5")], "metadata": {"resourceVersion": "5"}})
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        lines = [
            {"type": "MODIFIED", "object": pod("a", "6")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
        ]
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class VersionWatch(PodWatch):
    """Keeps each pod's resourceVersion as its entry: what was decoded, in the store."""

    def _entry(self, obj: Any) -> Any:
        return obj["metadata"]["resourceVersion"]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def put(self, namespace: str, name: str, entry: Any) -> set[Key]:
        self.calls.append(("put", (name, entry)))
        return set()

    def replace(self, namespace: str | None, entries: Iterable[tuple[str, str, Any]]) -> set[Key]:
        self.calls.append(("replace", [(name, entry) for _, name, entry in entries]))
        return set()


def test_a_list_then_a_watch_from_its_version() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    client.Configuration.set_default(configuration)
    store = Recorder()

    async def run() -> str:
        watch = VersionWatch("ci", store, asyncio.get_running_loop(), lambda key: None)
        version = await asyncio.to_thread(watch._list)
        version = await asyncio.to_thread(watch._watch, version)
        await asyncio.sleep(0.1)  # the posted calls run
        watch.api.close()  # type: ignore[no-untyped-call]
        return version

    try:
        version = asyncio.run(run())
    finally:
        client.Configuration.set_default(None)
        server.shutdown()
    assert version == "7"  # the bookmark's: the next watch starts there
    assert store.calls == [("replace", [("a", "5")]), ("put", ("a", "6"))]
    assert PATHS == [
        "/api/v1/namespaces/ci/pods?labelSelector=shipway.dev%2Fpipeline&limit=500",
        "/api/v1/namespaces/ci/pods?labelSelector=shipway.dev%2Fpipeline&watch=true"
        "&resourceVersion=5&allowWatchBookmarks=true&timeoutSeconds=240",
    ]


def test_events_reach_the_loop_in_order_and_many_per_wake_up() -> None:
    seen: list[int] = []
    wake_ups = 0

    async def run() -> None:
        nonlocal wake_ups
        loop = asyncio.get_running_loop()
        watch = PodWatch("ci", Recorder(), loop, lambda key: None)
        original = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return original(*args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]

        def post_all() -> None:
            for n in range(1000):
                watch._post(seen.append, n)

        await asyncio.to_thread(post_all)
        await asyncio.sleep(0.1)
        watch.api.close()  # type: ignore[no-untyped-call]

    asyncio.run(run())
    assert seen == list(range(1000))
    assert wake_ups < 1000


def test_a_stopped_watch_hands_nothing_more_to_the_loop() -> None:
    """Its successor may have listed already: a late event would overwrite newer objects."""
    store = Recorder()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        watch = PodWatch("ci", store, loop, lambda key: None)
        watch._post(watch._put, "ci", "a", "old")  # queued, the loop has not run it yet
        watch.stop()
        await asyncio.sleep(0.05)
        watch._post(watch._put, "ci", "b", "late")
        await asyncio.sleep(0.05)
        watch.api.close()  # type: ignore[no-untyped-call]

    asyncio.run(run())
    assert store.calls == []
