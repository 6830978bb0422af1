"""Repositories and Secrets kept from a watch (triggers/cache.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from shipway.triggers.cache import Informer


def _obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}}


def test_the_copy_follows_the_list_then_the_watch_from_the_listed_version() -> None:
    done = threading.Event()
    versions: list[str | None] = []
    changed: list[str] = []

    def watcher(version: str | None) -> Iterator[Mapping[str, Any]]:
        versions.append(version)
        yield {"type": "ADDED", "object": _obj("b", "11")}
        yield {"type": "MODIFIED", "object": _obj("a", "12")}
        yield {"type": "DELETED", "object": _obj("c", "13")}
        yield {"type": "BOOKMARK", "object": _obj("", "14")}
        done.set()
        informer.stopping.set()
        yield {"type": "ADDED", "object": _obj("late", "15")}

    def lister() -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "10"}, "items": [_obj("a", "1"), _obj("c", "2")]}

    informer = Informer(
        lister,
        watcher,
        name="test",
        to_dict=dict,
        on_change=lambda o: changed.append(o["metadata"]["name"]),
    )
    informer.start()
    assert informer.synced.wait(5)
    assert done.wait(5)
    assert versions == ["10"]
    assert informer.get("a") == _obj("a", "12")
    assert informer.get("b") == _obj("b", "11")
    assert informer.get("c") is None
    assert informer.get("late") is None
    assert changed == ["b", "a"]
