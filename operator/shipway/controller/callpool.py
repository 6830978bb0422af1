"""A thread pool for API calls that runs the most urgent first.

The Kubernetes client is synchronous, so calls run in threads; when the API server is slow,
calls queue. A plain pool serves them in arrival order, so a burst of new pipelines makes
every running one wait behind all of them for each of its steps. Here each call carries a
priority: a pipeline that has started goes on before a new one starts (so under a burst the
pipelines started first finish first, instead of all of them crawling together), and after
a restart the pipelines found waiting resume before any moves twice. Within one priority the
order is first come, first served.

Namespaces (tenants) take turns: each call is queued under the namespace of the work that
made it (:data:`GROUP`, set by the work queue's runner), and the threads serve the namespaces
with calls waiting round-robin, by priority within each. Else a 1000-step pipeline's pod
creates and status patches fill every thread, and a neighbour's first pod (``START``, the
least urgent) waits behind all of them. Calls made outside any namespace's work form one
group of their own.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from enum import IntEnum
from typing import Any

GROUP: contextvars.ContextVar[Hashable] = contextvars.ContextVar("shipway_call_group", default=None)
"""The namespace whose work makes the calls of the current task (None: no namespace's)."""


class Priority(IntEnum):
    RESUME = 0
    """The first pod of a pipeline the operator finds running after it (re)started."""
    STEP = 1
    """Pods and everything else that moves a pipeline on."""
    STATUS = 2
    """Status patches: they report progress, they do not make it."""
    START = 3
    """The first pods (and claim) of a pipeline that has not started yet."""


class FairQueue:
    """Calls by group; :meth:`get` serves the groups round-robin, the most urgent first
    within a group, first come first served within a priority. Pure bookkeeping: the pool
    adds the locking."""

    def __init__(self) -> None:
        self._heaps: dict[Hashable, list[tuple[int, int, Any]]] = {}
        self._turns: deque[Hashable] = deque()
        self._order = itertools.count()

    def put(self, group: Hashable, priority: int, item: Any) -> None:
        heap = self._heaps.get(group)
        if heap is None:
            heap = self._heaps[group] = []
            self._turns.append(group)
        heapq.heappush(heap, (priority, next(self._order), item))

    def get(self) -> Any:
        """The next item (IndexError when empty); its group goes to the back of the line."""
        group = self._turns.popleft()
        heap = self._heaps[group]
        _, _, item = heapq.heappop(heap)
        if heap:
            self._turns.append(group)
        else:
            del self._heaps[group]
        return item

    def __len__(self) -> int:
        return sum(len(heap) for heap in self._heaps.values())


class CallPool:
    def __init__(self, threads: int, name: str) -> None:
        self._queue = FairQueue()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: Priority, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._ready:
            self._queue.put(GROUP.get(), int(priority), (fn, future))
            self._ready.notify()
        return future

    def pending(self) -> int:
        with self._ready:
            return len(self._queue)

    def _work(self) -> None:
        while True:
            with self._ready:
                while not len(self._queue) and not self._closed:
                    self._ready.wait()
                if not len(self._queue):
                    return  # closed, and nothing is left
                fn, future = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, as an executor does
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Stop the threads once the calls already queued are done."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
