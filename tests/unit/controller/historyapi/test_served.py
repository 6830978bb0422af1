"""The read API's start: a first failure is tried again in the background until it serves,
and stopping ends the tries or the server (issue 24: a failed first try left the APIService
unavailable for the operator pod's whole life)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from shipway.controller.historyapi.server import Served


class Attempts:
    """Fails ``failures`` times, then serves a runner (a real one, never listening)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.cleaned = 0

    async def __call__(self) -> web.AppRunner:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("the API server is busy")
        runner = web.AppRunner(web.Application())
        await runner.setup()
        return runner


def test_a_failed_first_try_is_retried_until_it_serves() -> None:
    async def scenario() -> None:
        attempts = Attempts(failures=2)
        served = Served(attempts, backoff=0.01)
        await served.first()
        assert served.runner is None
        assert attempts.calls == 1
        for _ in range(200):
            if served.runner is not None:
                break
            await asyncio.sleep(0.01)
        assert served.runner is not None
        assert attempts.calls == 3
        await served.cleanup()

    asyncio.run(scenario())


def test_serving_at_once_starts_no_retries() -> None:
    async def scenario() -> None:
        attempts = Attempts(failures=0)
        served = Served(attempts, backoff=0.01)
        await served.first()
        assert served.runner is not None
        assert served.task is None
        await served.cleanup()
        assert attempts.calls == 1

    asyncio.run(scenario())


def test_stopping_ends_the_retries() -> None:
    async def scenario() -> None:
        attempts = Attempts(failures=10**6)
        served = Served(attempts, backoff=0.01)
        await served.first()
        await asyncio.sleep(0.05)
        await served.cleanup()
        assert served.task is not None
        assert served.task.done()
        calls = attempts.calls
        await asyncio.sleep(0.05)
        assert attempts.calls == calls  # no try after the stop

    asyncio.run(scenario())
