"""The operator's API calls as plain requests (controller.rest) against a stand-in API server:
the method, path, content type, credentials and body each call sends, what each answer means,
and that none of them loads the Kubernetes client's models (~22 MB resident)."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote

import pytest
from kubernetes import client

from shipway.controller import rest
from shipway.controller.kube import EventTarget, Kube, KubeError
from tests.unit.standin import TOKEN, Answers, run_fresh_python, stand_in

SEEN: list[dict[str, Any]] = []
PODS: dict[str, dict[str, Any]] = {}


class Handler(Answers, BaseHTTPRequestHandler):
    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        seen = {
            "method": self.command,
            "path": self.path,
            "type": self.headers.get("Content-Type"),
            "auth": self.headers.get("Authorization"),
            "body": body,
        }
        SEEN.append(seen)
        return seen

    def do_POST(self) -> None:
        seen = self._record()
        name = seen["body"]["metadata"]["name"]
        if seen["path"].endswith("/pods"):
            if name in PODS:
                self.answer(409, {"kind": "Status", "reason": "AlreadyExists", "message": "x"})
                return
            PODS[name] = {**seen["body"], "status": {"phase": "Pending"}}
            self.answer(201, PODS[name])
            return
        self.answer(201, seen["body"])

    def do_GET(self) -> None:
        seen = self._record()
        name = seen["path"].rsplit("/", 1)[-1]
        if name in PODS:
            self.answer(200, PODS[name])
        elif seen["path"].startswith("/api/v1/namespaces/ci/pods?"):
            self.answer(200, {"items": list(PODS.values()), "metadata": {}})
        else:
            message = f'pods "{name}" not found'
            self.answer(404, {"kind": "Status", "reason": "NotFound", "message": message})

    def do_PATCH(self) -> None:
        seen = self._record()
        if "/status" in seen["path"]:
            self.answer(422, {"kind": "Status", "reason": "Invalid", "message": "bad status"})
            return
        self.answer(200, {})

    def do_DELETE(self) -> None:
        self._record()
        self.answer(200, {})


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    with stand_in(Handler) as configuration:
        SEEN.clear()
        PODS.clear()
        made = client.ApiClient(configuration)
        yield made
        made.close()  # type: ignore[no-untyped-call]


def test_each_call_sends_what_the_api_server_expects(api: client.ApiClient) -> None:
    kube = Kube(api, threads=1, event_threads=1)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p-1"}, "spec": {}}

    async def calls() -> tuple[Any, ...]:
        created = await kube.create_pod("ci", pod)
        again = await kube.create_pod("ci", pod)
        read = await kube.get_pod("ci", "p-1")
        missing = await kube.get_pod("ci", "nope")
        await kube.stop_pod("ci", "p-1")
        await kube.delete_pod("ci", "p 2")
        await kube.emit_event(EventTarget("demo", "ci", "uid-1"), "Normal", "Done", "ok")
        with pytest.raises(KubeError) as refused:
            await kube.patch_status("ci", "demo", {"phase": "Running"})
        await kube.delete_pipeline("ci", "demo", "uid-1")
        return created, again, read, missing, refused.value

    try:
        created, again, read, missing, refused = asyncio.run(calls())
    finally:
        kube.close()
    assert created["status"] == {"phase": "Pending"}
    assert again is None  # 409: a pod of that name exists already
    assert read["metadata"]["name"] == "p-1"
    assert missing is None
    assert (refused.status, refused.reason, str(refused)) == (422, "Invalid", "bad status")
    requests = [(s["method"], s["path"], s["type"]) for s in SEEN]
    assert requests == [
        ("POST", "/api/v1/namespaces/ci/pods", "application/json"),
        ("POST", "/api/v1/namespaces/ci/pods", "application/json"),
        ("GET", "/api/v1/namespaces/ci/pods/p-1", None),
        ("GET", "/api/v1/namespaces/ci/pods/nope", None),
        ("PATCH", "/api/v1/namespaces/ci/pods/p-1", "application/strategic-merge-patch+json"),
        ("DELETE", "/api/v1/namespaces/ci/pods/p%202", None),
        ("POST", "/api/v1/namespaces/ci/events", "application/json"),
        (
            "PATCH",
            "/apis/shipway.dev/v1alpha1/namespaces/ci/pipelines/demo/status",
            "application/merge-patch+json",
        ),
        ("DELETE", "/apis/shipway.dev/v1alpha1/namespaces/ci/pipelines/demo", "application/json"),
    ]
    assert {s["auth"] for s in SEEN} == {f"Bearer {TOKEN}"}
    bodies = [s["body"] for s in SEEN]
    assert bodies[0] == pod
    assert bodies[4] == {"spec": {"activeDeadlineSeconds": 1}}
    assert bodies[6]["involvedObject"]["uid"] == "uid-1"
    assert bodies[7] == {"status": {"phase": "Running"}}
    assert bodies[8] == {"preconditions": {"uid": "uid-1"}, "propagationPolicy": "Background"}


def test_times_and_decimals_are_sent_as_the_generated_client_sent_them(
    api: client.ApiClient,
) -> None:
    when = datetime.datetime(2026, 12, 6, 23, 0, tzinfo=datetime.UTC)
    body = {"metadata": {"name": "e"}, "at": when, "day": when.date(), "n": decimal.Decimal("1.5")}
    assert rest.request(api, "POST", rest.core("ci", "events"), body=body).data
    assert SEEN[0]["body"]["at"] == "2026-12-06T23:00:00+00:00"
    assert SEEN[0]["body"]["day"] == "2026-12-06"
    assert SEEN[0]["body"]["n"] == "1.5"
    with pytest.raises(TypeError):
        rest.request(api, "POST", rest.core("ci", "events"), body={"x": object()})


def test_a_watch_request_carries_its_query(api: client.ApiClient) -> None:
    query = {"labelSelector": "a=b", "watch": True, "continue": None, "limit": 500}
    response = rest.request(api, "GET", rest.core("ci", "pods"), query=query, timeout=(5, 5))
    assert json.loads(response.data)["items"] == []
    assert SEEN[0]["path"] == "/api/v1/namespaces/ci/pods?labelSelector=a%3Db&watch=true&limit=500"


def test_the_operators_calls_never_load_the_clients_models() -> None:
    code = (
        "import asyncio, sys\n"
        "from kubernetes import client\n"
        "from shipway.controller.kube import Kube\n"
        "configuration = client.Configuration()\n"
        "configuration.host = 'http://127.0.0.1:9'\n"
        "configuration.retries = 0\n"
        "kube = Kube(client.ApiClient(configuration), threads=1, event_threads=1)\n"
        "try:\n"
        "    asyncio.run(kube.create_pod('ci', {'metadata': {'name': 'p'}}))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
        "kube.close()\n"
        "print(sum(1 for m in sys.modules if m.startswith('kubernetes.client.models.')))\n"
    )
    error, models = run_fresh_python(code).split()
    assert error == "KubeError"  # the request was made (and found nothing listening)
    # kopf's own import names two (V1ObjectMeta, V1OwnerReference); the generated methods'
    # first call loaded ~250
    assert int(models) <= 4


@pytest.mark.parametrize(
    "parts",
    [
        ("api", "v1", "namespaces", "ci", "pods", "demo-4a49a-1-write.artifact_x"),
        ("api", "v1", "namespaces", "ci", "a b", "x/y", "é", "~t", "%2F", "?q=1#f", ""),
    ],
)
def test_a_path_is_quoted_as_the_generated_client_quotes_it(parts: tuple[str, ...]) -> None:
    assert rest.path(*parts) == "/" + "/".join(quote(part, safe="") for part in parts)
