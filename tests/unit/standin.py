"""A stand-in API server for the tests of the operator's own HTTP calls: a real socket on
localhost, the request handler a test writes, and a client configuration pointing at it with
a bearer token, so the credentials each call sends can be checked too. Plus a fresh
interpreter for what a test must observe from a clean import state."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from kubernetes import client

TOKEN = "t0ken"


class Answers(BaseHTTPRequestHandler):
    """Mixed into a test's handler (``class Handler(Answers, BaseHTTPRequestHandler)``)."""

    protocol_version = "HTTP/1.1"  # kept-alive, as the API server's

    def answer(self, status: int, body: bytes | Any, kind: str = "application/json") -> None:
        """``body`` as is when bytes, else as JSON."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class ListWatch(Answers):
    """A list answers ``page()``; a watch (``watch=true``) ``events()``, one JSON line each.
    Every path asked is appended to ``paths``, the test's own list."""

    paths: ClassVar[list[str]]

    def page(self) -> dict[str, Any]:
        raise NotImplementedError

    def events(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def do_GET(self) -> None:
        self.paths.append(self.path)
        if "watch=true" in self.path:
            self.answer(200, b"".join(json.dumps(e).encode() + b"\n" for e in self.events()))
        else:
            self.answer(200, self.page())


@contextmanager
def stand_in(handler: type[BaseHTTPRequestHandler]) -> Iterator[client.Configuration]:
    """Serve ``handler`` until the block ends; the configuration to reach it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    configuration.api_key = {"authorization": TOKEN}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    try:
        yield configuration
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def stand_in_default(handler: type[BaseHTTPRequestHandler]) -> Iterator[None]:
    """Serve ``handler`` as the client's default configuration until the block ends (code
    that makes its own ``ApiClient()``, as the watches do)."""
    with stand_in(handler) as configuration:
        client.Configuration.set_default(configuration)
        try:
            yield
        finally:
            client.Configuration.set_default(None)


def list_then_watch(watch_of: Callable[[asyncio.AbstractEventLoop], Any]) -> str:
    """One list, then one watch from its version, of the watch thread ``watch_of`` makes on
    a fresh event loop (its calls posted to the loop run too); the version it ends at."""

    async def run() -> str:
        watch = watch_of(asyncio.get_running_loop())
        version = await asyncio.to_thread(watch._list)
        version = await asyncio.to_thread(watch._watch, version)
        await asyncio.sleep(0.1)  # the posted calls run
        watch.api.close()
        return str(version)

    return asyncio.run(run())


def run_fresh_python(code: str) -> str:
    """What ``code`` prints, run in a new interpreter (nothing imported yet)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    return done.stdout
