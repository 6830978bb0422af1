"""The history read API: routes and access (pure), and the real TLS server's trust model.

The server runs here for real, over TLS, with a request-header CA made for the test: only a
connection presenting a front-proxy certificate that CA signed may name a user, each request
is authorised for that user (a recorded fake SubjectAccessReview), and the client reader
(:class:`ApiReader`) reads runs, pages and logs back through it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from shipway.controller.historyapi.frontproxy import FrontProxy, User
from shipway.controller.historyapi.server import HistoryApiServer, review_body
from shipway.history import api
from shipway.history.api import Access, ApiReader, route
from shipway.history.reader import StoreReader
from shipway.history.records import RunRecord
from shipway.history.store import ArchivedLog, SqlStore, cursor

T0 = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)


def record(n: int, namespace: str = "a", **kw: Any) -> RunRecord:
    return RunRecord(
        uid=kw.get("uid", f"{namespace}-uid-{n}"),
        namespace=namespace,
        name=kw.get("name", f"app-{n}"),
        project="app",
        branch="main",
        commit="abc123",
        trigger="upload",
        phase="Failed" if n % 2 else "Succeeded",
        reason="",
        message="",
        created_at=T0 + timedelta(minutes=n),
        started_at=T0 + timedelta(minutes=n),
        finished_at=T0 + timedelta(minutes=n, seconds=30),
        steps=1,
        spec_json='{"steps":[]}',
        status_json=json.dumps(
            {"phase": "Succeeded", "steps": [{"id": "1", "pod": f"p{n}"}]}, separators=(",", ":")
        ),
    )


def test_routes_name_the_rbac_question_each_asks() -> None:
    p = api.PREFIX
    assert route(f"{p}/namespaces/a/runs").access == Access("list", "pipelines", "a")  # type: ignore[union-attr]
    assert route(f"{p}/runs").access == Access("list", "pipelines", "")  # type: ignore[union-attr]
    got = route(f"{p}/namespaces/a/runs/x")
    assert got is not None
    assert got.access == Access("get", "pipelines", "a", name="x")
    log = route(f"{p}/namespaces/a/runs/x/log")
    assert log is not None
    assert log.access is not None
    assert log.access.attributes() == {
        "verb": "get",
        "resource": "pods",
        "subresource": "log",
        "namespace": "a",
    }
    assert route("/apis").kind == "discovery"  # type: ignore[union-attr]
    assert route(f"{p}").access is None  # type: ignore[union-attr]
    assert route(f"{p}/namespaces/a/pods") is None
    assert route("/api/v1/pods") is None


def test_a_run_survives_the_wire_and_its_cursor_is_the_stores() -> None:
    rec = record(3)
    back = api.record_of(json.loads(json.dumps(api.run_object(rec, whole=True))))
    assert back == rec
    page = api.run_list([record(1), record(2)], limit=2)
    assert page["metadata"]["continue"] == cursor(record(2))
    assert "continue" not in api.run_list([record(1)], limit=2)["metadata"]
    with pytest.raises(ValueError, match="limit"):
        api.limit_of("-1")
    assert api.limit_of("100000") == 500


def test_the_review_asks_for_the_user_with_their_groups() -> None:
    body = review_body(User("alice", ("devs",)), Access("list", "pipelines", "a"))
    assert body["spec"] == {
        "user": "alice",
        "groups": ["devs"],
        "resourceAttributes": {
            "verb": "list",
            "group": "shipway.dev",
            "resource": "pipelines",
            "namespace": "a",
        },
    }


def test_front_proxy_settings_come_from_the_config_map() -> None:
    data = {
        "requestheader-client-ca-file": "-----BEGIN CERTIFICATE-----\n...",
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
    }
    proxy = FrontProxy.from_config_map(data)
    assert proxy.allowed_names == ("front-proxy-client",)
    assert proxy.group_headers == ("X-Remote-Group",)
    with pytest.raises(ValueError, match="requestheader-client-ca-file"):
        FrontProxy.from_config_map({"client-ca-file": "x"})


# --- the server for real, over TLS ---------------------------------------------------------


@dataclass
class Pki:
    ca: str
    server_cert: Path
    server_key: Path
    proxy_cert: Path
    proxy_key: Path
    stranger_cert: Path
    stranger_key: Path
    other_ca_cert: Path
    other_ca_key: Path


def _pki(directory: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(cn: str, issuer: Any, issuer_key: Any, *, ca: bool = False) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer or name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
            )
        return builder.sign(issuer_key or key, hashes.SHA256()), key

    def write(stem: str, pair: tuple[Any, Any]) -> tuple[Path, Path]:
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        crt.write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            pair[1].private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return crt, key

    ca_cert, ca_key = cert("front-proxy-ca", None, None, ca=True)
    other_cert, other_key = cert("other-ca", None, None, ca=True)
    server = write("server", cert("localhost", None, None))
    proxy = write("proxy", cert("front-proxy-client", ca_cert.subject, ca_key))
    stranger = write("stranger", cert("someone-else", ca_cert.subject, ca_key))
    other = write("other", cert("front-proxy-client", other_cert.subject, other_key))
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode()
    return Pki(ca_pem, *server, *proxy, *stranger, *other)


class Rbac:
    """A fake SubjectAccessReview: alice may list and get pipelines in "a" only; bob may
    also read pods/log there. Every question is recorded."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Access]] = []

    async def __call__(self, user: User, access: Access) -> bool:
        self.asked.append((user.name, access))
        if access.namespace != "a":
            return False
        if access.resource == "pipelines":
            return user.name in ("alice", "bob")
        return user.name == "bob" and access.subresource == "log"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Pki, Rbac, int, asyncio.AbstractEventLoop]]:
    pki = _pki(tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'history.db'}")
    store.save_runs([record(n) for n in range(1, 6)] + [record(9, namespace="b")])
    store.save_logs([ArchivedLog("a-uid-5", "p5", "pod-uid-5", "step", "hello from 5\n", 13)])
    store.save_logs([ArchivedLog("b-uid-9", "p9", "pod-uid-9", "step", "secret of b\n", 12)])
    rbac = Rbac()
    proxy = FrontProxy(ca_pem=pki.ca, allowed_names=("front-proxy-client",))
    server = HistoryApiServer(proxy, lambda: StoreReader(store), rbac)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(
        runner,
        "127.0.0.1",
        0,
        ssl_context=proxy.ssl_context(str(pki.server_cert), str(pki.server_key)),
    )
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield pki, rbac, port, loop
    loop.run_until_complete(runner.cleanup())
    loop.close()
    store.close()


def _get(
    loop: asyncio.AbstractEventLoop,
    port: int,
    path: str,
    cert: tuple[Path, Path] | None,
    *,
    user: str | None = "alice",
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    headers = {"X-Remote-User": user, "X-Remote-Group": "devs"} if user else {}

    async def go() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"https://127.0.0.1:{port}{path}", ssl=context, headers=headers, params=query
            ) as response,
        ):
            return response.status, await response.json()

    return loop.run_until_complete(go())


def test_only_the_front_proxy_may_name_a_user(served: Any) -> None:
    pki, rbac, port, loop = served
    runs = f"{api.PREFIX}/namespaces/a/runs"
    assert _get(loop, port, runs, None)[0] == 401  # no certificate: anyone with the headers
    code, body = _get(loop, port, runs, (pki.stranger_cert, pki.stranger_key))
    assert code == 401
    assert "not a front proxy" in body["message"]
    with pytest.raises(aiohttp.ClientError):  # signed by another CA: no TLS session at all
        _get(loop, port, runs, (pki.other_ca_cert, pki.other_ca_key))
    code, body = _get(loop, port, runs, (pki.proxy_cert, pki.proxy_key), user=None)
    assert code == 401
    assert "no user" in body["message"]
    assert rbac.asked == []  # nobody was even asked about
    code, body = _get(loop, port, api.PREFIX, (pki.proxy_cert, pki.proxy_key), user=None)
    assert code == 200
    assert body["kind"] == "APIResourceList"


def test_a_user_reads_what_rbac_lets_them_and_nothing_else(served: Any) -> None:
    pki, rbac, port, loop = served
    proxy = (pki.proxy_cert, pki.proxy_key)
    code, body = _get(loop, port, f"{api.PREFIX}/namespaces/a/runs", proxy, query={"limit": "2"})
    assert code == 200
    assert [i["metadata"]["name"] for i in body["items"]] == ["app-5", "app-4"]
    assert rbac.asked[-1] == ("alice", Access("list", "pipelines", "a"))
    code, body = _get(loop, port, f"{api.PREFIX}/namespaces/b/runs", proxy)
    assert code == 403
    assert body["message"] == 'user "alice" cannot list pipelines in the namespace "b"'
    assert _get(loop, port, f"{api.PREFIX}/runs", proxy)[0] == 403  # every namespace: no
    code, body = _get(loop, port, f"{api.PREFIX}/namespaces/a/runs/app-5", proxy)
    assert code == 200
    assert body["status"]["steps"][0]["pod"] == "p5"
    # Logs need pods/log, which alice lacks and bob has.
    log = f"{api.PREFIX}/namespaces/a/runs/app-5/log"
    assert _get(loop, port, log, proxy)[0] == 403
    code, body = _get(loop, port, log, proxy, user="bob")
    assert code == 200
    assert body["items"][0]["text"] == "hello from 5\n"
    # b's run, by its UID, through a's path: not found (a UID never crosses namespaces).
    code, _ = _get(loop, port, log, proxy, user="bob", query={"uid": "b-uid-9"})
    assert code == 404
    assert _get(loop, port, f"{api.PREFIX}/namespaces/a/runs/nope", proxy)[0] == 404


def test_the_api_reader_pages_and_reads_logs_through_the_server(served: Any) -> None:
    pki, _, port, loop = served

    def transport(path: str, query: Any) -> Any:
        code, body = _get(
            loop, port, path, (pki.proxy_cert, pki.proxy_key), user="bob", query=dict(query)
        )
        if code == 404:
            return None
        assert code == 200, body
        return body

    reader = ApiReader(transport)
    first = reader.page("a", limit=2)
    assert [r.name for r in first] == ["app-5", "app-4"]
    second = reader.page("a", limit=2, before=cursor(first[-1]))
    assert [r.name for r in second] == ["app-3", "app-2"]
    assert [r.name for r in reader.page("a", phase="Failed")] == ["app-5", "app-3", "app-1"]
    run = reader.run("a", "app-5")
    assert run is not None
    assert run == record(5)
    logs = reader.logs("a", "app-5", run.uid)
    assert [(i.pod, i.container, i.text) for i in logs] == [("p5", "step", "hello from 5\n")]
    assert reader.run("a", "gone") is None
