"""Every request of the operator's calls (and the history's ``pods/log`` reads) over
kept-alive connections of its own, the answers parsed by llhttp.

Why not the Kubernetes client's urllib3 pool: a request through urllib3 and http.client cost
0.32-0.40 ms of CPU (a GET, a merge PATCH, an Event's POST, 1000 of each one by one against
the local API server), nearly all of it Python: the URL and header handling, http.client's
email-module header parsing. The operator makes three writes per step, and its log reads
were more than archival's budget of 1 ms per step. The same requests written out by hand and
their answers parsed by httptools (Node's llhttp in C, MagicStack's binding) cost 0.13 ms. What stays the client's own: the credentials (``update_params_for_auth`` at
every request, so the in-cluster token's refresh hook runs as for any call) and the TLS setup
(urllib3 makes and verifies each connection from the pool manager's own settings: CA, client
certificate, server name). A client that goes through a proxy is not served here
(:func:`Wire.usable`): the caller keeps the pool manager's path for it. Watches stream for
minutes on the pool manager's connections: their cost is the events, not the request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools
from kubernetes import client
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.wait import wait_for_read

READ_TIMEOUT = 60.0
"""Seconds one connect, send or receive may take: the API server answers a write or a
finished container's log at once (kopf's request timeout is the same 60 s), so a stall is
an API server gone."""
ERROR_BODY_LIMIT = 64 * 1024
"""Bytes kept of an error answer (a Status object) for its message."""
_CONNECTION_KEYS = (
    "cert_reqs",
    "ca_certs",
    "ca_cert_dir",
    "ca_cert_data",
    "cert_file",
    "key_file",
    "key_password",
    "assert_hostname",
    "assert_fingerprint",
    "server_hostname",
    "ssl_version",
    "ssl_minimum_version",
    "ssl_maximum_version",
    "socket_options",
)
"""The pool manager's settings that make a connection (its pool size and retries do not)."""


class WireError(Exception):
    """No complete answer: the connection failed, closed or sent something that is not HTTP."""


@dataclass
class Answer:
    """An answer: for :meth:`Wire.get`, one other than 200 (a 200's body went to the sink as
    it came)."""

    status: int
    body: bytes
    reason: str = ""


@dataclass
class _Parse:
    """httptools' callbacks: the body goes to ``sink`` (a 200) or is kept (anything else;
    everything without a sink)."""

    sink: Callable[[bytes], None] | None
    """Where a 200's body goes; None: every body is kept whole."""
    status: int = 0
    reason: bytearray = field(default_factory=bytearray)
    kept: bytearray = field(default_factory=bytearray)
    complete: bool = False
    started: bool = False
    keep_alive: bool = False
    parser: Any = None

    def on_message_begin(self) -> None:
        self.started = True

    def on_status(self, text: bytes) -> None:
        self.reason += text

    def on_headers_complete(self) -> None:
        self.status = int(self.parser.get_status_code())

    def on_body(self, chunk: bytes) -> None:
        if self.sink is None:
            self.kept += chunk
        elif self.status == 200:
            self.sink(chunk)
        elif len(self.kept) < ERROR_BODY_LIMIT:
            self.kept += chunk[: ERROR_BODY_LIMIT - len(self.kept)]

    def on_message_complete(self) -> None:
        # Asked here: llhttp resets its state for the next answer once this returns.
        self.keep_alive = bool(self.parser.should_keep_alive())
        self.complete = True


class Wire:
    """Requests on the API server with the client's credentials; thread-safe (each request
    takes an idle connection or makes one, and gives it back when its answer is whole)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        url = urlsplit(api.configuration.host)
        self.https = url.scheme == "https"
        self.host = url.hostname or "localhost"
        self.port = url.port or (443 if self.https else 80)
        self.netloc = url.netloc
        self.prefix = url.path.rstrip("/")
        settings = api.rest_client.pool_manager.connection_pool_kw
        keys = _CONNECTION_KEYS if self.https else ("socket_options",)
        self.settings = {k: settings[k] for k in keys if k in settings}
        self.idle: list[socket.socket] = []
        self.lock = threading.Lock()

    @staticmethod
    def usable(api: client.ApiClient) -> bool:
        """Whether the client talks to the API server directly (no proxy), over HTTP(S)."""
        scheme = urlsplit(api.configuration.host).scheme
        return scheme in ("http", "https") and type(api.rest_client.pool_manager) is PoolManager

    def get(self, path: str, sink: Callable[[bytes], None]) -> Answer | None:
        """GET ``path``: a 200's body goes to ``sink`` piece by piece and None is answered;
        any other status is answered with its body."""
        answer = self._send(self._request("GET", path, "*/*"), _Parse(sink), repeatable=True)
        return None if answer.status == 200 else answer

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> Answer:
        """One request and its whole answer, whatever its status."""
        request = self._request(
            method, path, "application/json", body=body, content_type=content_type
        )
        return self._send(request, _Parse(None), repeatable=method == "GET")

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for sock in idle:
            sock.close()

    def _send(self, request: bytes, parse: _Parse, *, repeatable: bool) -> Answer:
        """A connection kept from an earlier request that turns out closed by the server is
        replaced: at once when it shows so before the request goes, and once after, before
        anything was read, for a request that is safe to repeat (a GET). A write that met
        a closed connection fails as urllib3's would: the caller tries again from the
        cluster's state."""
        while True:
            sock, reused = self._take()
            try:
                keep = self._exchange(sock, request, parse)
            except (OSError, WireError):
                sock.close()
                if reused and repeatable and not parse.started:
                    parse = _Parse(parse.sink)
                    continue  # the server had closed it while idle: a GET is safe to repeat
                raise
            except BaseException:
                sock.close()
                raise
            if keep:
                with self.lock:
                    self.idle.append(sock)
            else:
                sock.close()
            reason = parse.reason.decode("latin-1")
            return Answer(parse.status, bytes(parse.kept), reason)

    def _request(
        self,
        method: str,
        path: str,
        accept: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> bytes:
        headers: dict[str, str] = dict(self.api.default_headers)
        self.api.update_params_for_auth(headers, [], ["BearerToken"], path, method, None)
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.netloc}"]
        lines.append(f"Accept: {accept}")
        if body is not None:
            lines.append(f"Content-Type: {content_type or 'application/json'}")
            lines.append(f"Content-Length: {len(body)}")
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} has a line break")
            lines.append(f"{name}: {value}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + body if body is not None else head

    def _take(self) -> tuple[socket.socket, bool]:
        """An idle connection the server has not closed meanwhile (urllib3's check: one
        with something to read before a request went is closed or broken), or a new one."""
        while True:
            with self.lock:
                if not self.idle:
                    break
                sock = self.idle.pop()
            if wait_for_read(sock, timeout=0.0):
                sock.close()
                continue
            return sock, True
        return self._connect(), False

    def _connect(self) -> socket.socket:
        kind = HTTPSConnection if self.https else HTTPConnection
        connection = kind(self.host, self.port, timeout=READ_TIMEOUT, **self.settings)
        connection.connect()  # TLS set up and the server's certificate checked by urllib3
        sock = connection.sock
        assert sock is not None
        connection.sock = None  # the socket is ours now; the connection object is dropped
        return sock

    @staticmethod
    def _exchange(sock: socket.socket, request: bytes, parse: _Parse) -> bool:
        """Send the request, feed the answer to the parser; whether the connection may be
        used again."""
        parser = httptools.HttpResponseParser(parse)
        parse.parser = parser
        sock.sendall(request)
        try:
            while not parse.complete:
                data = sock.recv(65536)
                if not data:
                    raise WireError("the API server closed the connection mid-answer")
                parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise WireError(f"not an HTTP answer: {exc}") from None
        return parse.keep_alive


class PooledLogs:
    """The same GETs on the client's own urllib3 pool: for a client that goes through a proxy."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def get(self, path: str, sink: Callable[[bytes], None]) -> Answer | None:
        headers = dict(self.api.default_headers)
        self.api.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        response: Any = self.api.rest_client.pool_manager.request(
            "GET", f"{self.api.configuration.host}{path}", headers=headers, preload_content=False
        )
        try:
            if response.status == 200:
                for chunk in response.stream(64 * 1024):
                    sink(chunk)
                return None
            return Answer(response.status, response.read())
        finally:
            response.release_conn()

    def close(self) -> None:
        pass  # the pool is the client's: it closes it
