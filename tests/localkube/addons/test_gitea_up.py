"""Gitea's deploy deadline: a cold build of its image (3 min on 2 cores) comes first and must
not eat the time the deploy has to answer (on a fresh machine every triggers test failed
setup with "did not answer in time (None)": the deadline had passed before it was asked)."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from localkube.addons.gitea import server
from localkube.config import Paths
from localkube.errors import LocalkubeError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_deadline_starts_after_a_cold_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(server.time, "monotonic", clock)
    info = SimpleNamespace(ref="gitea", manifest_digest="sha256:1", archive=tmp_path / "a.tar")

    def cold_build(recipe: Any, paths: Paths) -> Any:
        clock.now += 200  # longer than the whole timeout
        return info

    deadlines: list[float] = []
    monkeypatch.setattr(server, "ensure_archive", cold_build)
    monkeypatch.setattr(server, "image_digests", lambda address: {"gitea": "sha256:1"})
    monkeypatch.setattr(server, "_existing_password", lambda paths: "pw")
    monkeypatch.setattr(server, "_kubectl", lambda paths, *args, stdin=None: "")
    monkeypatch.setattr(server, "status", lambda paths: {"host_url": "http://h", "url": "http://u"})
    monkeypatch.setattr(server, "_wait_answering", lambda url, deadline: deadlines.append(deadline))
    server.up(Paths(cache=tmp_path, state=tmp_path, run=tmp_path / "run"), timeout=180)
    assert deadlines == [1200.0 + 180]


def test_an_answer_is_asked_for_at_least_once_and_a_late_refusal_names_its_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(server.time, "monotonic", clock)
    asked: list[str] = []

    class Answer:
        def close(self) -> None:
            pass

    def answering(url: str, timeout: float) -> Answer:
        asked.append(url)
        return Answer()

    monkeypatch.setattr(urllib.request, "urlopen", answering)
    server._wait_answering("http://h/api/v1/version", deadline=clock.now - 1)
    assert asked == ["http://h/api/v1/version"]

    def refusing(url: str, timeout: float) -> Answer:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(urllib.request, "urlopen", refusing)
    with pytest.raises(LocalkubeError, match=r"did not answer in time .*Connection refused"):
        server._wait_answering("http://h/api/v1/version", deadline=clock.now - 1)
