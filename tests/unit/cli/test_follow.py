"""The follower's terminal handling and its hint about a missing operator."""

from __future__ import annotations

import io
from typing import Any

import pytest

from shipway.cli import follow
from shipway.cli.follow import Follower, Printer
from shipway.cli.format import Style

from .client_builders import FakeApi, pipeline, step


def test_a_live_printer_keeps_its_footer_below_every_line() -> None:
    out = io.StringIO()
    printer = Printer(out, live=True)
    printer.set_footer("[0/2] Running: build")
    printer.line("(step: build) compiling")
    printer.set_footer("[1/2] Running: test")
    printer.clear_footer()
    assert out.getvalue() == (
        "\r\x1b[K[0/2] Running: build"
        "\r\x1b[K(step: build) compiling\n[0/2] Running: build"
        "\r\x1b[K[1/2] Running: test"
        "\r\x1b[K"
    )


def test_a_plain_printer_writes_lines_only() -> None:
    out = io.StringIO()
    printer = Printer(out, live=False)
    printer.line("(step: build) compiling")
    printer.clear_footer()
    assert out.getvalue() == "(step: build) compiling\n"


def test_it_says_so_when_no_operator_takes_the_pipeline_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow, "RETRY_SECONDS", 0.01)
    waiting = pipeline("Pending", [], started=None)
    del waiting["status"]
    done = pipeline("Succeeded", [step("1", "build", "Skipped", reason="FilteredOut")])
    api: Any = FakeApi([waiting, waiting, waiting, done])
    out = io.StringIO()
    follower = Follower(api, "demo-x1", Printer(out, live=False), Style(), hint_after=0)
    final = follower.follow()
    assert final is done
    lines = out.getvalue().splitlines()
    hints = [line for line in lines if "no operator has taken up" in line]
    assert hints == [
        "shipway: no operator has taken up pipeline demo-x1 yet; is one running and "
        "watching namespace ci?"
    ]
    assert lines[0] == "shipway: Pending: waiting for the operator"


def test_an_api_server_that_vanishes_is_a_cluster_error_not_a_traceback() -> None:
    """The log threads print ClusterError as one line; a refused connection must be one."""
    from types import SimpleNamespace

    from urllib3.exceptions import MaxRetryError

    from shipway.cli.cluster import ClusterError, PipelineApi

    def refuse(*_: object, **__: object) -> None:
        raise MaxRetryError(None, "/api/v1/namespaces/ns/pods/p/log", "Connection refused")  # type: ignore[arg-type]

    api = PipelineApi.__new__(PipelineApi)
    api.namespace = "ns"
    api.core = SimpleNamespace(read_namespaced_pod_log=refuse)  # type: ignore[assignment]
    with pytest.raises(ClusterError, match=r"cannot reach the cluster: .*Connection refused"):
        api.open_log("p", "main", follow=True)


def test_a_watch_the_server_asks_to_retry_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """429 "storage is (re)initializing": what a watch meets while a CRD is being updated."""
    from shipway.cli.cluster import ClusterError

    monkeypatch.setattr(follow, "RETRY_SECONDS", 0.01)
    running = pipeline("Running", [step("1", "build", "Running", pod="p-1", started=0)])
    done = pipeline("Succeeded", [step("1", "build", "Succeeded", pod="p-1", exit_code=0)])

    class Busy(FakeApi):
        refused = 0

        def watch(self, name: str, version: str | None, timeout: int) -> Any:
            if not self.refused:
                self.refused += 1
                raise ClusterError(429, "storage is (re)initializing")
            yield from super().watch(name, version, timeout)

    api: Any = Busy([running, done], {"p-1": "ok\n"})
    follower = Follower(api, "demo-x1", Printer(io.StringIO(), live=False), Style())
    assert follower.follow() is done
    assert api.refused == 1
