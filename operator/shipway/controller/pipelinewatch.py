"""Pipelines from one list and watch per watched namespace (or one for the cluster), handed
to the operator as they change.

kopf's watch ran its whole handler machinery for every Pipeline event (a worker task, a
patch, three loggers, the cause detection, the handler's kwargs): ~0.7 ms of the event
loop each, and six events in seven are the echo of the operator's own status write (1000 x
5 steps, profiled: a fifth of the operator's CPU). Here each event is decoded in this
thread and its body handed to :meth:`Operator.pipeline_changed` in the event loop.

A relist (after a 410 Gone or a broken stream) also notices the Pipelines deleted
meanwhile, which kopf's watch would never report. Whether the watch runs at all is kopf
peering's call (:mod:`shipway.controller.gate`): a paused replica watches nothing.

``--namespace`` takes kopf's patterns too (``e2e-*``, ``!kube-*``, ``a-*, !*-pr-*``): as
kopf does, the Namespaces are then watched, and each one a pattern matches gets its own
Pipeline watch while it exists (with ``SHIPWAY_SCANNING=off`` only the plain names count,
as in kopf).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shipway import GROUP, PLURAL, VERSION
from shipway.controller import rest
from shipway.controller.podwatch import PodWatch
from shipway.engine.objects import Key
from shipway.engine.untrusted import mapping, text

log = logging.getLogger("shipway")


@dataclass(frozen=True)
class Gone:
    """A Pipeline the watch saw deleted, with its last body (its record for the history)."""

    body: Mapping[str, Any]


class PipelineFeed:
    """The store a :class:`PipelineWatch` writes to: every change goes to the operator.

    It keeps nothing itself: the operator's snapshots are what it knows, so a relist
    compares with those to find the Pipelines deleted while the watch was away.
    """

    def __init__(
        self,
        changed: Callable[[Mapping[str, Any], bool], None],
        gone: Callable[[Key], None],
        known: Callable[[], Iterable[Key]],
    ) -> None:
        self.changed = changed
        self.gone = gone
        self.known = known

    def put(self, namespace: str, name: str, entry: Any) -> set[Key]:
        if isinstance(entry, Gone):
            self.changed(entry.body, True)
        elif entry is None:
            self.gone((namespace, name))
        else:
            self.changed(entry, False)
        return set()

    def replace(self, namespace: str | None, entries: Iterable[tuple[str, str, Any]]) -> set[Key]:
        listed: set[Key] = set()
        for ns, name, body in entries:
            listed.add((ns, name))
            self.changed(body, False)
        for key in [k for k in self.known() if namespace in (None, k[0]) and k not in listed]:
            self.gone(key)
        return set()


class PipelineWatch(PodWatch):
    """List and watch the Pipelines of one namespace (None: every namespace)."""

    kind = "pipeline"
    resource = PLURAL
    selector = None

    def _entry(self, obj: Any) -> Any:
        body = mapping(obj)
        return body if mapping(body.get("metadata")).get("name") else None

    def _gone(self, obj: Any) -> Any:
        return Gone(mapping(obj))

    def _where(self) -> str:
        if self.namespace is None:
            return rest.path("apis", GROUP, VERSION, self.resource)
        return rest.path("apis", GROUP, VERSION, "namespaces", self.namespace, self.resource)


def is_pattern(namespace: str) -> bool:
    """A kopf namespace pattern rather than one namespace's name."""
    return any(c in namespace for c in "!*?,")


def matches(name: str, pattern: str) -> bool:
    """kopf's namespace patterns: comma-separated globs, ``!`` ones excluding; the first
    inclusive glob includes, a later one only brings back what an exclusion took away (a
    leading exclusion implies ``*`` before it)."""
    globs = [glob.strip() for glob in pattern.split(",")]
    if not globs or globs[0].startswith("!"):
        globs.insert(0, "*")
    first = found = fnmatch.fnmatch(name, globs[0])
    for glob in globs[1:]:
        if glob.startswith("!"):
            found = found and not fnmatch.fnmatch(name, glob[1:])
        else:
            found = found or (first and fnmatch.fnmatch(name, glob))
    return found


class NamespaceWatch(PodWatch):
    """The cluster's Namespaces, to serve those the operator's patterns match."""

    kind = "namespace"
    resource = "namespaces"
    selector = None

    def _entry(self, obj: Any) -> Any:
        return text(mapping(mapping(obj).get("metadata")).get("name")) or None

    def _where(self) -> str:
        return rest.path("api", "v1", self.resource)


class PipelineWatches:
    """The Pipeline watches of the operator's scope, started and stopped as a whole: one
    for the cluster, or one per namespace named or matched by a pattern."""

    def __init__(
        self,
        feed: PipelineFeed,
        namespaces: Iterable[str],
        *,
        clusterwide: bool,
        scanning: bool = True,
    ) -> None:
        self.feed = feed
        self.clusterwide = clusterwide
        names = tuple(namespaces)
        self.named = tuple(n for n in names if not is_pattern(n))
        self.patterns = tuple(n for n in names if is_pattern(n))
        if self.patterns and not scanning:
            log.warning(
                "namespace patterns %s ignored: SHIPWAY_SCANNING=off (as in kopf)",
                ", ".join(self.patterns),
            )
            self.patterns = ()
        self.watches: dict[str | None, PipelineWatch] = {}
        self.namespaces: NamespaceWatch | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self.loop is not None

    def start(self) -> None:
        """Watch every scope (a thread each), from a fresh list; nothing if watching already."""
        if self.loop is not None:
            return
        self.loop = asyncio.get_running_loop()
        for scope in (None,) if self.clusterwide else self.named:
            self._serve(scope)
        if self.patterns and not self.clusterwide:
            self.namespaces = NamespaceWatch(None, self, self.loop, _wake_nobody)
            self.namespaces.start()

    def stop(self) -> None:
        self.loop = None
        if self.namespaces is not None:
            self.namespaces.stop()
            self.namespaces = None
        watches, self.watches = self.watches, {}
        for watch in watches.values():
            watch.stop()

    def _serve(self, scope: str | None) -> None:
        if scope in self.watches or self.loop is None:
            return
        watch = PipelineWatch(scope, self.feed, self.loop, _wake_nobody)
        self.watches[scope] = watch
        watch.start()

    def _drop(self, namespace: str) -> None:
        watch = self.watches.pop(namespace, None)
        if watch is not None:
            watch.stop()
            self.feed.replace(namespace, [])  # its Pipelines are no longer this operator's

    def _wanted(self, namespace: str) -> bool:
        return namespace in self.named or any(matches(namespace, p) for p in self.patterns)

    # The namespace watch's store: a Namespace seen (entry: its name), gone or relisted.
    def put(self, namespace: str, name: str, entry: Any) -> set[Key]:
        if entry is not None and self._wanted(name):
            self._serve(name)
        elif name not in self.named:
            self._drop(name)
        return set()

    def replace(self, namespace: str | None, entries: Iterable[tuple[str, str, Any]]) -> set[Key]:
        listed = {name for _, name, _ in entries if self._wanted(name)}
        for name in listed:
            self._serve(name)
        for name in [n for n in self.watches if n is not None and n not in self.named]:
            if name not in listed:
                self._drop(name)
        return set()


def _wake_nobody(key: Key) -> None:
    """The feed hands every change to the operator itself: no key to wake here."""
