"""kopf peering's gate: open while a daemon on this replica's peering object runs, and
registered without the finalizer ``@kopf.daemon`` would put on the peering object."""

from __future__ import annotations

import asyncio

import kopf

from shipway.controller import gate


class Flag:
    """A stand-in for kopf's DaemonStopped: ``wait()`` returns once it is set."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    async def wait(self) -> None:
        await self.event.wait()


def test_the_gate_opens_with_the_first_daemon_and_closes_with_the_last() -> None:
    events: list[str] = []
    held = gate.PeeringGate(lambda: events.append("open"), lambda: events.append("close"))

    async def scenario() -> None:
        one, two = Flag(), Flag()
        first = asyncio.create_task(held.hold(one))  # type: ignore[arg-type]
        second = asyncio.create_task(held.hold(two))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert held.open
        assert events == ["open"]
        one.event.set()  # peering stops one namespace's daemon first
        await first
        assert held.open
        assert events == ["open"]
        two.event.set()
        await second
        assert not held.open

    asyncio.run(scenario())
    assert events == ["open", "close"]


def test_the_gate_is_held_on_the_peering_object_by_name_without_a_finalizer() -> None:
    held = gate.PeeringGate(lambda: None, lambda: None)
    for clusterwide, plural in ((False, "kopfpeerings"), (True, "clusterkopfpeerings")):
        registry = kopf.OperatorRegistry()
        gate.register(held, "shipway", clusterwide=clusterwide, registry=registry)
        (handler,) = registry._spawning.get_all_handlers()
        assert handler.selector is not None
        assert (handler.selector.group, handler.selector.plural) == ("kopf.dev", plural)
        assert handler.requires_finalizer is False
        assert (handler.field, handler.value) == (("metadata", "name"), "shipway")
