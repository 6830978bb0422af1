"""Giving the C heap back: the glibc calls exist here and do what they say."""

from __future__ import annotations

import asyncio
import gc
import platform

import pytest

from shipway.controller import heap

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's"
)


@glibc
def test_trim_returns_what_malloc_trim_says() -> None:
    trim = heap.trimmer()
    assert trim is not None
    blocks = [bytearray(256 * 1024) for _ in range(64)]  # 16 MiB from the C heap
    del blocks
    assert trim() in (0, 1)


@glibc
def test_the_arena_limit_is_accepted() -> None:
    assert heap.limit_arenas(2)


def test_trim_every_calls_the_trimmer_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake() -> int:
        calls.append(1)
        return 1

    monkeypatch.setattr(heap, "trimmer", lambda: fake)

    async def run() -> None:
        task = asyncio.ensure_future(heap.trim_every(0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(run())
    assert len(calls) >= 3


def test_the_collector_freezes_start_up_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    try:
        heap.tune_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == heap.YOUNG_COLLECTION_EVERY > before[0]
        assert gc.get_threshold()[1:] == before[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
