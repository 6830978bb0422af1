"""The demo's background operator (issue #28): run as a user runs it, webhook included, on the
demo's namespace only, and stopped, saying so, by commands that must be the only operator."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import demo_operator
from shipway.cli import parser
from shipway.controller import admission, webhookconfig


def test_it_serves_the_demo_namespace_with_its_webhook() -> None:
    args = parser().parse_args(demo_operator.argv(9555)[3:])
    assert args.command == "operator"
    assert args.namespace == ["shipway-demo"]
    assert not args.all_namespaces
    opts = admission.options(
        port=args.webhook_port,
        url=args.webhook_url,
        cert=args.webhook_cert,
        key=args.webhook_key,
        failure_policy=args.webhook_failure_policy,
        config_name=args.webhook_config,
        namespaces=tuple(args.namespace),
        clusterwide=args.all_namespaces,
    )
    assert (opts.listen, opts.port, opts.config_name) == ("127.0.0.1", 9555, "shipway-demo")
    made = webhookconfig.configuration(
        opts.config_name or "",
        {"url": opts.url},
        namespaces=opts.namespaces,
        clusterwide=opts.clusterwide,
        failure_policy=opts.failure_policy,
    )
    (webhook,) = made["webhooks"]
    assert webhook["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shipway-demo"]}
        ]
    }, "other namespaces (test sessions, benchmarks) are never reviewed by the demo's webhook"


def test_the_probe_is_refused_by_shipway_validate_with_the_line_the_demo_waits_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from shipway.cli import main

    probe = tmp_path / "probe.yaml"
    probe.write_text(demo_operator.PROBE)
    assert main(["validate", str(probe)]) != 0
    assert demo_operator.PROBE_LINE in capsys.readouterr().out


@pytest.fixture
def fake_operator(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line reads like an operator's (our own child, stopped after)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "shipway", "operator"]
    )
    (tmp_path / "operator.pid").write_text(str(child.pid))
    yield child
    child.kill()
    child.wait()


def test_stop_stops_it_and_says_why(tmp_path: Path, fake_operator: subprocess.Popen[bytes]) -> None:
    said: list[str] = []
    deadline = time.monotonic() + 5
    while demo_operator.running_pid(tmp_path) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the child has exec'd its command line
    assert demo_operator.running_pid(tmp_path) == fake_operator.pid
    pid = demo_operator.stop("make bench measures the only operator", tmp_path, said.append)
    assert pid == fake_operator.pid
    assert fake_operator.wait(timeout=5) is not None
    assert said == [
        f"stopped the demo's operator (pid {pid}): make bench measures the only operator; "
        "`make demo` starts it again"
    ]
    assert not (tmp_path / "operator.pid").exists()
    assert demo_operator.stop("again", tmp_path, said.append) is None
    assert len(said) == 1


def test_a_reused_pid_is_not_taken_for_the_operator(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "operator.pid").write_text(str(child.pid))
        assert demo_operator.running_pid(tmp_path) is None
        assert demo_operator.stop("x", tmp_path, lambda _: None) is None
        assert child.poll() is None, "a process that is not the operator is left alone"
    finally:
        child.kill()
        child.wait()
