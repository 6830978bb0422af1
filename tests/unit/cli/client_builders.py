"""Pipeline objects as the API returns them, at any point of a run, for the client's tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from shipway.cli.cluster import LogNotReadyError

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)

SPEC: dict[str, Any] = {
    "services": {"app": {"image": "busybox:1.36"}, "slack": {"image": "busybox:1.36"}},
    "steps": [
        {"name": "build", "service": "app", "command": "make"},
        {
            "type": "parallel",
            "name": "checks",
            "steps": [
                {"name": "unit", "service": "app", "command": "make unit"},
                {"name": "lint", "service": "app", "command": "make lint"},
            ],
            "on_fail": [{"name": "notify", "service": "slack", "command": "send"}],
        },
        {"name": "deploy", "service": "app", "command": "make deploy"},
    ],
}


def at(seconds: int) -> str:
    """A timestamp ``seconds`` after 11:59:00 (a minute before NOW)."""
    minute, second = divmod(seconds, 60)
    return f"2026-11-27T{11 + (59 + minute) // 60:02d}:{(59 + minute) % 60:02d}:{second:02d}Z"


def step(
    id_: str,
    name: str,
    phase: str = "Pending",
    *,
    group: str | None = None,
    service: str = "app",
    pod: str | None = None,
    exit_code: int | None = None,
    started: int | None = None,
    finished: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": id_, "name": name, "service": service, "phase": phase}
    if group:
        item["group"] = group
    if pod:
        item["pod"] = pod
    if exit_code is not None:
        item["exitCode"] = exit_code
    if started is not None:
        item["startedAt"] = at(started)
    if finished is not None:
        item["finishedAt"] = at(finished)
    item.update(extra)
    return item


def pipeline(
    phase: str,
    steps: list[dict[str, Any]],
    *,
    name: str = "demo-x1",
    progress: str | None = None,
    started: int | None = 0,
    finished: int | None = None,
    message: str | None = None,
    version: str = "1",
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "steps": steps}
    if progress is not None:
        status["progress"] = progress
    if started is not None:
        status["startedAt"] = at(started)
    if finished is not None:
        status["finishedAt"] = at(finished)
    if message:
        status["message"] = message
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {
            "name": name,
            "namespace": "ci",
            "resourceVersion": version,
            "creationTimestamp": at(0),
        },
        "spec": SPEC if spec is None else spec,
        "status": status,
    }


def failed_run() -> dict[str, Any]:
    """SPEC after lint failed: unit finished, notify ran, deploy skipped."""
    return pipeline(
        "Failed",
        [
            step("1", "build", "Succeeded", pod="p-1", exit_code=0, started=0, finished=5),
            step(
                "2",
                "unit",
                "Succeeded",
                group="checks",
                pod="p-2",
                exit_code=0,
                started=6,
                finished=40,
            ),
            step(
                "3",
                "lint",
                "Failed",
                group="checks",
                pod="p-3",
                exit_code=1,
                started=6,
                finished=9,
                reason="Error",
                message="container exited with a 1 code",
            ),
            step(
                "4",
                "notify",
                "Succeeded",
                group="checks",
                service="slack",
                pod="p-4",
                exit_code=0,
                started=41,
                finished=42,
                onFailOf="checks",
            ),
            step("5", "deploy", "Skipped", reason="PreviousStepFailed"),
        ],
        progress="4/4",
        finished=42,
        message="failed: lint",
    )


class FakeResponse:
    def __init__(self, text: str) -> None:
        self.data = text.encode()

    def stream(self, amount: int, decode_content: bool = True) -> Iterator[bytes]:
        for start in range(0, len(self.data), 5):  # small chunks: lines are put back together
            yield self.data[start : start + 5]

    def release_conn(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class FakeSocket:
    """The stdin of an attached container: keeps what was sent."""

    def __init__(self, pod: str, container: str) -> None:
        self.pod, self.container = pod, container
        self.data = bytearray()
        self.open = True
        self.stdin_closed = False

    def is_open(self) -> bool:
        return self.open

    def write_stdin(self, data: bytes) -> None:
        assert not self.stdin_closed
        self.data += data

    def close_channel(self, channel: int) -> None:
        self.stdin_closed = channel == 0

    def run_forever(self, timeout: float) -> None:
        self.open = False

    def close(self) -> None:
        self.open = False


class FakeApi:
    """A cluster that moves the pipeline one state further on every watch."""

    namespace = "ci"

    def __init__(self, states: list[dict[str, Any]], logs: dict[str, str] | None = None) -> None:
        self.states = states
        self.logs = logs or {}
        self.index = 0
        self.created: dict[str, Any] | None = None
        self.cancelled: list[str] = []
        self.attached: FakeSocket | None = None
        self.secrets: dict[str, dict[str, Any]] = {}

    @property
    def current(self) -> dict[str, Any]:
        return self.states[self.index]

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.created = manifest
        return self.current

    def get(self, name: str) -> dict[str, Any] | None:
        return self.current if name == self.current["metadata"]["name"] else None

    def watch(self, name: str, version: str | None, timeout: int) -> Iterator[dict[str, Any]]:
        self.index = min(self.index + 1, len(self.states) - 1)
        yield {"type": "MODIFIED", "object": self.current}

    def _started(self, pod: str) -> bool:
        steps = (self.current.get("status") or {}).get("steps") or []
        return any(s.get("pod") == pod and s["phase"] != "Pending" for s in steps)

    def open_log(self, pod: str, container: str, *, follow: bool) -> FakeResponse:
        assert container == "app"
        if pod not in self.logs or not self._started(pod):
            raise LogNotReadyError(400, f'container "app" in pod "{pod}" is waiting to start')
        return FakeResponse(self.logs[pod])

    def read_pod(self, name: str) -> dict[str, Any] | None:
        """Every pod runs: the upload receiver is ready at once."""
        return {"status": {"containerStatuses": [{"name": "upload", "state": {"running": {}}}]}}

    def attach_stdin(self, pod: str, container: str) -> FakeSocket:
        self.attached = FakeSocket(pod, container)
        return self.attached

    def read_log(self, pod: str, container: str) -> str:
        if pod not in self.logs:
            raise LogNotReadyError(400, "waiting to start")
        return self.logs[pod]

    def read_secret(self, name: str) -> dict[str, Any] | None:
        return self.secrets.get(name)

    def cancel(self, name: str) -> dict[str, Any]:
        self.cancelled.append(name)
        return self.current

    def list(self, *, all_namespaces: bool = False, selector: str | None = None) -> list[Any]:
        return [self.states[-1]]
