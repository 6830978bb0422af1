"""The dashboard over a fake API server and a real SQLite history: what a user sees and may
do is what the API server's authorization says; hostile text stays text; actions need the
user's CSRF token."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from shipway.dashboard.app import make_app
from shipway.dashboard.context import Settings
from shipway.dashboard.kube import Credentials
from shipway.dashboard.middleware import CSP
from shipway.dashboard.reader import SqlRunReader
from shipway.history.records import RunRecord, build_record
from shipway.history.store import ArchivedLog, SqlStore

from .fakeapi import FakeApi

HOSTILE = "<img src=x onerror=alert(1)>"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def pipeline(ns: str, name: str, step_name: str = "test", phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": f"uid-{ns}-{name}",
            "creationTimestamp": "2026-12-06T10:00:00Z",
        },
        "spec": {"services": {"app": {"image": "busybox"}}, "steps": []},
        "status": {
            "phase": phase,
            "source": {"kind": "git", "branch": HOSTILE, "commitMessage": HOSTILE},
            "steps": [{"id": "0", "name": step_name, "service": "app", "phase": phase}],
        },
    }


def record(ns: str, name: str, minutes: int) -> RunRecord:
    body = pipeline(ns, name, phase="Succeeded")
    body["status"]["steps"][0]["pod"] = f"{name}-pod"
    body["metadata"]["creationTimestamp"] = (T0 + timedelta(minutes=minutes)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    return build_record(body)


Scenario = Callable[[TestClient[Any, Any], FakeApi], Awaitable[None]]


def serve(tmp_path: Path, api: FakeApi, scenario: Scenario, in_cluster: bool = False) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'history.db'}")
    store.save_runs(
        [record("team-a", f"a-{i}", i) for i in range(60)]
        + [record("team-b", f"b-{i}", i) for i in range(5)]
    )
    store.save_logs(
        [ArchivedLog("uid-team-a-a-3", "a-3-pod", "pod-uid-a-3", "app", "archived ***\n", 12)]
    )

    async def main() -> None:
        async with TestServer(api.app()) as fake:
            settings = Settings(
                reader=SqlRunReader(store),
                credentials=Credentials(
                    host=str(fake.make_url("")).rstrip("/"), token="dashboard-sa-token"
                ),
                in_cluster=in_cluster,
                trusted_proxies=("oauth2-proxy",) if in_cluster else (),
            )
            async with TestClient(TestServer(make_app(settings))) as client:
                await scenario(client, api)

    asyncio.run(main())


def test_list_shows_only_namespaces_the_user_may_list_and_pages(tmp_path: Path) -> None:
    api = FakeApi(allowed={("list", "team-a")})

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        response = await client.get("/")
        html = await response.text()
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CSP
        rebound = await client.get("/", headers={"Host": "evil.example:8001"})
        assert rebound.status == 403  # DNS rebinding: another site's name, our address
        assert "a-59" in html
        assert "team-b" not in html
        assert html.count('class="run"') == 50
        older = re.search(r'id="next" href="([^"]+)"', html)
        assert older
        html = await (await client.get(older[1].replace("&amp;", "&"))).text()
        assert html.count('class="run"') == 10
        assert "a-9<" in html
        html = await (await client.get("/?namespace=team-b")).text()
        assert "b-1" not in html
        assert "No runs you may see" in html

    serve(tmp_path, api, scenario)


def test_run_page_escapes_and_hides_cancel_without_patch(tmp_path: Path) -> None:
    api = FakeApi(allowed={("get", "team-a"), ("list", "team-a")})
    api.pipelines[("team-a", "live")] = pipeline("team-a", "live", step_name=HOSTILE)

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        response = await client.get("/runs/team-a/live")
        html = await response.text()
        assert response.status == 200
        assert HOSTILE not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert 'id="cancel"' not in html
        assert "<img" not in html  # neither the step name nor the branch nor the message
        assert html.count("<script") == 1  # only the dashboard's own file
        token = re.search(r'csrf" value="([^"]+)"', html)
        assert token is None  # no form at all for this user
        # the forged request: a token the dashboard issued, but no right to patch
        cookie = response.cookies["shipway_csrf"].value
        forged = await client.post("/runs/team-a/live/cancel", data={"csrf": cookie})
        assert forged.status == 403
        assert api.patches == []
        assert (await client.get("/runs/team-b/b-1")).status == 403

    serve(tmp_path, api, scenario)


def test_cancel_needs_the_users_csrf_token(tmp_path: Path) -> None:
    api = FakeApi(allowed={("get", "team-a"), ("patch", "team-a")})
    api.pipelines[("team-a", "live")] = pipeline("team-a", "live")

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        html = await (await client.get("/runs/team-a/live")).text()
        assert 'id="cancel"' in html
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token
        refused = await client.post("/runs/team-a/live/cancel", data={"csrf": "forged.x"})
        assert refused.status == 403
        assert api.patches == []
        done = await client.post(
            "/runs/team-a/live/cancel", data={"csrf": token[1]}, allow_redirects=False
        )
        assert done.status == 303
        assert api.patches == [("team-a", "live", {"spec": {"cancel": True}})]

    serve(tmp_path, api, scenario)


def test_a_gone_run_reads_from_the_history(tmp_path: Path) -> None:
    api = FakeApi(allowed={("get", "team-a")})

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        html = await (await client.get("/runs/team-a/a-3")).text()
        assert "from the history" in html
        assert "Succeeded" in html
        status = await (await client.get("/runs/team-a/a-3/status.json")).json()
        assert status["finished"] is True
        assert status["steps"][0]["phase"] == "Succeeded"
        raw = await client.get("/runs/team-a/a-3/steps/0/log.txt")
        assert await raw.text() == "archived ***\n"
        events = await (await client.get("/runs/team-a/a-3/steps/0/log/events")).text()
        assert events == "data: archived ***\n\nevent: end\ndata: \n\n"

    serve(tmp_path, api, scenario)


def test_rerun_takes_the_first_free_restart_name(tmp_path: Path) -> None:
    api = FakeApi(allowed={("get", "team-a"), ("create", "team-a")})
    api.pipelines[("team-a", "build")] = pipeline("team-a", "build", phase="Failed")
    api.pipelines[("team-a", "build-r2")] = pipeline("team-a", "build-r2", phase="Failed")

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        html = await (await client.get("/runs/team-a/build")).text()
        assert 'id="rerun"' in html
        assert 'id="cancel"' not in html  # finished, and no patch right
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token
        done = await client.post(
            "/runs/team-a/build/rerun", data={"csrf": token[1]}, allow_redirects=False
        )
        assert done.status == 303
        assert done.headers["Location"] == "/runs/team-a/build-r3"
        [created] = api.created
        assert created["metadata"]["labels"] == {"shipway.dev/restart-of": "build"}
        assert "status" not in created

    serve(tmp_path, api, scenario)


def test_approve_patches_the_waiting_gate_as_the_user(tmp_path: Path) -> None:
    api = FakeApi(user="carol", allowed={("get", "team-a"), ("patch", "team-a")})
    body = pipeline("team-a", "gated", phase="AwaitingApproval")
    body["metadata"]["resourceVersion"] = "41"
    body["status"]["steps"][0]["phase"] = "Succeeded"
    body["status"]["approvals"] = [{"gate": "steps[1]", "name": HOSTILE, "phase": "Waiting"}]
    api.pipelines[("team-a", "gated")] = body

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        html = await (await client.get("/runs/team-a/gated")).text()
        assert "Approve &lt;img src=x onerror=alert(1)&gt;" in html
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token
        done = await client.post(
            "/runs/team-a/gated/approve",
            data={"csrf": token[1], "gate": "steps[1]"},
            allow_redirects=False,
        )
        assert done.status == 303
        assert api.patches == [
            (
                "team-a",
                "gated",
                {
                    "metadata": {"resourceVersion": "41"},
                    "spec": {
                        "approvals": [{"gate": "steps[1]", "decision": "Approved", "user": "carol"}]
                    },
                },
            )
        ]

    serve(tmp_path, api, scenario)


def test_in_cluster_a_request_acts_with_its_users_token(tmp_path: Path) -> None:
    api = FakeApi()
    api.tokens["dave-token"] = "dave"
    api.grants["dave"] = {("list", "team-b"), ("get", "team-b")}
    api.pipelines[("team-b", "b-1")] = pipeline("team-b", "b-1")

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        anonymous = await client.get("/")
        assert anonymous.status == 401
        forged = await client.get("/", headers={"X-Remote-User": "admin"})  # no proxy cert
        assert forged.status == 401
        assert (await client.get("/", headers={"Authorization": "Bearer nope"})).status == 401
        dave = {"Authorization": "Bearer dave-token"}
        html = await (await client.get("/", headers=dave)).text()
        assert "b-4" in html
        assert "team-a" not in html
        assert (await client.get("/runs/team-b/b-1", headers=dave)).status == 200
        assert api.seen_tokens == ["Bearer dave-token"]  # the user's own token, not ours
        assert (await client.get("/runs/team-a/a-1", headers=dave)).status == 403

    serve(tmp_path, api, scenario, in_cluster=True)


def test_badge_says_the_branchs_last_phase_to_whom_may_list(tmp_path: Path) -> None:
    api = FakeApi(allowed={("list", "team-a")})

    async def scenario(client: TestClient[Any, Any], api: FakeApi) -> None:
        found = await client.get("/badge/team-a.svg", params={"project": "a-7", "branch": HOSTILE})
        assert found.headers["Content-Type"].startswith("image/svg+xml")
        assert "succeeded" in await found.text()
        other = await client.get("/badge/team-a.svg", params={"project": "a-7", "branch": "dev"})
        assert "unknown" in await other.text()  # no run of that branch
        hidden = await client.get("/badge/team-b.svg", params={"project": "b-1", "branch": HOSTILE})
        assert "unknown" in await hidden.text()  # may not list team-b

    serve(tmp_path, api, scenario)
