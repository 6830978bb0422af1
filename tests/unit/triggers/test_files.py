"""The files of a commit read from the forge: every first candidate asked for at once (one
call on Gitea, in parallel elsewhere), named files together, each file once, and a forge
without the one-call endpoint still read file by file. A real HTTP server stands in for
the forge and answers the way Gitea 1.27 and GitHub do."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from shipway.codeship.convert import Conversion
from shipway.models.repository import RepositorySpec
from shipway.triggers import decide, forge, pipeline
from shipway.triggers.events import Event
from shipway.triggers.files import FIRST, CommitFiles

SHA = "b" * 40
REPO = {
    "codeship-services.yml": (
        "app:\n  image: busybox:1.36\n  env_file: [ci/app.env, ci/more.env]\n"
    ),
    "codeship-steps.yml": "- name: test\n  service: app\n  command: 'true'\n",
    "ci/app.env": "GREETING=hi\n",
    "ci/more.env": "PLACE=here\n",
}
DELAY = 0.3


class Forge:
    """Gitea's raw and file-contents endpoints (or GitHub's contents one), each answer
    ``DELAY`` late, the calls recorded."""

    def __init__(self, *, batch: bool = True) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                fake.calls.append(("GET", path, None))
                time.sleep(DELAY)
                name = unquote(path.split("/raw/", 1)[-1].split("/contents/", 1)[-1])
                text = REPO.get(name)
                self._send(404 if text is None else 200, (text or "{}").encode())

            def do_POST(self) -> None:
                doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.calls.append(("POST", urlsplit(self.path).path, doc))
                time.sleep(DELAY)
                if not batch:
                    self._send(404, b'{"message":"not found"}')
                    return
                items = [_item(name) for name in doc["files"]]
                self._send(200, json.dumps(items).encode())

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


def _item(name: str) -> dict[str, Any] | None:
    if name == "ci":
        return {"path": "ci", "type": "dir", "encoding": None, "content": None, "size": 0}
    text = REPO.get(name)
    if text is None:
        return None
    content = base64.b64encode(text.encode()).decode()
    return {"path": name, "type": "file", "encoding": "base64", "content": content, "size": 9}


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(8)
    yield executor
    executor.shutdown(wait=True)


def _forge(batch: bool = True) -> Iterator[Forge]:
    fake = Forge(batch=batch)
    yield fake
    fake.server.shutdown()


@pytest.fixture
def gitea() -> Iterator[Forge]:
    yield from _forge()


@pytest.fixture
def old_gitea() -> Iterator[Forge]:
    yield from _forge(batch=False)


def _spec(provider: str, api: str) -> RepositorySpec:
    doc = {"url": "https://forge.example/acme/app.git", "provider": provider, "apiURL": api,
           "webhookSecret": {"name": "hook", "key": "secret"}}  # fmt: skip
    return RepositorySpec.model_validate(doc, strict=False)


def _convert(files: CommitFiles) -> Any:
    event = Event(kind="push", repository="acme/app", ref="main", commit=SHA, delivery="d1")
    run = decide.Run("app-123", {"branch": "main", "commitId": SHA}, False, "main")
    spec = _spec("gitea", "http://unused")
    return pipeline.build(
        spec, "app", "ns", event, run=run, read=files, aes_key=None, prefetch=files.prefetch
    )


def test_gitea_one_call_for_the_codeship_files_one_for_the_files_they_name(
    gitea: Forge, pool: ThreadPoolExecutor
) -> None:
    files = CommitFiles(_spec("gitea", gitea.url), SHA, pool, username="u", password="p")
    started = time.monotonic()
    files.prefetch(FIRST)
    got = _convert(files)
    took = time.monotonic() - started
    assert isinstance(got, Conversion)
    env = got.manifest["spec"]["services"]["app"]["environment"]
    assert env["GREETING"] == "hi"
    assert env["PLACE"] == "here"
    assert [(m, p) for m, p, _ in gitea.calls] == [("POST", "/repos/acme/app/file-contents")] * 2
    assert gitea.calls[0][2] == {"files": list(FIRST)}
    assert gitea.calls[1][2] == {"files": ["ci/app.env", "ci/more.env"]}
    assert files.calls == 2
    assert took < 3 * DELAY, "two round trips, not one per file"


def test_elsewhere_every_first_name_is_read_at_once(pool: ThreadPoolExecutor) -> None:
    fake = Forge()
    try:
        files = CommitFiles(_spec("github", fake.url), SHA, pool)
        started = time.monotonic()
        files.prefetch(FIRST)
        assert files("codeship-steps.yml") == REPO["codeship-steps.yml"]
        assert files("docker-compose.yml") is None
        assert files("codeship-services.yml") == REPO["codeship-services.yml"]
        took = time.monotonic() - started
    finally:
        fake.server.shutdown()
    assert sorted(p for _, p, _ in fake.calls) == sorted(
        f"/repos/acme/app/contents/{name}" for name in FIRST
    )
    assert took < 2 * DELAY, "in parallel, not one after another"


def test_each_file_is_fetched_once(gitea: Forge, pool: ThreadPoolExecutor) -> None:
    files = CommitFiles(_spec("gitea", gitea.url), SHA, pool)
    files.prefetch(FIRST)
    files.prefetch(FIRST)
    for _ in range(3):
        assert files("codeship-services.yml") == REPO["codeship-services.yml"]
    assert files("ci/app.env") == REPO["ci/app.env"]
    assert files("ci/app.env") == REPO["ci/app.env"]
    assert [m for m, _, _ in gitea.calls] == ["POST", "GET"]


def test_a_forge_without_the_one_call_endpoint_is_read_file_by_file(
    old_gitea: Forge, pool: ThreadPoolExecutor
) -> None:
    files = CommitFiles(_spec("gitea", old_gitea.url), SHA, pool)
    files.prefetch(FIRST)
    got = _convert(files)
    assert isinstance(got, Conversion)
    assert got.manifest["spec"]["services"]["app"]["environment"]["GREETING"] == "hi"
    raw = sorted(p for m, p, _ in old_gitea.calls if m == "GET")
    assert f"/repos/acme/app/raw/{FIRST[0]}" in raw
    assert "/repos/acme/app/raw/ci/app.env" in raw


def test_a_refusal_is_an_error_not_a_missing_file(pool: ThreadPoolExecutor) -> None:
    files = CommitFiles(_spec("gitea", "http://127.0.0.1:9"), SHA, pool, send=lambda r: _refused(r))
    with pytest.raises(OSError, match="HTTP 403"):
        files("codeship-services.yml")


def _refused(request: forge.Request) -> Any:
    from shipway.triggers.http import Response

    return Response(403, b"forbidden")


def test_parse_files_leaves_what_it_cannot_decide_to_single_reads() -> None:
    paths = ["a.yml", "gone.yml", "dir", "big.bin", "b.yml", "unlisted.yml"]
    answer = [
        {"path": "a.yml", "type": "file", "encoding": "base64", "content": "YQo="},
        None,
        {"path": "dir", "type": "dir", "encoding": None, "content": None},
        {"path": "big.bin", "type": "file", "encoding": None, "content": None, "size": 9 << 20},
        {"path": "other.yml", "type": "file", "encoding": "base64", "content": "YQo="},
    ]
    got = forge.parse_files(json.dumps(answer).encode(), paths)
    assert got == {"a.yml": "a\n", "gone.yml": None, "dir": None}
    assert forge.parse_files(b"not json", paths) == {}
    assert forge.parse_files(b'{"message": "x"}', paths) == {}


def test_read_files_is_gitea_only() -> None:
    spec = _spec("gitea", "https://git.example/api/v1")
    request = forge.read_files(spec, SHA, ["x.yml"], username="u", password="p")
    assert request is not None
    assert request.url == f"https://git.example/api/v1/repos/acme/app/file-contents?ref={SHA}"
    assert request.headers["Authorization"].startswith("Basic ")
    for provider in ("github", "gitlab", "bitbucket"):
        assert forge.read_files(_spec(provider, "https://x"), SHA, ["x.yml"]) is None


def test_named_files_are_the_env_and_encrypted_files_of_services_and_steps() -> None:
    services = {
        "app": {"env_file": ["a.env", "./b.env"], "encrypted_env_file": "sub/../c.encrypted",
                "build": {"encrypted_args_file": "args.encrypted"}},
        "db": {"env_file": "../outside.env", "encrypted_dockercfg_path": "/abs"},
        "odd": "not a map",
    }  # fmt: skip
    steps = [{"type": "serial", "steps": [{"service": "app", "encrypted_dockercfg_path": "d.enc"}]}]
    assert sorted(pipeline.named_files(services, steps)) == sorted(
        ["a.env", "b.env", "c.encrypted", "args.encrypted", "d.enc"]
    )
    assert pipeline.named_files(None, None) == []
