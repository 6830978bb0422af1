"""kopf's readiness gate keeps its meaning with the polling wait (shipway.kopf_fixes)."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from shipway import kopf_fixes


def test_waiters_are_released_when_every_object_is_indexed() -> None:
    kopf_fixes.install()

    async def scenario() -> list[str]:
        gate = aiotoggles.ToggleSet(all)
        listing = await gate.make_toggle(name="the list")
        order: list[str] = []

        async def worker(i: int) -> None:
            mine = await gate.make_toggle(name=str(i))
            await gate.drop_toggle(mine)  # indexed
            await gate.wait_for(True)
            order.append(f"handled {i}")

        workers = [asyncio.ensure_future(worker(i)) for i in range(50)]
        await asyncio.sleep(0.2)
        order.append("list complete")
        await gate.drop_toggle(listing)
        await asyncio.gather(*workers)
        return order

    order = asyncio.run(scenario())
    assert order[0] == "list complete"
    assert len(order) == 51


def test_waiting_for_off_still_works_for_pausing() -> None:
    kopf_fixes.install()

    async def scenario() -> bool:
        paused = aiotoggles.ToggleSet(any)
        toggle = await paused.make_toggle(True, name="peering conflict")
        waiter = asyncio.ensure_future(paused.wait_for(False))
        await asyncio.sleep(0.1)
        still_waiting = not waiter.done()
        await toggle.turn_to(False)
        await asyncio.wait_for(waiter, 5)
        return still_waiting

    assert asyncio.run(scenario())


def test_install_is_idempotent() -> None:
    kopf_fixes.install()
    kopf_fixes.install()
    assert aiotoggles.ToggleSet.wait_for is kopf_fixes._wait_for
