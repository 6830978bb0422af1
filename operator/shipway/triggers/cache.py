"""Repositories and Secrets read from a watch, not fetched per delivery (the shell).

A delivery used to cost two GETs before its answer and two or three more before the create;
under load each was tens to hundreds of milliseconds. One list-then-watch per namespace and
kind keeps a copy that is at most one watch event behind; a name not (yet) in the copy falls
back to a GET, so a Repository applied a moment ago still answers, and a cache that is not
synced yet only costs the old price.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

log = logging.getLogger("shipway.triggers")
Lister = Callable[[], Any]
"""Lists the objects (a dict or the client's model with ``items`` and ``metadata``)."""
Watcher = Callable[[str | None], Iterator[Mapping[str, Any]]]
"""Watch events from a resourceVersion."""


def _plain(obj: Any, to_dict: Callable[[Any], Any]) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else dict(to_dict(obj))


class Informer:
    """Objects of one kind in one namespace, by name, kept current by a watch thread."""

    def __init__(
        self,
        lister: Lister,
        watcher: Watcher,
        *,
        name: str,
        to_dict: Callable[[Any], Any],
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.lister, self.watcher, self.name, self.to_dict = lister, watcher, name, to_dict
        self.on_change = on_change
        self.items: dict[str, dict[str, Any]] = {}
        self.synced = threading.Event()
        self.stopping = threading.Event()

    def get(self, name: str) -> dict[str, Any] | None:
        return self.items.get(name)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name=f"cache-{self.name}").start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                listed = _plain(self.lister(), self.to_dict)
                self.items = {
                    o["metadata"]["name"]: o
                    for o in (_plain(i, self.to_dict) for i in listed.get("items") or [])
                }
                self.synced.set()
                version = (listed.get("metadata") or {}).get("resourceVersion")
                for event in self.watcher(version):
                    if self.stopping.is_set():
                        return
                    self._apply(event)
            except Exception as exc:
                log.info("cache of %s ended: %s", self.name, exc)
                time.sleep(1)

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if kind not in ("ADDED", "MODIFIED", "DELETED") or obj is None:
            return
        plain = _plain(obj, self.to_dict)
        name = plain["metadata"]["name"]
        if kind == "DELETED":
            self.items.pop(name, None)
            return
        self.items[name] = plain
        if self.on_change is not None:
            self.on_change(plain)
