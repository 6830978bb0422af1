"""Every step pod the operator can see, summarised, grouped by pipeline (pure, no I/O).

Filled by :mod:`shipway.controller.podwatch` from one list and watch per namespace (or one for the whole
cluster). It keeps a :class:`PodView` per pod, a few hundred bytes, instead of the object, and
tells which pipelines a change concerns, so that an update that changes nothing Shipway reads
(a kubelet heartbeat, a condition's probe time) wakes no reconcile, nor does one its pipeline
says cannot change its plan (``quiet``: :mod:`shipway.engine.wakes`). The store keeps the
newest view either way: the next reconcile plans from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shipway.engine.objects import Key
from shipway.engine.observe import PodView, controller_name, pod_view
from shipway.engine.slots import NamespaceSlots
from shipway.engine.untrusted import mapping, text


def pod_entry(pod: Mapping[str, Any]) -> tuple[Key, PodView] | None:
    """The pipeline a pod belongs to and its summary; None for a pod that is not a step's.

    A pod belongs to the Pipeline of its controller ownerReference, never to the one its
    labels name (anyone who may create pods may write labels). The reconciler also compares
    the reference's UID with the Pipeline's: a pod left by an earlier Pipeline of the same
    name is not the new one's either.
    """
    meta = mapping(pod.get("metadata"))
    pipeline = controller_name(meta)
    if not pipeline:
        return None
    view = pod_view(pod)
    if view is None or view.owner_uid is None:
        return None
    return (text(meta.get("namespace")) or "", pipeline), view


class PodStore:
    """Step pods by pipeline. Not thread-safe: the event loop's thread alone changes it."""

    def __init__(self, slots: NamespaceSlots | None = None) -> None:
        self.slots = slots
        """Told of every pod, to count each namespace's step pods (the namespace cap)."""
        self.quiet: Callable[[Key, PodView | None, PodView], bool] | None = None
        """``quiet(pipeline, old, new)``: this change of a pod's view cannot change the
        pipeline's plan, so it wakes nobody (None: every change wakes)."""
        self._by_key: dict[Key, dict[str, PodView]] = {}
        self._key_of: dict[tuple[str, str], Key] = {}
        """(namespace, pod name) → its pipeline, for deletions and relabelled pods."""

    def pods(self, key: Key) -> list[PodView]:
        return list(self._by_key.get(key, {}).values())

    def __len__(self) -> int:
        return len(self._key_of)

    def put(self, namespace: str, name: str, entry: tuple[Key, PodView] | None) -> set[Key]:
        """One pod added, changed or (``entry`` None) gone; the pipelines that changed."""
        where = (namespace, name)
        old_key = self._key_of.get(where)
        changed: set[Key] = set()
        if old_key is not None and (entry is None or entry[0] != old_key):
            group = self._by_key.get(old_key, {})
            group.pop(name, None)
            if not group:
                self._by_key.pop(old_key, None)
            del self._key_of[where]
            changed.add(old_key)
        if entry is not None:
            key, view = entry
            group = self._by_key.setdefault(key, {})
            old = group.get(name)
            if old != view:
                group[name] = view
                if self.quiet is None or not self.quiet(key, old, view):
                    changed.add(key)
            self._key_of[where] = key
        if self.slots is not None:
            self.slots.seen(namespace, name, *(entry or (None, None)))
        return changed

    def replace(
        self, namespace: str | None, entries: Iterable[tuple[str, str, tuple[Key, PodView]]]
    ) -> set[Key]:
        """A fresh list of one namespace (None: every namespace); the pipelines that changed.

        ``entries`` are (namespace, pod name, entry). Pods missing from the list are gone:
        they were deleted while the watch was down.
        """
        fresh = list(entries)
        seen = {(ns, name) for ns, name, _ in fresh}
        changed: set[Key] = set()
        for where in [w for w in self._key_of if namespace is None or w[0] == namespace]:
            if where not in seen:
                changed |= self.put(where[0], where[1], None)
        for ns, name, entry in fresh:
            changed |= self.put(ns, name, entry)
        return changed
