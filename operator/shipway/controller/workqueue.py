"""A work queue of keys, the controller-runtime way: one worker per key at a time, events
that arrive while it works fold into one more run, delayed runs, backoff after failures.

Planning is level-triggered, so a key needs running again, never once per event: under load
a pipeline's pods and status change several times while one run waits on the API server,
and one more run, on the state read when it starts, does the same work once. A failed run
is tried again after 0.5 s, 1 s, 2 s, ... up to 30 s; a success resets that.

Groups (namespaces: tenants) take turns. A key that is due again as soon as a long run
ends (a big pipeline whose pods keep changing, each run planning and writing a large status)
would run back to back, and every run of a neighbour would be interleaved with one long run
after another; here it first waits for the runs of other groups that started during its own
(at most :data:`TURN_CAP` seconds), so groups alternate run for run, round-robin. Only a run
longer than ``yield_after`` (:data:`YIELD_AFTER`) yields: a neighbour's short runs never
wait for a big pipeline's long ones. Keys of one group never wait for each other.

Turns alone still let a key whose runs are long (a 1000-step pipeline: plan the tree, write a
large status) hold the event loop most of the time, since one run of a neighbour is short: the
neighbour's every pod event lands in a long run and waits for it. So while another group is
active (started a run in the last :data:`PACE_WINDOW` seconds), a long run's key rests as long
as its run took (:func:`pace`, at most :data:`PACE_CAP`) before it runs again: the loop is at
least half free for the others, and the events of the rest fold into the next run (its status
is written in fewer, larger patches). Alone, a big pipeline runs back to back as before.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("shipway")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
MIN_DELAY = 0.05
TURN_CAP = 2.0
"""The longest a key due again waits for other groups' runs (a slow API call of theirs)."""
YIELD_AFTER = 0.25
"""A run at least this long (seconds) lets other groups' runs go before the next."""
PACE_WINDOW = 5.0
"""Another group that started a run this recently (seconds) is active: long runs rest."""
PACE_CAP = 2.0
"""The longest rest (seconds) after one long run."""


def pace(took: float, yield_after: float, others_active: bool) -> float:
    """Seconds a key rests before running again after a run of ``took`` seconds: as long
    as the run, when it was long and another group is active; else none."""
    if not others_active or took < yield_after:
        return 0.0
    return min(took, PACE_CAP)


def backoff(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait after the ``failures``-th failure in a row."""
    return float(min(cap, base * 2.0 ** min(failures, 6)))


@dataclass(slots=True)
class _Entry:
    running: bool = False
    dirty: bool = False
    timer: asyncio.TimerHandle | None = None
    failures: int = 0


class WorkQueue(Generic[K]):
    """Runs ``work(key)``; its answer is the delay before the key must run again (or None).

    ``on_failure(key, error, delay)`` is told of a failed run (to log and count it) before
    the key is tried again after ``delay``.
    """

    def __init__(
        self,
        work: Callable[[K], Awaitable[float | None]],
        on_failure: Callable[[K, Exception, float], None] | None = None,
        group: Callable[[K], Hashable] | None = None,
        yield_after: float = YIELD_AFTER,
    ) -> None:
        self.work = work
        self.on_failure = on_failure
        self.group = group
        """A key's group (its namespace): groups take turns; None: no turns."""
        self.yield_after = yield_after
        self._runs: dict[Hashable, dict[K, tuple[int, asyncio.Future[None]]]] = {}
        """Runs in progress by group: when each started (in order) and its end."""
        self._order = itertools.count()
        self._last_start: dict[Hashable, float] = {}
        """When each group last started a run (loop time)."""
        self._entries: dict[K, _Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def add(self, key: K) -> None:
        """Run ``key`` now, or once more after the run in progress."""
        if self._closed:
            return
        entry = self._entries.setdefault(key, _Entry())
        if entry.running:
            entry.dirty = True
            return
        entry.running = True
        task = asyncio.ensure_future(self._loop(key, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def add_after(self, key: K, delay: float) -> None:
        """Run ``key`` in ``delay`` seconds; replaces a run already scheduled for it."""
        if self._closed:
            return
        entry = self._entries.setdefault(key, _Entry())
        if entry.timer is not None:
            entry.timer.cancel()
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(max(MIN_DELAY, delay), self._fire, key)

    def _fire(self, key: K) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.timer = None
        self.add(key)

    def forget(self, key: K) -> None:
        """The key is gone: no scheduled run, no failure count (a run in progress ends)."""
        entry = self._entries.get(key)
        if entry is None:
            return
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        entry.failures = 0
        if not entry.running:
            del self._entries[key]

    def failures(self, key: K) -> int:
        entry = self._entries.get(key)
        return entry.failures if entry is not None else 0

    def busy(self) -> bool:
        return bool(self._tasks)

    def scheduled(self, key: K) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.timer is not None

    async def _turns(self, key: K, since: int) -> None:
        """Let the runs of other groups that started after ``since`` end first."""
        if self.group is None:
            return
        mine = self.group(key)
        others = [
            done
            for group, runs in self._runs.items()
            if group != mine
            for started, done in runs.values()
            if started > since
        ]
        if others:
            await asyncio.wait(others, timeout=TURN_CAP)

    def _others_active(self, key: K) -> bool:
        """Whether a group other than ``key``'s started a run in the last PACE_WINDOW s."""
        if self.group is None:
            return False
        mine = self.group(key)
        now = asyncio.get_running_loop().time()
        stale = [g for g, at in self._last_start.items() if now - at > PACE_WINDOW]
        for group in stale:
            del self._last_start[group]
        return any(group != mine for group in self._last_start)

    def _started(self, key: K) -> tuple[int, asyncio.Future[None]]:
        started = next(self._order)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if self.group is not None:
            group = self.group(key)
            self._runs.setdefault(group, {})[key] = (started, done)
            self._last_start[group] = loop.time()
        return started, done

    def _ended(self, key: K, done: asyncio.Future[None]) -> None:
        done.set_result(None)
        if self.group is not None:
            group = self.group(key)
            runs = self._runs.get(group, {})
            runs.pop(key, None)
            if not runs:
                self._runs.pop(group, None)

    async def _loop(self, key: K, entry: _Entry) -> None:
        since: int | None = None
        took = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                if since is not None and took >= self.yield_after:
                    await self._turns(key, since)
                    rest = pace(took, self.yield_after, self._others_active(key))
                    if rest > 0:
                        await asyncio.sleep(rest)
                entry.dirty = False
                since, done = self._started(key)
                began = loop.time()
                try:
                    again = await self.work(key)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    entry.failures += 1
                    delay = backoff(entry.failures)
                    if self.on_failure is not None:
                        self.on_failure(key, exc, delay)
                    else:
                        log.error("%s: %r; again in %.1fs", key, exc, delay, exc_info=exc)
                    self.add_after(key, delay)
                else:
                    entry.failures = 0
                    if again is not None:
                        self.add_after(key, again)
                finally:
                    self._ended(key, done)
                    took = loop.time() - began
                if not entry.dirty or self._closed:
                    return
        finally:
            entry.running = False
            if entry.timer is None and not entry.failures and self._entries.get(key) is entry:
                del self._entries[key]

    async def close(self, timeout: float) -> None:
        """Take no more work, cancel scheduled runs, let runs in progress end for ``timeout``
        seconds, then cancel what is left."""
        self._closed = True
        for entry in self._entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
