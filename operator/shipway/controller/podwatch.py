"""Step pods from one list and watch per namespace (or one for the cluster), into a PodStore.

kopf would keep a worker task, a queue and its per-object memories for each of thousands of
short-lived pods and run its handler machinery for every event; the operator needs a few
fields of each pod and to know which pipeline changed. So pods are watched here, the
informer way: page through a list, then watch from its resourceVersion, decode and
summarise each event in this thread, and hand the summary to the event loop. A watch that
expires (410 Gone) or breaks (an apiserver restart) is listed again, and the list replaces
what the store held for that namespace, so a pod deleted meanwhile is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from shipway.controller import metrics, rest
from shipway.engine.naming import LABEL_PIPELINE
from shipway.engine.objects import Key
from shipway.engine.observe import PodView
from shipway.engine.podstore import PodStore, pod_entry
from shipway.engine.untrusted import mapping, object_name, text

log = logging.getLogger("shipway")

PAGE_SIZE = 500
"""Pods per list request: bounds the memory a relist of thousands of pods takes at once."""
SERVER_TIMEOUT = 240
"""Seconds the apiserver keeps one watch open; then it is renewed from the last version."""
READ_TIMEOUT = SERVER_TIMEOUT + 30
"""A connection silent for longer than the server's own timeout is dead: reconnect."""


def unblock(response: Any) -> None:
    """Shut the socket under an HTTP response down, so a read blocked on it returns."""
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


def summarise(pod: Any) -> tuple[Key, PodView] | None:
    """A pod's store entry; a pod that cannot be read is skipped with a warning naming it.

    Whoever may create a pod in a watched namespace writes its labels: one malformed pod
    must never stop the watch (it would be replayed from the same resourceVersion forever,
    and no other pod of any pipeline would be seen again).
    """
    entry: tuple[Key, PodView] | None = read_untrusted("Pod", pod_entry, pod)
    return entry


def read_untrusted(kind: str, read: Callable[[Mapping[str, Any]], Any], obj: Any) -> Any:
    """What ``read`` makes of one watched object (a pod, a claim); None, with a warning naming
    it and ``shipway_malformed_objects_total{kind}``, for one it cannot read."""
    try:
        return read(mapping(obj))
    except Exception as exc:  # the object is input: nothing in it may stop the watch
        metrics.MALFORMED_OBJECTS.labels(kind).inc()
        log.warning("%s %s skipped, it cannot be a step's: %s", kind.lower(), object_name(obj), exc)
        return None


def decode(line: Any) -> dict[str, Any] | None:
    """One watch event; None (with a warning) for a line that is not one (too deep, not JSON)."""
    try:
        event = json.loads(line)
    except (ValueError, RecursionError) as exc:
        metrics.MALFORMED_OBJECTS.labels("WatchEvent").inc()
        log.warning("pod watch: an event could not be read, skipped: %s", str(exc)[:200])
        return None
    return event if isinstance(event, dict) else None


class Store(Protocol):
    """Where a watch puts what it sees (:class:`PodStore`, or the claims' store): both answer
    with the pipelines to wake."""

    def put(self, namespace: str, name: str, entry: Any) -> set[Key]: ...
    def replace(
        self, namespace: str | None, entries: Iterable[tuple[str, str, Any]]
    ) -> set[Key]: ...


class WatchExpiredError(Exception):
    """The resourceVersion is too old to watch from (HTTP 410): list again."""


class PodWatch(threading.Thread):
    """List and watch the step pods of one namespace (None: every namespace) into a store."""

    kind = "pod"
    resource = "pods"
    selector: str | None = LABEL_PIPELINE
    """Only the objects with this label (a step's pods), or every one."""

    def _entry(self, obj: Any) -> Any:
        """What the store keeps of one object; None: nothing (not a step's pod, or one that
        cannot be read: skipped with a warning, never stopping the watch)."""
        return summarise(obj)

    def __init__(
        self,
        namespace: str | None,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        on_change: Callable[[Key], None],
    ) -> None:
        super().__init__(daemon=True, name=f"{self.kind}watch-{namespace or 'cluster'}")
        self.namespace = namespace
        self.store = store
        self.loop = loop
        self.on_change = on_change
        self.listed: asyncio.Future[None] = loop.create_future()
        self.stopping = threading.Event()
        configuration = client.Configuration.get_default_copy()
        configuration.connection_pool_maxsize = 1
        self.api = client.ApiClient(configuration)
        self._response: Any = None
        self._lock = threading.Lock()
        self._posted: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._flushing = False

    def stop(self) -> None:
        """Ask the thread to end, at once, from any thread.

        The watch thread may be blocked reading an idle stream for minutes. Closing the
        response from here would wait for that read (the buffered reader's lock), so the
        socket is shut down instead: the read returns, the thread sees ``stopping``.
        """
        self.stopping.set()
        response = self._response
        if response is not None:
            unblock(response)

    def _gone(self, obj: Any) -> Any:
        """What the store is given for a deleted object: None, it leaves the store."""
        return None

    def _where(self) -> str:
        """The path listed and watched: the namespace's objects, or the cluster's."""
        if self.namespace is None:
            return rest.path("api", "v1", self.resource)
        return rest.core(self.namespace, self.resource)

    def _request(self, query: dict[str, Any], timeout: tuple[float, float]) -> Any:
        """One list (a page) or watch request, its answer not read yet."""
        query = {"labelSelector": self.selector, **query}
        return rest.request(self.api, "GET", self._where(), query=query, timeout=timeout)

    def run(self) -> None:
        version: str | None = None
        delay = 0.5
        while not self.stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                delay = 0.5
            except WatchExpiredError:
                version = None
            except Exception as exc:  # any failure: wait, then watch again
                if self.stopping.is_set():
                    break
                log.warning(
                    "%s watch (%s): %s; again in %.1fs",
                    self.kind,
                    self.namespace or "all",
                    exc,
                    delay,
                )
                self.stopping.wait(delay)
                delay = min(delay * 2, 10.0)
        self.api.close()  # type: ignore[no-untyped-call]

    def _list(self) -> str:
        entries: list[tuple[str, str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = json.loads(
                    self._request({"limit": PAGE_SIZE, "continue": token}, (10, 60)).data
                )
            except ApiException as exc:
                if exc.status == 410:  # the continue token expired: start the list over
                    token = None
                    entries.clear()
                    continue
                raise
            for pod in page.get("items") or ():
                meta = mapping(mapping(pod).get("metadata"))
                entry = self._entry(pod)
                if entry is not None:
                    entries.append(
                        (text(meta.get("namespace")) or "", text(meta.get("name")) or "", entry)
                    )
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                version: str = page["metadata"]["resourceVersion"]
                break
        self._post(self._replaced, entries)
        return version

    def _watch(self, version: str) -> str:
        response = self._request(
            {
                "watch": True,
                "resourceVersion": version,
                "allowWatchBookmarks": True,
                "timeoutSeconds": SERVER_TIMEOUT,
            },
            (10, READ_TIMEOUT),
        )
        self._response = response
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self.stopping.is_set():
                    break
                if not line:
                    continue
                event = decode(line)
                if event is None:
                    continue
                kind, obj = event.get("type"), mapping(event.get("object"))
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpiredError(obj.get("message", ""))
                    raise RuntimeError(f"watch error: {obj.get('message') or obj}")
                meta = mapping(obj.get("metadata"))
                version = text(meta.get("resourceVersion")) or version
                if kind == "BOOKMARK":
                    continue
                # A pod that turned malformed leaves the store (entry None), as a deleted one.
                entry = self._gone(obj) if kind == "DELETED" else self._entry(obj)
                namespace, name = text(meta.get("namespace")) or "", text(meta.get("name")) or ""
                self._post(self._put, namespace, name, entry)
        finally:
            self._response = None
            response.release_conn()
        return version

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """Hand ``fn(*args)`` to the event loop, in order.

        Under load events arrive faster than the loop takes them: they queue here and one
        wake-up of the loop runs all that queued meanwhile (waking it cost a pipe write and
        a read per event: ~5% of the operator's CPU in a burst, profiled).
        """
        with self._lock:
            self._posted.append((fn, args))
            if self._flushing:
                return
            self._flushing = True
        try:
            self.loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the loop is closed: the operator is exiting
            self.stopping.set()

    # These three run in the event loop's thread.
    def _flush(self) -> None:
        with self._lock:
            batch, self._posted = self._posted, []
            self._flushing = False
        if self.stopping.is_set():
            # A stopped watch's last events may reach the loop after its successor's list
            # (a peering pause and resume, a namespace watched again): applied then, they
            # would put older objects over newer ones in the shared store.
            return
        for fn, args in batch:
            fn(*args)

    def _replaced(self, entries: list[tuple[str, str, Any]]) -> None:
        changed = self.store.replace(self.namespace, entries)
        if not self.listed.done():
            # The first list wakes nobody: every pipeline of the namespace is waiting for it
            # in ready() and reads the store right after (after a restart: a thousand
            # reconciles not done twice).
            self.listed.set_result(None)
            return
        for key in changed:
            self.on_change(key)

    def _put(self, namespace: str, name: str, entry: Any) -> None:
        for key in self.store.put(namespace, name, entry):
            self.on_change(key)


StoreT = TypeVar("StoreT", bound=Store)


class Watches(Generic[StoreT]):
    """One watch per namespace a pipeline lives in, started on first use; or one for all."""

    def __init__(
        self,
        store: StoreT,
        watch: type[PodWatch],
        on_change: Callable[[Key], None],
        clusterwide: bool,
    ) -> None:
        self.store = store
        self.watch = watch
        self.on_change = on_change
        self.clusterwide = clusterwide
        self.watches: dict[str | None, PodWatch] = {}

    async def ready(self, namespace: str) -> None:
        """Wait until the objects of ``namespace`` have been listed once: never plan without
        them."""
        scope = None if self.clusterwide else namespace
        watch = self.watches.get(scope)
        if watch is None:
            watch = self.watch(scope, self.store, asyncio.get_running_loop(), self.on_change)
            self.watches[scope] = watch
            watch.start()
        if not watch.listed.done():
            await asyncio.shield(watch.listed)

    def stop(self) -> None:
        for watch in self.watches.values():
            watch.stop()


class PodWatches(Watches[PodStore]):
    """One PodWatch per namespace a pipeline lives in, started on first use; or one for all."""

    def __init__(self, on_change: Callable[[Key], None], clusterwide: bool) -> None:
        super().__init__(PodStore(), PodWatch, on_change, clusterwide)
