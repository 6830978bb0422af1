"""The dashboard's pure parts: CSRF tokens, review bodies, namespace filtering, the step tree,
the badge, server-sent events."""

from __future__ import annotations

from datetime import UTC, datetime

from shipway.dashboard import csrf
from shipway.dashboard.authz import Check, review_body, visible
from shipway.dashboard.badge import badge
from shipway.dashboard.identity import User, peer_names, proxy_user
from shipway.dashboard.kube import Credentials
from shipway.dashboard.logs import sse
from shipway.dashboard.middleware import local_host
from shipway.dashboard.views import group_phase, tree_rows

KEY = b"k" * 32
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_csrf_token_is_the_users_and_must_match_the_cookie() -> None:
    token = csrf.issue(KEY, "alice")
    assert csrf.check(KEY, "alice", token, token)
    assert not csrf.check(KEY, "mallory", token, token)  # another user's token
    assert not csrf.check(KEY, "alice", token, csrf.issue(KEY, "alice"))  # not the cookie's
    assert not csrf.check(KEY, "alice", token, None)
    assert not csrf.check(KEY, "alice", None, token)
    nonce, _, signature = token.partition(".")
    forged = f"{nonce}x.{signature}"
    assert not csrf.check(KEY, "alice", forged, forged)
    assert not csrf.check(b"other" * 8, "alice", token, token)  # another process's key


def test_review_bodies_self_and_for_a_user() -> None:
    creds = Credentials(host="https://api")
    me = User("alice", ("dev",), creds, self_review=True)
    body = review_body(me, Check("patch", "team-a"))
    assert body["kind"] == "SelfSubjectAccessReview"
    assert body["spec"] == {
        "resourceAttributes": {
            "verb": "patch",
            "resource": "pipelines",
            "group": "shipway.dev",
            "namespace": "team-a",
        }
    }
    proxied = User("bob", ("ops", "dev"), creds, self_review=False)
    body = review_body(proxied, Check("list", ""))
    assert body["kind"] == "SubjectAccessReview"
    spec = body["spec"]
    assert isinstance(spec, dict)
    assert spec["user"] == "bob"
    assert spec["groups"] == ["ops", "dev"]
    assert "namespace" not in spec["resourceAttributes"]  # cluster-wide


def test_visible_keeps_only_allowed_namespaces() -> None:
    assert visible(["a", "b", "c"], [True, False, True]) == ["a", "c"]


class Headers(dict[str, str]):
    def getall(self, key: str, default: list[str]) -> list[str]:
        return [self[key]] if key in self else default


def test_proxy_headers_count_only_from_the_trusted_proxy() -> None:
    headers = Headers({"X-Remote-User": "carol", "X-Remote-Group": "dev"})
    cert = {"subject": ((("commonName", "oauth2-proxy"),),)}
    assert proxy_user(headers, peer_names(cert), ("oauth2-proxy",)) == ("carol", ("dev",))
    assert proxy_user(headers, peer_names(None), ("oauth2-proxy",)) is None  # no certificate
    other = {"subject": ((("commonName", "someone"),),)}
    assert proxy_user(headers, peer_names(other), ("oauth2-proxy",)) is None
    assert proxy_user(headers, peer_names(cert), ()) is None  # no proxy configured


def step(id: str, name: str, phase: str, group: str | None = None, **extra: str) -> dict[str, str]:
    body = {"id": id, "name": name, "service": "app", "phase": phase, **extra}
    if group:
        body["group"] = group
    return body


def test_tree_rows_put_group_headings_before_their_steps() -> None:
    rows = tree_rows(
        [
            step("0", "lint", "Succeeded"),
            step("1", "unit", "Succeeded", "tests"),
            step("2", "e2e", "Running", "tests"),
            step(
                "3",
                "deploy",
                "Pending",
                "release/prod",
                createdAt="2026-12-06T11:59:00Z",
                startedAt="2026-12-06T11:59:30Z",
            ),
        ],
        NOW,
    )
    assert [(r.kind, r.depth, r.name, r.phase) for r in rows] == [
        ("step", 0, "lint", "Succeeded"),
        ("group", 0, "tests", "Running"),
        ("step", 1, "unit", "Succeeded"),
        ("step", 1, "e2e", "Running"),
        ("group", 0, "release", "Pending"),
        ("group", 1, "prod", "Pending"),
        ("step", 2, "deploy", "Pending"),
    ]
    assert len({r.id for r in rows if r.kind == "group"}) == 3  # the page updates them by id
    assert rows[-1].waited == "30s"
    assert rows[-1].duration == "30s"


def test_group_phase() -> None:
    assert group_phase(["Succeeded", "Failed"]) == "Failed"
    assert group_phase(["Succeeded", "Skipped"]) == "Succeeded"
    assert group_phase(["Succeeded", "Pending"]) == "Pending"
    assert group_phase([]) == "Pending"


def test_badge_escapes_and_colours() -> None:
    svg = badge("Failed")
    assert "failed" in svg
    assert "#cb2431" in svg
    assert "<script" not in badge("<script>", label="<script>")
    assert "unknown" in badge(None)


def test_sse_never_lets_a_line_split_an_event() -> None:
    assert sse("a\rb") == b"data: a\ndata: b\n\n"
    assert sse("", event="end") == b"event: end\ndata: \n\n"


def test_only_loopback_names_reach_the_local_dashboard() -> None:
    for host in ("localhost:8001", "127.0.0.1:8001", "[::1]:8001", "localhost", "LOCALHOST"):
        assert local_host(host), host
    for other in ("evil.example:8001", "127.0.0.1.evil.example", "", None, "[::2]:8001"):
        assert not local_host(other), other
