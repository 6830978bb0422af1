"""Events on a Pipeline: what ``kubectl describe pipeline`` shows of what the operator did.

Events go out in threads of their own (:class:`~.caller.Caller`'s ``event_pool``), so a slow or
throttled Event never waits in front of a pod create or a status patch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from shipway import GROUP, KIND, VERSION
from shipway.controller import rest
from shipway.controller.kube.caller import Caller


@dataclass(frozen=True)
class EventTarget:
    name: str
    namespace: str
    uid: str


class Events(Caller):
    """The Event calls of :class:`~.facade.Kube`."""

    async def emit_event(self, target: EventTarget, type_: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{target.name}.{uuid.uuid4().hex[:16]}",
                "namespace": target.namespace,
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": target.name,
                "namespace": target.namespace,
                "uid": target.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": "shipway"},
            "reportingComponent": "shipway.dev/operator",
            "reportingInstance": self.instance,
        }
        await self._call(
            "POST",
            rest.core(target.namespace, "events"),
            body=event,
            _pool=self.event_pool,
            _decode=False,
        )
