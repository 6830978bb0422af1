"""The token endpoint over HTTP(S): ``shipway registry-token serve``.

The standard library's threading HTTP server: a token request is a few microseconds of
signing, and the clients are the cluster's own (the kubelet, BuildKit's clients, crane), so
nothing more is needed. ``GET``/``POST /token`` answers token requests, ``GET /healthz`` says
it is up, ``GET /jwks`` hands out the public key set (what the registry's ``jwks`` file holds).
"""

from __future__ import annotations

import json
import logging
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from shipway.registryauth.credentials import check_key
from shipway.registryauth.policy import MIRROR_PREFIXES, Policy
from shipway.registryauth.service import DEFAULT_TTL, Answer, Settings, answer
from shipway.registryauth.tokens import Signer

log = logging.getLogger("shipway.registryauth")
MAX_BODY = 16 * 1024
TOKEN_PATH = "/token"


def load_settings(
    *,
    key_file: Path,
    signing_key_file: Path,
    service: str,
    issuer: str,
    admin_password_file: Path | None = None,
    prefix: str = "",
    ttl: int = DEFAULT_TTL,
    public_prefixes: tuple[str, ...] = MIRROR_PREFIXES,
) -> Settings:
    """Settings from the files the Deployment mounts (each read once, at start)."""
    admin = (
        admin_password_file.read_text().strip()
        if admin_password_file and admin_password_file.is_file()
        else None
    )
    return Settings(
        key=check_key(key_file.read_bytes()),  # opaque bytes, as the operator reads them
        signer=Signer(signing_key_file.read_bytes()),
        service=service,
        issuer=issuer,
        admin_password=admin or None,
        policy=Policy(prefix=prefix, mirror_prefixes=public_prefixes),
        ttl=ttl,
    )


def make_server(
    settings: Settings,
    host: str,
    port: int,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "shipway-registry-token"
        sys_version = ""

        def _send(self, result: Answer) -> None:
            body = json.dumps(result.body).encode()
            self.send_response(result.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                self._send(Answer(200, {"status": "ok"}))
            elif url.path == "/jwks":
                self._send(Answer(200, settings.signer.jwks()))
            elif url.path == TOKEN_PATH:
                params = parse_qs(url.query)
                self._send(answer(settings, "GET", params, self.headers.get("Authorization")))
            else:
                self._send(Answer(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]}))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if url.path != TOKEN_PATH:
                self._send(Answer(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]}))
                return
            if not 0 <= length <= MAX_BODY:
                self._send(Answer(413, {"errors": [{"code": "SIZE_INVALID", "message": "body"}]}))
                return
            form = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
            self._send(answer(settings, "POST", form, None))

        def log_message(self, format: str, *args: object) -> None:
            # The path and status only: a query holds no secret, but keep lines short.
            log.info("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    if tls_cert is not None and tls_key is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_cert, tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
