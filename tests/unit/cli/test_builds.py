"""Builds on the command line: followed and shown like steps, as ``(build: SERVICE)``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from shipway.cli.cluster import LogNotReadyError
from shipway.cli.follow import Follower, Printer
from shipway.cli.format import Style, progress_line
from shipway.cli.statustree import status_tree
from shipway.cli.tracker import AttemptEnded, AttemptStarted, Tracker
from shipway.models import PipelineStatus

from .client_builders import NOW, FakeResponse, at, pipeline, step

SPEC: dict[str, Any] = {
    "services": {"demo": {"build": "."}, "redis": {"image": "redis:7"}},
    "steps": [{"name": "test", "service": "demo", "command": "rspec"}],
}
DIGEST = "sha256:" + "4f" * 32
ERROR = (
    "------\n > [2/2] RUN false:\n------\n"
    'error: failed to solve: process "/bin/sh -c false" did not complete successfully: '
    "exit code: 1"
)


def build(service: str, phase: str, **extra: Any) -> dict[str, Any]:
    return {"service": service, "phase": phase, "pod": f"p-build-{service}", **extra}


def state(phase: str, builds: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict[str, Any]:
    found = pipeline(phase, steps, spec=SPEC, progress="0/2")
    found["status"]["builds"] = builds
    return found


BUILDING = state("Running", [build("demo", "Running", startedAt=at(0))], [step("1", "test")])
BUILT = state(
    "Running",
    [
        build(
            "demo",
            "Succeeded",
            startedAt=at(0),
            finishedAt=at(12),
            digest=DIGEST,
            cachedSteps=2,
            totalSteps=3,
            image="r/ci/demo-1/demo",
        )
    ],
    [step("1", "test", "Running", service="demo", pod="p-test", started=13)],
)
DONE = state(
    "Succeeded",
    BUILT["status"]["builds"],
    [
        step(
            "1",
            "test",
            "Succeeded",
            service="demo",
            pod="p-test",
            exit_code=0,
            started=13,
            finished=15,
        )
    ],
)


def test_the_tracker_starts_and_ends_a_build_before_its_step() -> None:
    tracker = Tracker()
    first = tracker.update(PipelineStatus.model_validate(BUILDING["status"]))
    assert [(type(e).__name__, e.step.id) for e in first] == [("AttemptStarted", "build-demo")]
    second = tracker.update(PipelineStatus.model_validate(BUILT["status"]))
    kinds = [(type(e).__name__, e.step.id) for e in second]
    assert kinds == [("AttemptEnded", "build-demo"), ("AttemptStarted", "1")]
    assert isinstance(second[0], AttemptEnded)
    assert isinstance(second[1], AttemptStarted)


class Api:
    namespace = "ci"

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.index = 0
        self.opened: list[tuple[str, str]] = []

    def get(self, name: str) -> dict[str, Any]:
        return self.states[self.index]

    def watch(self, name: str, version: str | None, timeout: int) -> Iterator[dict[str, Any]]:
        self.index = min(self.index + 1, len(self.states) - 1)
        yield {"type": "MODIFIED", "object": self.states[self.index]}

    def open_log(self, pod: str, container: str, *, follow: bool) -> FakeResponse:
        self.opened.append((pod, container))
        logs = {
            ("p-build-demo", "build"): "#5 [2/3] COPY . /app\n#5 CACHED\n",
            ("p-test", "demo"): "3 examples, 0 failures\n",
        }
        if (pod, container) not in logs or (self.index == 0 and pod == "p-test"):
            raise LogNotReadyError(400, "waiting to start")
        return FakeResponse(logs[(pod, container)])


def test_run_streams_the_build_log_prefixed_then_the_step() -> None:
    api: Any = Api([BUILDING, BUILT, DONE])
    out = io.StringIO()
    Follower(api, "demo-x1", Printer(out, live=False), Style(), progress=False).follow()
    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "(build: demo)",
        "(build: demo) #5 [2/3] COPY . /app",
        "(build: demo) #5 CACHED",
        "(build: demo) success ✔",
    ]
    assert "(step: test) 3 examples, 0 failures" in lines
    assert ("p-build-demo", "build") in api.opened


def test_a_failed_build_ends_with_buildkits_last_line() -> None:
    failed = state(
        "Failed",
        [build("demo", "Failed", reason="BuildFailed", message=ERROR, finishedAt=at(5))],
        [step("1", "test", "Failed", reason="BuildFailed", message="the image ... not built")],
    )
    api: Any = Api([BUILDING, failed])
    out = io.StringIO()
    Follower(api, "demo-x1", Printer(out, live=False), Style(), progress=False).follow()
    assert (
        '(build: demo) error ✗ error: failed to solve: process "/bin/sh -c false" did not '
        "complete successfully: exit code: 1"
    ) in out.getvalue().splitlines()


def test_status_shows_the_builds_first_with_digest_and_cache_hits() -> None:
    lines = status_tree(DONE, NOW)
    assert lines[1].startswith("├─ ✔ builds (parallel)")
    assert "build demo" in lines[2]
    assert "2/3 cached, sha256:4f4f4f4f4f4f" in lines[2]
    assert lines[3].startswith("└─ ✔ test")


def test_progress_says_building() -> None:
    assert progress_line(BUILDING, NOW, timed=False) == "[0/2] Running: build demo"
