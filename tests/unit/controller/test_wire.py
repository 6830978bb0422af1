"""The operator's own requests (controller/kube/wire.py) against a stand-in API server that
answers byte by byte as told: log GETs on kept-alive connections, chunked answers, a
connection the server closed while idle, one cut mid-answer, TLS with the client's CA, a batch
of pods read in one go; and the writes (a pod's create, a status patch, a delete) with their
bodies, their Status errors, and never repeated once sent."""

from __future__ import annotations

import asyncio
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from shipway.controller import metrics
from shipway.controller.certs import self_signed
from shipway.controller.kube import Kube, KubeError, LogRead
from shipway.controller.kube.wire import PooledLogs, Wire

LOG = b"".join(b"line %d\n" % n for n in range(300))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.tls = tls
        self.connections = 0
        self.requests: list[str] = []
        self.writes: list[tuple[str, str, dict[str, str], bytes]] = []
        """(method, path, headers, body) of every request that is not a GET."""
        self.close_after_answer = False


class Handler(socketserver.StreamRequestHandler):
    server: Server

    def setup(self) -> None:
        if self.server.tls is not None:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        self.server.connections += 1
        super().setup()

    def handle(self) -> None:
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                byte = self.rfile.read(1)
                if not byte:
                    return
                head += byte
            lines = head.decode().split("\r\n")
            method, path = lines[0].split(" ")[:2]
            self.server.requests.append(path)
            headers = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in lines[1:] if ln)}
            assert headers["authorization"] == "Bearer t0ken"
            assert headers["host"] == f"127.0.0.1:{self.server.server_address[1]}"
            if method != "GET":
                body = self.rfile.read(int(headers.get("content-length", "0")))
                self.server.writes.append((method, path, headers, body))
                if not self._write(path, body):
                    return
                continue
            if "/pods/cut/" in path:  # says 1000 bytes, sends 10, hangs up
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                return
            if "/pods/gone/" in path:
                body = b'{"kind":"Status","reason":"NotFound","message":"pods gone"}'
                self.wfile.write(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                self.wfile.write(body)
            elif "/pods/secret/" in path:
                body = b'{"kind":"Status","reason":"Forbidden","message":"pods/log is forbidden"}'
                self.wfile.write(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                self.wfile.write(body)
            else:  # chunked, as the API server streams a log
                self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for start in range(0, len(LOG), 1000):
                    part = LOG[start : start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            if self.server.close_after_answer:
                return  # hangs up while the client keeps the connection for its next read

    def _write(self, path: str, body: bytes) -> bool:
        """Answer a write as the API server would; False: hang up instead."""
        if path.endswith("/pods/cut"):  # the create arrived; the server hangs up unanswered
            return False
        if path.endswith("/pods") and b'"name":"taken"' in body:
            status = b'{"kind":"Status","reason":"AlreadyExists","message":"pods taken exists"}'
            head = b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\n\r\n" % len(status)
            self.wfile.write(head + status)
        elif path.endswith("/status"):
            status = b'{"kind":"Status","reason":"Invalid","message":"status.phase: Unsupported"}'
            head = b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: %d\r\n\r\n"
            self.wfile.write(head % len(status) + status)
        else:  # the object as stored (a delete: a Status), in one chunk
            answer = body or b'{"kind":"Status","status":"Success"}'
            self.wfile.write(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(answer), answer))
        self.wfile.flush()
        return not self.server.close_after_answer


def serve(tls: ssl.SSLContext | None = None) -> Server:
    server = Server(tls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_kube(server: Server, scheme: str = "http", ca: str | None = None) -> Kube:
    configuration = client.Configuration()
    configuration.host = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    configuration.api_key = {"authorization": "t0ken"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.ssl_ca_cert = ca
    return Kube(client.ApiClient(configuration), threads=1, event_threads=1)


@pytest.fixture
def server() -> Iterator[Server]:
    made = serve()
    yield made
    made.shutdown()
    made.server_close()


def read(kube: Kube, pod: str, cap: int = 1 << 20) -> LogRead | None:
    return asyncio.run(kube.read_log("ci", pod, "step", cap))


def test_reads_share_one_kept_alive_connection_and_stream_a_chunked_answer(
    server: Server,
) -> None:
    kube = make_kube(server)
    assert isinstance(kube.logs, Wire)
    try:
        for _ in range(3):
            assert read(kube, "p") == LogRead(LOG, len(LOG), False)
        assert read(kube, "gone") is None
        capped = read(kube, "p", 1000)
    finally:
        kube.close()
    assert capped is not None
    assert capped.truncated
    assert capped.size == len(LOG)
    assert server.connections == 1
    assert server.requests[0] == "/api/v1/namespaces/ci/pods/p/log?container=step"


def test_a_connection_the_server_closed_while_idle_is_replaced_once(server: Server) -> None:
    server.close_after_answer = True
    kube = make_kube(server)
    try:
        assert read(kube, "p") == LogRead(LOG, len(LOG), False)
        assert read(kube, "p") == LogRead(LOG, len(LOG), False)  # the kept one was closed
    finally:
        kube.close()
    assert server.connections == 2
    assert len(server.requests) == 2


def test_an_answer_cut_short_is_a_passing_failure_never_a_short_log(server: Server) -> None:
    kube = make_kube(server)
    try:
        with pytest.raises(KubeError, match="broke off") as raised:
            read(kube, "cut")
        assert raised.value.status == 0
        assert len(server.requests) == 1  # not repeated: its answer had begun
        assert read(kube, "p") == LogRead(LOG, len(LOG), False)  # a fresh connection
    finally:
        kube.close()


def test_tls_with_the_clients_ca_and_a_server_it_does_not_trust(tmp_path: Path) -> None:
    files = self_signed(["127.0.0.1"], tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(files.cert, files.key)
    server = serve(tls)
    trusting = make_kube(server, "https", str(files.cert))
    other = self_signed(["127.0.0.1"], tmp_path / "other")
    distrusting = make_kube(server, "https", str(other.cert))
    try:
        assert read(trusting, "p") == LogRead(LOG, len(LOG), False)
        assert read(trusting, "p") == LogRead(LOG, len(LOG), False)
        with pytest.raises(KubeError) as raised:
            read(distrusting, "p")
        assert raised.value.status == 0
    finally:
        trusting.close()
        distrusting.close()
        server.shutdown()
        server.server_close()
    assert len(server.requests) == 2  # the distrusting client sent nothing


def test_a_batch_reads_each_pods_containers_and_keeps_one_pods_failure_its_own(
    server: Server,
) -> None:
    kube = make_kube(server)
    cpu = metrics.HISTORY_CPU.labels("reads")
    spent = cpu._value.get()
    pods = [
        ("ci", "p1", ("step", "db")),
        ("ci", "gone", ("step", "db")),
        ("ci", "secret", ("step",)),
        ("ci", "p2", ()),
    ]
    try:
        results = asyncio.run(kube.read_logs(pods, 1 << 20))
    finally:
        kube.close()
    whole = LogRead(LOG, len(LOG), False)
    assert results[0] == [whole, whole]
    assert results[1] is None
    assert isinstance(results[2], KubeError)
    assert results[2].status == 403
    assert "pods/log is forbidden" in str(results[2])
    assert results[3] == []
    # the gone pod's second container was not asked for
    assert [p.split("/")[6] for p in server.requests] == ["p1", "p1", "gone", "secret"]
    assert server.connections == 1
    assert cpu._value.get() > spent  # the reads' CPU is counted (shipway_history_cpu_seconds)


def test_a_client_behind_a_proxy_keeps_the_pool_managers_path() -> None:
    configuration = client.Configuration()
    configuration.host = "https://10.0.0.1"
    configuration.proxy = "http://proxy.example:3128"
    kube = Kube(client.ApiClient(configuration), threads=1, event_threads=1)
    try:
        assert isinstance(kube.logs, PooledLogs)
    finally:
        kube.close()


def test_writes_send_their_json_and_answer_the_object_or_the_status_error(
    server: Server,
) -> None:
    kube = make_kube(server)
    pod = {"metadata": {"name": "p-1"}, "spec": {"containers": [{"name": "step"}]}}
    try:
        created = asyncio.run(kube.create_pod("ci", pod))
        taken = asyncio.run(kube.create_pod("ci", {"metadata": {"name": "taken"}}))
        with pytest.raises(KubeError) as raised:
            asyncio.run(kube.patch_status("ci", "demo", {"phase": "Walking"}))
        asyncio.run(kube.delete_pod("ci", "p-1"))
    finally:
        kube.close()
    assert created == pod
    assert taken is None  # 409: a pod of that name exists, for the caller to check whose
    assert (raised.value.status, raised.value.reason) == (422, "Invalid")
    assert str(raised.value) == "status.phase: Unsupported"
    method, path, headers, body = server.writes[2]
    assert (method, path) == (
        "PATCH",
        "/apis/shipway.dev/v1alpha1/namespaces/ci/pipelines/demo/status",
    )
    assert headers["content-type"] == "application/merge-patch+json"
    assert body == b'{"status":{"phase":"Walking"}}'
    assert server.writes[3][:2] == ("DELETE", "/api/v1/namespaces/ci/pods/p-1")
    assert "content-length" not in server.writes[3][2]
    assert server.connections == 1  # every request on the one kept-alive connection


def test_a_write_whose_answer_broke_off_is_never_sent_twice(server: Server) -> None:
    """The API server may have made the pod: the caller plans again from the cluster."""
    kube = make_kube(server)
    try:
        asyncio.run(kube.create_pod("ci", {"metadata": {"name": "p-0"}}))  # kept alive
        with pytest.raises(KubeError) as raised:
            asyncio.run(kube._call("POST", "/api/v1/namespaces/ci/pods/cut", body={}))
    finally:
        kube.close()
    assert raised.value.status == 0
    assert [w[1] for w in server.writes].count("/api/v1/namespaces/ci/pods/cut") == 1


def test_a_write_takes_a_new_connection_for_one_the_server_closed_while_idle(
    server: Server,
) -> None:
    server.close_after_answer = True
    kube = make_kube(server)
    try:
        for n in range(3):
            asyncio.run(kube.create_pod("ci", {"metadata": {"name": f"p-{n}"}}))
    finally:
        kube.close()
    assert [w[1] for w in server.writes] == ["/api/v1/namespaces/ci/pods"] * 3
    assert server.connections == 3
