"""Commit statuses and raw-file reads of each forge, sent to a fake forge (a real HTTP server
in a thread) that records what it got; retries with backoff on the forge's errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shipway.models.repository import RepositorySpec
from shipway.triggers import forge, http, outcome

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


class FakeForge:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.answers: list[int] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                doc = json.loads(body) if body else None
                # Header names in one case: HTTP's are case-insensitive.
                headers = {k.title(): v for k, v in self.headers.items()}
                fake.calls.append((self.command, self.path, headers, doc))
                code = fake.answers.pop(0) if fake.answers else 201
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"file text" if self.command == "GET" else b"{}")

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def fake() -> Iterator[FakeForge]:
    server = FakeForge()
    yield server
    server.server.shutdown()


def _spec(provider: str, api: str) -> RepositorySpec:
    return RepositorySpec.model_validate(
        {
            "url": "https://forge.example/acme/app.git",
            "provider": provider,
            "apiURL": api,
            "webhookSecret": {"name": "hook", "key": "secret"},
        },
        strict=False,
    )


@pytest.mark.parametrize(
    ("provider", "path", "auth", "expected"),
    [
        ("gitea", f"/repos/acme/app/statuses/{SHA}", ("Authorization", "token T"),
         {"state": "failure", "context": "shipway/app", "target_url": "http://d/x"}),
        ("github", f"/repos/acme/app/statuses/{SHA}", ("Authorization", "Bearer T"),
         {"state": "failure", "context": "shipway/app", "target_url": "http://d/x"}),
        ("gitlab", f"/projects/acme%2Fapp/statuses/{SHA}", ("Private-Token", "T"),
         {"state": "failed", "name": "shipway/app", "target_url": "http://d/x"}),
        ("bitbucket", f"/repositories/acme/app/commit/{SHA}/statuses/build",
         ("Authorization", "Bearer T"),
         {"state": "FAILED", "key": "shipway/app", "url": "http://d/x"}),
    ],
)  # fmt: skip
def test_commit_status_per_forge(
    fake: FakeForge, provider: str, path: str, auth: tuple[str, str], *, expected: dict[str, str]
) -> None:
    spec = _spec(provider, fake.url)
    request = forge.commit_status(spec, SHA, "failure", description="step 'test' failed: Error", context="shipway/app", target_url="http://d/x", token="T")  # fmt: skip
    assert http.send_with_retries(request, backoff=()).status == 201
    method, got_path, headers, doc = fake.calls[0]
    assert (method, got_path) == ("POST", path)
    assert headers[auth[0]] == auth[1]
    assert doc["description"] == "step 'test' failed: Error"
    assert expected.items() <= doc.items()


def test_description_is_clipped_for_github(fake: FakeForge) -> None:
    request = forge.commit_status(
        _spec("github", fake.url),
        SHA,
        "error",
        description="x" * 500,
        context="c",
        target_url="",
        token="T",
    )
    http.send_with_retries(request, backoff=())
    assert len(fake.calls[0][3]["description"]) == forge.DESCRIPTION
    assert "target_url" not in fake.calls[0][3]


def test_retries_forge_errors_with_backoff_then_succeeds(fake: FakeForge) -> None:
    fake.answers = [502, 503]
    slept: list[float] = []
    request = forge.commit_status(
        _spec("gitea", fake.url),
        SHA,
        "pending",
        description="p",
        context="c",
        target_url="",
        token="T",
    )
    assert (
        http.send_with_retries(request, backoff=(0.5, 1.0, 2.0), sleep=slept.append).status == 201
    )
    assert slept == [0.5, 1.0]
    assert len(fake.calls) == 3


def test_a_refusal_is_not_retried_and_says_why(fake: FakeForge) -> None:
    fake.answers = [403]
    request = forge.commit_status(
        _spec("gitea", fake.url),
        SHA,
        "pending",
        description="p",
        context="c",
        target_url="",
        token="T",
    )
    with pytest.raises(http.ForgeError, match="HTTP 403"):
        http.send_with_retries(request, backoff=(0.1,), sleep=lambda _: None)
    assert len(fake.calls) == 1


def test_an_unreachable_forge_is_a_forge_error() -> None:
    request = forge.commit_status(_spec("gitea", "http://127.0.0.1:9"), SHA, "pending", description="p", context="c", target_url="", token="T")  # fmt: skip
    with pytest.raises(http.ForgeError, match=r"127\.0\.0\.1:9"):
        http.send_with_retries(request, backoff=(0.01,), sleep=lambda _: None)


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("gitea", f"/repos/acme/app/raw/codeship-steps.yml?ref={SHA}"),
        ("github", f"/repos/acme/app/contents/codeship-steps.yml?ref={SHA}"),
        ("gitlab", f"/projects/acme%2Fapp/repository/files/codeship-steps.yml/raw?ref={SHA}"),
        ("bitbucket", f"/repositories/acme/app/src/{SHA}/codeship-steps.yml"),
    ],
)
def test_raw_file_per_forge(fake: FakeForge, provider: str, path: str) -> None:
    request = forge.raw_file(
        _spec(provider, fake.url), SHA, "codeship-steps.yml", username="u", password="pw"
    )
    assert http.send(request).body == b"file text"
    assert fake.calls[0][1] == path


def test_default_api_roots() -> None:
    def root(provider: str, url: str) -> str:
        doc = {"url": url, "provider": provider, "webhookSecret": {"name": "h", "key": "k"}}
        return forge.api_root(RepositorySpec.model_validate(doc, strict=False))

    assert root("github", "https://github.com/a/b.git") == "https://api.github.com"
    assert root("gitea", "http://10.96.0.5:3000/a/b.git") == "http://10.96.0.5:3000/api/v1"
    assert root("gitlab", "git@gitlab.com:a/b.git") == "https://gitlab.com/api/v4"
    assert root("bitbucket", "https://bitbucket.org/a/b.git") == "https://api.bitbucket.org/2.0"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"phase": "Running"}, ("pending", "running")),
        ({"phase": "Succeeded", "progress": "3/3"}, ("success", "Succeeded (3/3 steps)")),
        (
            {"phase": "Failed", "steps": [{"name": "build", "phase": "Succeeded"},
                                          {"name": "test", "phase": "Failed", "reason": "Error"}]},
            ("failure", "step 'test' failed: Error"),
        ),
        ({"phase": "Cancelled", "message": "Superseded by app-2"},
         ("error", "Cancelled: Superseded by app-2")),
    ],
)  # fmt: skip
def test_commit_state(status: dict[str, Any], expected: tuple[str, str]) -> None:
    assert outcome.commit_state(status) == expected
