"""Kube.read_log's plain GET against a stand-in API server: the path, the credentials, the
cap, and what each answer means."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from kubernetes import client

from shipway.controller.kube import Kube, KubeError, LogRead
from tests.unit.standin import TOKEN, Answers, stand_in

SEEN: list[tuple[str, str | None]] = []
LOG = b"".join(b"line %d\n" % n for n in range(2000))


class Handler(Answers, BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append((self.path, self.headers.get("Authorization")))
        if "/pods/gone/" in self.path:
            self.answer(404, b'{"kind":"Status","reason":"NotFound","message":"pods gone"}')
        elif "/pods/waiting/" in self.path:
            self.answer(400, b'{"kind":"Status","message":"container is waiting to start"}')
        elif "/pods/secret/" in self.path:
            body = {"kind": "Status", "reason": "Forbidden", "message": "pods/log is forbidden"}
            self.answer(403, json.dumps(body).encode())
        else:
            self.answer(200, LOG, "text/plain")


@pytest.fixture
def kube() -> Iterator[Kube]:
    with stand_in(Handler) as configuration:
        made = Kube(client.ApiClient(configuration), threads=1, event_threads=1)
        SEEN.clear()
        yield made
        made.close()


def test_a_log_is_read_with_the_clients_credentials_and_capped(kube: Kube) -> None:
    async def reads() -> tuple[LogRead | None, LogRead | None]:
        whole = await kube.read_log("ci", "p-1", "step", 1 << 20)
        capped = await kube.read_log("ci", "p 2", "db", 1000)
        return whole, capped

    whole, capped = asyncio.run(reads())
    assert whole == LogRead(LOG, len(LOG), False)
    assert capped is not None
    assert (capped.size, capped.truncated) == (len(LOG), True)
    assert capped.data.startswith(b"line 0\n")
    assert capped.data.endswith(b"line 1999\n")
    assert b"bytes of this log were cut here" in capped.data
    assert [
        ("/api/v1/namespaces/ci/pods/p-1/log?container=step", f"Bearer {TOKEN}"),
        ("/api/v1/namespaces/ci/pods/p%202/log?container=db", f"Bearer {TOKEN}"),
    ] == SEEN


def test_a_gone_pod_a_waiting_container_and_a_refusal(kube: Kube) -> None:
    assert asyncio.run(kube.read_log("ci", "gone", "step", 100)) is None
    assert asyncio.run(kube.read_log("ci", "waiting", "step", 100)) == LogRead(b"", 0, False)
    with pytest.raises(KubeError, match="pods/log is forbidden") as raised:
        asyncio.run(kube.read_log("ci", "secret", "step", 100))
    assert (raised.value.status, raised.value.reason) == (403, "Forbidden")
    # the connection went back to the pool after each answer: the next read works
    assert asyncio.run(kube.read_log("ci", "p-1", "step", 1 << 20)) is not None


def test_an_api_server_that_does_not_answer_is_a_passing_failure() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard: nothing listens
    configuration.retries = 0
    made = Kube(client.ApiClient(configuration), threads=1, event_threads=1)
    try:
        with pytest.raises(KubeError) as raised:
            asyncio.run(made.read_log("ci", "p", "step", 100))
        assert raised.value.status == 0
    finally:
        made.close()
