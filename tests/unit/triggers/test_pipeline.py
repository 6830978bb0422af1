"""The Pipeline of a run (files at the commit through a reader, the converter of run --dir),
which running pipelines a newer push supersedes, and the receiver's answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from shipway.codeship import jetcrypt
from shipway.codeship.convert import Conversion
from shipway.models.repository import RepositorySpec
from shipway.triggers import concurrency, decide, pipeline, signatures
from shipway.triggers.events import Event
from shipway.triggers.receiver import MAX_BODY, Receiver

SHA = "a" * 40
KEY = jetcrypt.new_key()


def _spec(**kw: Any) -> RepositorySpec:
    doc = {
        "url": "http://forge/acme/app.git",
        "provider": "gitea",
        "webhookSecret": {"name": "hook", "key": "secret"},
        "cloneSecretName": "clone",
        **kw,
    }
    return RepositorySpec.model_validate(doc, strict=False)


FILES = {
    "codeship-services.yml": (
        "app:\n  build: .\n  image: registry.example/app\n  encrypted_env_file: env.encrypted\n"
    ),
    "Dockerfile": "FROM busybox:1.36\n",
    "codeship-steps.yml": (
        "- name: test\n  service: app\n  command: echo hi\n"
        "- name: publish\n  type: push\n  service: app\n  image_name: registry.example/app\n"
    ),
    "env.encrypted": jetcrypt.encrypt(b"TOKEN=s3cret\n", jetcrypt.parse_key(KEY)),
}


def _build(fork: bool, files: dict[str, str] = FILES) -> Any:
    event = Event(kind="push", repository="acme/app", ref="main", commit=SHA, delivery="d1")
    run = decide.Run("app-123", {"branch": "main", "commitId": SHA}, fork, "main")
    return pipeline.build(
        _spec(), "app", "ns", event, run=run, read=files.get, aes_key=jetcrypt.parse_key(KEY)
    )


def test_the_pipeline_checks_out_the_commit_and_decrypts_with_the_key() -> None:
    got = _build(fork=False)
    assert isinstance(got, Conversion)
    spec = got.manifest["spec"]
    assert spec["source"]["git"] == {
        "url": "http://forge/acme/app.git", "revision": SHA, "secretName": "clone",
    }  # fmt: skip
    assert spec["ci"]["commitId"] == SHA
    assert got.secrets
    assert "envFrom" in json.dumps(spec)
    assert any(step.get("type") == "push" for step in spec["steps"])
    meta = got.manifest["metadata"]
    assert meta["name"] == "app-123"
    assert meta["labels"] == {"shipway.dev/repository": "app", "shipway.dev/branch": "main"}
    assert meta["annotations"]["shipway.dev/commit"] == SHA


def test_a_fork_gets_no_secret_and_no_push() -> None:
    got = _build(fork=True)
    assert isinstance(got, Conversion)
    assert got.secrets == ()
    assert "envFrom" not in json.dumps(got.manifest["spec"])
    assert all(step.get("type") != "push" for step in got.manifest["spec"]["steps"])
    assert got.manifest["metadata"]["annotations"]["shipway.dev/fork"] == "true"


def test_a_file_that_does_not_convert_fails_with_the_converters_first_line() -> None:
    bad = {**FILES, "codeship-steps.yml": "- name: test\n  service: nosuch\n  command: x\n"}
    got = _build(fork=False, files=bad)
    assert isinstance(got, pipeline.Failed)
    assert "nosuch" in got.first_line
    assert "\n" not in got.first_line
    missing = _build(fork=False, files={"codeship-services.yml": FILES["codeship-services.yml"]})
    assert missing == pipeline.Failed(f"no codeship-steps.yml at {SHA[:12]}", f"no codeship-steps.yml at {SHA[:12]}")  # fmt: skip


def test_files_outside_the_repository_are_not_read() -> None:
    reads: list[str] = []

    def read(path: str) -> str | None:
        reads.append(path)
        return "x"

    files = pipeline.ForgeFiles(read)
    with pytest.raises(FileNotFoundError):
        files.read_text("../../etc/passwd")
    assert not files.has_content("/etc")
    assert files.read_text("./dir/../env") == "x"
    assert reads == ["env"]


def _pipeline(name: str, created: str, phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {},
        "status": {"phase": phase, **status},
    }


def test_supersede_spares_pushes_approvals_newer_and_finished_runs() -> None:
    newer = _pipeline("new", "2026-12-06T10:00:05Z", "Pending")
    others = [
        _pipeline("old", "2026-12-06T10:00:00Z", "Running"),
        _pipeline("older", "2026-12-06T09:00:00Z", "Pending"),
        _pipeline("pushing", "2026-12-06T10:00:01Z", "Running",
                  steps=[{"name": "p", "phase": "Running", "image": "r/app:main"}]),
        _pipeline("gate", "2026-12-06T10:00:02Z", "AwaitingApproval"),
        _pipeline("done", "2026-12-06T10:00:03Z", "Succeeded"),
        _pipeline("later", "2026-12-06T10:00:09Z", "Running"),
        newer,
    ]  # fmt: skip
    assert concurrency.to_supersede(newer, others) == ["older", "old"]
    assert concurrency.running(others, "new") == ["old", "older", "pushing", "gate", "later"]


class _Api:
    def __init__(self, repo: dict[str, Any], secret: bytes) -> None:
        self.repo, self.secret_value = repo, secret

    def repository(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.repo if name == self.repo["metadata"]["name"] else None

    def secret_key(self, namespace: str, ref: Any) -> bytes:
        return self.secret_value


class _Worker:
    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []
        self.handled: list[str] = []

    def record(self, repo: Any, *args: Any) -> None:
        self.records.append(args)

    def handle(self, repo: Any, spec: Any, event: Event, run: decide.Run, **_: float | None) -> str:
        self.handled.append(run.name)
        return "created"


REPO = {
    "apiVersion": "shipway.dev/v1alpha1",
    "kind": "Repository",
    "metadata": {"name": "app", "namespace": "ns", "uid": "u-1"},
    "spec": {"url": "http://forge/acme/app.git", "provider": "gitea",
             "webhookSecret": {"name": "hook", "key": "secret"}},
}  # fmt: skip


def _push_body(message: str = "hello") -> bytes:
    return json.dumps({
        "ref": "refs/heads/main", "after": SHA, "repository": {"full_name": "acme/app"},
        "head_commit": {"id": SHA, "message": message},
    }).encode()  # fmt: skip


async def _post(receiver: Receiver, body: bytes, headers: dict[str, str], path: str = "/hooks/ns/app") -> tuple[int, Any]:  # fmt: skip
    async with TestClient(TestServer(receiver.app())) as client:
        reply = await client.post(path, data=body, headers=headers)
        return reply.status, await reply.json()


@pytest.mark.parametrize(
    ("body", "headers", "code", "key"),
    [
        (_push_body(), {"X-Gitea-Event": "push"}, 202, "pipeline"),
        (_push_body("x [skip ci]"), {"X-Gitea-Event": "push"}, 202, "skipped"),
        (b"{}", {"X-Gitea-Event": "issues"}, 202, "ignored"),
    ],
)
def test_receiver_answers(body: bytes, headers: dict[str, str], code: int, key: str) -> None:
    worker = _Worker()
    receiver = Receiver(_Api(REPO, b"s"), worker, ["ns"])  # type: ignore[arg-type]
    signed = {**headers, **signatures.sign("gitea", body, b"s")}
    got = asyncio.run(_post(receiver, body, signed))
    receiver.pool.shutdown(wait=True)
    assert got[0] == code
    assert key in got[1]
    assert (worker.handled != []) == (key == "pipeline")


def test_receiver_refuses_bad_signatures_unknown_repositories_and_big_bodies() -> None:
    worker = _Worker()
    receiver = Receiver(_Api(REPO, b"s"), worker, ["ns"])  # type: ignore[arg-type]
    body = _push_body()
    bad = {"X-Gitea-Event": "push", **signatures.sign("gitea", body, b"other")}
    assert asyncio.run(_post(receiver, body, bad))[0] == 401
    good = {"X-Gitea-Event": "push", **signatures.sign("gitea", body, b"s")}
    assert asyncio.run(_post(receiver, body, good, "/hooks/ns/other"))[0] == 404
    assert asyncio.run(_post(receiver, body, good, "/hooks/elsewhere/app"))[0] == 404
    big = b" " * (MAX_BODY + 1)
    assert asyncio.run(_post(receiver, big, good))[0] == 413
    receiver.pool.shutdown(wait=True)
    assert worker.records == []
    assert worker.handled == []
