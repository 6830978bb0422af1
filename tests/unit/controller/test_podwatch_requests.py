"""The pod watch's list and watch requests against a stand-in API server, and its events
handed to the event loop in order, many per wake-up, and none once it is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from shipway.controller.podwatch import PodWatch
from shipway.engine.objects import Key
from tests.unit.standin import ListWatch, list_then_watch, stand_in_default

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


class Handler(ListWatch):
    paths = PATHS

    def page(self) -> dict[str, Any]:
        return {"items": [pod("a", "5")], "metadata": {"resourceVersion": "5"}}

    def events(self) -> list[dict[str, Any]]:
        return [
            {"type": "MODIFIED", "object": pod("a", "6")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
        ]


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
    PATHS.clear()
    store = Recorder()
    with stand_in_default(Handler):
        version = list_then_watch(lambda loop: VersionWatch("ci", store, loop, lambda key: None))
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
