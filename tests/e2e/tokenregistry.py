"""A registry with per-namespace rights, of the test's own: distribution with token auth and
``shipway registry-token serve``, both plain processes on 127.0.0.1 (plain HTTP, as a
registry on the node's loopback needs no TLS: crane and containerd speak HTTP to localhost).

Nothing of the cluster's own registry is touched: this is the configuration the local
cluster's registry is meant to run with (docs/registry.md), tried on a registry of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from localkube.addons.registry.server import TokenAuth, token_auth_config
from localkube.config import Paths
from localkube.toolchain import build
from shipway.registryauth.credentials import ADMIN_USER, docker_config, namespace_password
from shipway.registryauth.server import make_server
from shipway.registryauth.service import Settings
from shipway.registryauth.tokens import Signer, new_key_pem

SERVICE = "token-registry.test"
ISSUER = "shipway-registry-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(paths: Paths, name: str) -> Path:
    """localkube's build of ``name`` (the registry has token auth linked), or the one in
    ``$SHIPWAY_E2E_BIN_DIR`` when set (binaries built by hand)."""
    override = os.environ.get("SHIPWAY_E2E_BIN_DIR")
    if override and (Path(override) / name).is_file():
        return Path(override) / name
    return build.binary(paths, name)


@dataclass
class TokenRegistry:
    host: str
    """``127.0.0.1:<port>``: what image references and pull secrets name."""
    key: bytes
    admin_password: str
    workdir: Path
    process: subprocess.Popen[bytes]
    stop_token_service: threading.Event

    def password(self, namespace: str) -> str:
        return namespace_password(self.key, namespace)

    def docker_config(self, namespace: str | None) -> str:
        """config.json of a namespace's credential, the admin's (None), for this host."""
        if namespace is None:
            return docker_config((self.host,), ADMIN_USER, self.admin_password)
        return docker_config((self.host,), namespace, self.password(namespace))

    def config_dir(self, who: str | None) -> Path:
        """A DOCKER_CONFIG directory for crane: a namespace's, the admin's, or anonymous ('')."""
        path = self.workdir / "docker" / (who if who is not None else "_admin")
        path.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"auths": {}}) if who == "" else self.docker_config(who)
        (path / "config.json").write_text(text)
        return path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.stop_token_service.set()


def start(paths: Paths, workdir: Path) -> TokenRegistry:
    key = secrets.token_bytes(32)
    admin = secrets.token_urlsafe(24)
    signer = Signer(new_key_pem())
    settings = Settings(
        key=key, signer=signer, service=SERVICE, issuer=ISSUER, admin_password=admin
    )
    token_server = make_server(settings, "127.0.0.1", 0)
    stop = threading.Event()

    def serve() -> None:
        token_server.timeout = 0.5
        while not stop.is_set():
            token_server.handle_request()
        token_server.server_close()

    threading.Thread(target=serve, daemon=True, name="registry-token").start()
    # A name, not 127.0.0.1: crane (go-containerregistry >= 0.22) refuses a realm at a
    # private or loopback IP literal unless it is the registry's own host:port.
    realm = f"http://localhost:{token_server.server_address[1]}/token"
    jwks = workdir / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        + token_auth_config(TokenAuth(realm=realm, service=SERVICE, issuer=ISSUER, jwks=str(jwks)))
        + f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen(
        [str(binary(paths, "registry")), "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
    )
    registry = TokenRegistry(f"127.0.0.1:{port}", key, admin, workdir, process, stop)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop.set()
            log_text = (workdir / "registry.log").read_text()
            if "no access controller registered with name: token" in log_text:
                raise RuntimeError(
                    f"{binary(paths, 'registry')} has no token auth linked: it was built before"
                    " hack/localkube/toolchain/gomod/registry linked it; rebuild it with"
                    " `python -m localkube build registry` (the next `localkube up` does)"
                )
            raise RuntimeError(f"the token registry exited: {log_text[-2000:]}")
        try:
            urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=2)
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and "Bearer" in exc.headers.get("WWW-Authenticate", ""):
                return registry
        except OSError:
            pass
        time.sleep(0.2)
    registry.stop()
    raise RuntimeError("the token registry did not answer in 30s")
