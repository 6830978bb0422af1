"""A thread pool for API calls that runs the most urgent first.

The Kubernetes client is synchronous, so calls run in threads; when the API server is slow,
calls queue. A plain pool serves them in arrival order, so a burst of new pipelines makes
every running one wait behind all of them for each of its steps. Here each call carries a
priority: a pipeline that has started goes on before a new one starts (so under a burst the
pipelines started first finish first, instead of all of them crawling together), and after
a restart the pipelines found waiting resume before any moves twice. Within one priority the
order is first come, first served.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from enum import IntEnum
from typing import Any


class Priority(IntEnum):
    RESUME = 0
    """The first pod of a pipeline the operator finds running after it (re)started."""
    STEP = 1
    """Pods and everything else that moves a pipeline on."""
    STATUS = 2
    """Status patches: they report progress, they do not make it."""
    START = 3
    """The first pods (and claim) of a pipeline that has not started yet."""


_STOP = object()


class CallPool:
    def __init__(self, threads: int, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any, Future[Any] | None]] = (
            queue.PriorityQueue()
        )
        self._order = itertools.count()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: Priority, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((int(priority), next(self._order), fn, future))
        return future

    def pending(self) -> int:
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            _, _, fn, future = self._queue.get()
            if fn is _STOP or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, as an executor does
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self) -> None:
        """Stop the threads once the calls already queued are done (last in the queue)."""
        for _ in self._threads:
            self._queue.put((1 << 30, next(self._order), _STOP, None))
