"""The step pods of each namespace, counted across its pipelines, for the namespace cap (pure
bookkeeping, no I/O; the event loop's thread alone changes it).

The per-pipeline cap (``SHIPWAY_MAX_RUNNING_PODS``) bounds one Pipeline; a tenant with
several big ones multiplied it. The namespace cap (``SHIPWAY_MAX_NAMESPACE_PODS``) bounds
them together. The count is level-triggered: the step pods the pod watch shows that still
hold a slot (not over, their step's container not ended), plus the pods created but not yet
shown (expected, forgotten after :data:`EXPECT_SECONDS`), so a restart counts from what
exists and two pipelines deciding at once never both take the last slot.

Pipelines held by the cap wait in order: each is woken when a slot frees, the one held
longest first, and one that takes a slot goes to the back, so the pipelines of a namespace
take turns instead of the busiest taking every slot its own pods free.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from shipway.engine.objects import Key
from shipway.engine.observe import PodView

EXPECT_SECONDS = 60.0
"""A pod created but never shown by the watch stops counting after this long."""


def occupies_slot(pod: PodView) -> bool:
    """A run step's pod that holds a slot: it is not over and its container has not ended.

    Checkout, build and upload pods (their task ids are not numbers) are not counted."""
    if not pod.step_id.isdigit() or not pod.active:
        return False
    return pod.main is None or pod.main.state != "terminated"


class NamespaceSlots:
    def __init__(
        self,
        limit: int | None,
        wake: Callable[[Key], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.wake = wake
        self.clock = clock
        self._busy: dict[str, dict[str, Key]] = {}
        """Namespace → pod name → its pipeline, for every pod holding a slot (or expected)."""
        self._own: dict[Key, int] = {}
        self._expected: dict[tuple[str, str], float] = {}
        self._held: dict[str, dict[Key, None]] = {}
        """Namespace → pipelines waiting for a slot, the one held longest first."""

    # -- counting --------------------------------------------------------------------------

    def _add(self, namespace: str, name: str, key: Key) -> None:
        pods = self._busy.setdefault(namespace, {})
        if name not in pods:
            pods[name] = key
            self._own[key] = self._own.get(key, 0) + 1

    def _remove(self, namespace: str, name: str) -> bool:
        pods = self._busy.get(namespace, {})
        key = pods.pop(name, None)
        if key is None:
            return False
        left = self._own.get(key, 0) - 1
        if left > 0:
            self._own[key] = left
        else:
            self._own.pop(key, None)
        if not pods:
            self._busy.pop(namespace, None)
        return True

    def _expire(self) -> None:
        """Forget expected pods never shown within :data:`EXPECT_SECONDS`, in every namespace.

        ``_expected`` is in the order the pods were expected (each entered once, at the
        clock's time then), so the stale ones are at its front: the scan stops at the first
        fresh one instead of reading every entry at every count (3% of the event loop's time
        in a 1000-pipeline burst, profiled).
        """
        cutoff = self.clock() - EXPECT_SECONDS
        while self._expected:
            where, at = next(iter(self._expected.items()))
            if at >= cutoff:
                return
            del self._expected[where]
            self._remove(*where)

    def busy(self, namespace: str) -> int:
        """Step pods of the namespace holding a slot, those expected included."""
        self._expire()
        return len(self._busy.get(namespace, {}))

    def others(self, key: Key) -> int:
        """The slots not this pipeline's to take: the other pipelines' pods, plus one for
        each pipeline held ahead of it (a pipeline not held yet queues behind all of them)."""
        namespace = key[0]
        taken = self.busy(namespace) - self._own.get(key, 0)
        held = self._held.get(namespace, {})
        ahead = 0
        for other in held:
            if other == key:
                break
            ahead += 1
        return taken + ahead

    def seen(self, namespace: str, name: str, key: Key | None, pod: PodView | None) -> None:
        """The watch shows a pod (None: it is gone); a slot it frees wakes a held pipeline."""
        self._expected.pop((namespace, name), None)
        holding = self._busy.get(namespace, {}).get(name)
        if key is not None and pod is not None and occupies_slot(pod):
            if holding is not None and holding != key:
                self._remove(namespace, name)
            self._add(namespace, name, key)
        elif self._remove(namespace, name):
            self._wake_free(namespace)

    def expect(self, key: Key, names: Iterable[str]) -> None:
        """Pods about to be created: they count from now, before the watch shows them."""
        now = self.clock()
        for name in names:
            if name not in self._busy.get(key[0], {}):
                self._expected[(key[0], name)] = now
                self._add(key[0], name, key)

    def unexpect(self, namespace: str, names: Iterable[str]) -> None:
        """Pods that were not created after all (refused, or the create failed)."""
        freed = False
        for name in names:
            if self._expected.pop((namespace, name), None) is not None:
                freed = self._remove(namespace, name) or freed
        if freed:
            self._wake_free(namespace)

    # -- pipelines held by the cap ---------------------------------------------------------

    def settle(self, key: Key, took: int, held: bool) -> None:
        """After a plan: the pipeline took ``took`` slots and still has steps ``held`` by the
        cap. A pipeline that took a slot and still waits goes to the back of the line."""
        namespace = key[0]
        line = self._held.setdefault(namespace, {})
        if held:
            if key in line and took:
                del line[key]
            line[key] = None
        else:
            line.pop(key, None)
        if not line:
            self._held.pop(namespace, None)
        if not held:  # its place in line may have kept the next one from a free slot
            self._wake_free(namespace)

    def forget(self, key: Key) -> None:
        """The pipeline is gone or finished: it holds no place in the line."""
        line = self._held.get(key[0])
        if line is not None and key in line:
            del line[key]
            if not line:
                self._held.pop(key[0], None)
            self._wake_free(key[0])

    def held(self, namespace: str) -> list[Key]:
        return list(self._held.get(namespace, {}))

    def _wake_free(self, namespace: str) -> None:
        """Wake as many held pipelines as there are free slots, the first in line first."""
        line = self._held.get(namespace)
        if not line or self.wake is None or self.limit is None:
            return
        free = self.limit - self.busy(namespace)
        for key in list(line)[: max(0, free)]:
            self.wake(key)
