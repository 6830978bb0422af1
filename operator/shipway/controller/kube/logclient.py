"""The history's ``pods/log`` GETs over kept-alive connections of their own, parsed by llhttp.

Why not the Kubernetes client's urllib3 pool: one log read through urllib3 and http.client
cost 0.9-1.2 ms of CPU here, nearly all of it Python (the request's URL and header handling,
http.client's email-module header parsing), which alone was more than archival's budget of
1 ms per step. The same GET written out by hand and its answer parsed by httptools (Node's
llhttp in C, MagicStack's binding) costs a third of that. What stays the client's own: the
credentials (``update_params_for_auth`` at every read, so the in-cluster token's refresh
hook runs as for any call) and the TLS setup (urllib3 makes and verifies each connection
from the pool manager's own settings: CA, client certificate, server name). A client that
goes through a proxy is not served here (:func:`LogClient.usable`): the caller keeps the
pool manager's path for it.
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

READ_TIMEOUT = 60.0
"""Seconds one connect, send or receive may take: a finished container's log streams at
once, so a stall is an API server gone, not a slow log."""
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


class LogReadError(Exception):
    """No complete answer: the connection failed, closed or sent something that is not HTTP."""


@dataclass
class Answer:
    """An answer other than 200 (a 200's body went to the sink as it came)."""

    status: int
    body: bytes


@dataclass
class _Parse:
    """httptools' callbacks: the body goes to ``sink`` (a 200) or is kept (anything else)."""

    sink: Callable[[bytes], None]
    status: int = 0
    error_body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    started: bool = False
    keep_alive: bool = False
    parser: Any = None

    def on_message_begin(self) -> None:
        self.started = True

    def on_headers_complete(self) -> None:
        self.status = int(self.parser.get_status_code())

    def on_body(self, chunk: bytes) -> None:
        if self.status == 200:
            self.sink(chunk)
        elif len(self.error_body) < ERROR_BODY_LIMIT:
            self.error_body += chunk[: ERROR_BODY_LIMIT - len(self.error_body)]

    def on_message_complete(self) -> None:
        # Asked here: llhttp resets its state for the next answer once this returns.
        self.keep_alive = bool(self.parser.should_keep_alive())
        self.complete = True


class LogClient:
    """Plain GETs on the API server with the client's credentials; thread-safe (each read
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
        any other status is answered with its body. A connection kept from an earlier read
        that turns out closed by the server is replaced once, before anything was read."""
        request = self._request(path)
        while True:
            sock, reused = self._take()
            parse = _Parse(sink)
            try:
                keep = self._exchange(sock, request, parse)
            except (OSError, LogReadError):
                sock.close()
                if reused and not parse.started:
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
            if parse.status == 200:
                return None
            return Answer(parse.status, bytes(parse.error_body))

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for sock in idle:
            sock.close()

    def _request(self, path: str) -> bytes:
        headers: dict[str, str] = dict(self.api.default_headers)
        self.api.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        lines = [f"GET {self.prefix}{path} HTTP/1.1", f"Host: {self.netloc}", "Accept: */*"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} has a line break")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _take(self) -> tuple[socket.socket, bool]:
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
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
                    raise LogReadError("the API server closed the connection mid-answer")
                parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise LogReadError(f"not an HTTP answer: {exc}") from None
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
