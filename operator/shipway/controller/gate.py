"""kopf peering decides which replica acts; this gate turns that into following Pipelines.

The operator watches Pipelines itself (:mod:`shipway.controller.pipelinewatch`), so kopf's
pause, which stops kopf's own watches, has to reach it. kopf runs a daemon only while the
operator is not paused, stops every daemon when peering pauses it, and starts them again
when it resumes: a daemon on this replica's peering object (one per watched namespace, or
the cluster's) is held exactly while this replica may act. The gate is open while at least
one such daemon runs.

kopf's ``@kopf.daemon`` always puts a finalizer on the object; on the peering object it
would keep ``helm uninstall`` (which deletes it with the operator) from ever finishing. The
handler is registered without one: nothing needs to happen when a peering object goes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import kopf

PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
HANDLER_ID = "shipway-peering-gate"


class PeeringGate:
    """Open (``on_open``) when the first daemon starts, closed (``on_close``) when the last
    one stops."""

    def __init__(self, on_open: Callable[[], None], on_close: Callable[[], None]) -> None:
        self.on_open = on_open
        self.on_close = on_close
        self.held = 0

    @property
    def open(self) -> bool:
        return self.held > 0

    async def hold(self, stopped: kopf.DaemonStopped, **_: Any) -> None:
        """The daemon: the gate is held open until kopf stops it (pause, or exit)."""
        self.held += 1
        if self.held == 1:
            self.on_open()
        try:
            await stopped.wait()
        finally:
            self.held -= 1
            if self.held == 0:
                self.on_close()


def register(
    gate: PeeringGate,
    peering: str,
    *,
    clusterwide: bool,
    registry: kopf.OperatorRegistry | None = None,
) -> None:
    """Hold ``gate`` on the peering object named ``peering`` (its ClusterKopfPeering when
    cluster-wide, else its KopfPeering in each watched namespace), without a finalizer."""
    plural = "clusterkopfpeerings" if clusterwide else "kopfpeerings"
    scratch = kopf.OperatorRegistry()
    kopf.daemon(
        group=PEERING_GROUP,
        version=PEERING_VERSION,
        plural=plural,
        id=HANDLER_ID,
        field="metadata.name",
        value=peering,
        registry=scratch,
    )(gate.hold)
    target = registry if registry is not None else kopf.get_default_registry()
    for handler in scratch._spawning.get_all_handlers():
        target._spawning.append(dataclasses.replace(handler, requires_finalizer=False))
