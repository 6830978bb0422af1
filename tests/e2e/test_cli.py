"""The shipway command line against the real cluster: run, status, logs, cancel, list.

Every command runs as a user would run it (a subprocess, the kubeconfig from $KUBECONFIG),
with its output piped, so what is checked is the plain, line-oriented output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from .pipelines import ROOT, Kubectl, kubeconfig, kubectl_binary

pytestmark = pytest.mark.e2e

IMAGE = "busybox:1.36"

SERVICES = f"""
version: '2'
services:
  app:
    image: {IMAGE}
    volumes:
      - ./tmp:/data
  data:
    image: {IMAGE}
    volumes:
      - /cache
  check:
    image: {IMAGE}
    volumes_from:
      - app
      - data
"""

STEPS = """
- name: write
  service: app
  command: sh -c 'for i in 1 2 3; do echo write $i; sleep 0.2; done; echo built > /data/artifact'
- type: parallel
  name: checks
  services:
    - app
    - check
  steps:
    - name: read
      command: cat /data/artifact
- name: last
  service: check
  tag: ^(main|release/.*)$
  command: echo on main
- name: never on main
  service: check
  exclude: main
  command: echo not main
"""


def _failing(name: str) -> dict[str, object]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {"app": {"image": IMAGE}},
            "steps": [
                {"name": "fine", "service": "app", "command": "echo fine"},
                {
                    "name": "broken",
                    "service": "app",
                    "command": ["sh", "-c", "echo about to fail; exit 3"],
                    "on_fail": [{"name": "cleanup", "service": "app", "command": "echo cleaned"}],
                },
                {"name": "unreached", "service": "app", "command": "echo unreached"},
            ],
        },
    }


def _long(name: str) -> dict[str, object]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "services": {"app": {"image": IMAGE}},
            "steps": [
                {"name": "sleeper", "service": "app", "command": "sh -c 'echo started; sleep 600'"},
                {"name": "after", "service": "app", "command": "echo after"},
            ],
        },
    }


def shipway_env() -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
    env.pop("NO_COLOR", None)
    return env


def shipway(
    namespace: str, *args: str, timeout: float = 240, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipway", *args, "-n", namespace],
        input=stdin,
        capture_output=True,
        text=True,
        env=shipway_env(),
        timeout=timeout,
        check=False,
    )


def step_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("(step: ")]


def created_name(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("shipway: pipeline ") and line.endswith(" created"):
            return line.split()[2].split("/")[1]
    raise AssertionError(f"no 'created' line in:\n{output}")


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "codeship-services.yml").write_text(SERVICES)
    (tmp_path / "codeship-steps.yml").write_text(STEPS)
    return tmp_path


def test_run_a_codeship_project_streams_logs_in_order_and_exits_0(
    k: Kubectl, project: Path
) -> None:
    result = shipway(k.namespace, "run", "--dir", str(project), "--name", "cli", "--branch", "main")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b[" not in result.stdout  # piped: no colours, no cursor movement
    lines = step_lines(result.stdout)
    # the directory is uploaded first (the workspace is the project, as in jet steps)
    assert lines[0] == "(step: upload)"
    assert lines[1].startswith("(step: upload) waiting for the upload")
    assert lines[2].startswith("(step: upload) received 2 files")
    assert lines[3] == "(step: upload) success ✔"
    lines = lines[4:]
    # the serial step: header, its lines in order, then its result; all before the group
    assert lines[:5] == [
        "(step: write)",
        "(step: write) write 1",
        "(step: write) write 2",
        "(step: write) write 3",
        "(step: write) success ✔",
    ]
    # the fan-out: one step per service, both read what the first step wrote
    for service in ("app", "check"):
        mine = [line for line in lines if line.startswith(f"(step: read ({service}))")]
        assert mine == [
            f"(step: read ({service})) checks/{service}",
            f"(step: read ({service})) built",
            f"(step: read ({service})) success ✔",
        ]
    assert lines[-3:] == ["(step: last)", "(step: last) on main", "(step: last) success ✔"]
    assert not [line for line in lines if line.startswith("(step: never on main)")]
    name = created_name(result.stdout)
    assert name.startswith("cli-")
    body = k.pipeline(name)
    assert body["status"]["phase"] == "Succeeded"
    assert body["spec"]["ci"] == {"branch": "main"}
    assert result.stdout.splitlines()[-1].startswith(f"Pipeline {k.namespace}/{name} succeeded in ")

    # a second run of the same project is a new Pipeline (generateName), not a collision
    again = shipway(k.namespace, "run", "--dir", str(project), "--name", "cli", "--detach")
    assert again.returncode == 0, again.stderr
    second = again.stdout.strip()
    assert second.startswith("cli-")
    assert second != name
    k.wait_for(second)

    # the same command as a kubectl plugin (kubectl-shipway on PATH)
    plugin_dir = Path(sys.executable).parent
    assert (plugin_dir / "kubectl-shipway").exists()
    env = shipway_env()
    env["PATH"] = os.pathsep.join([str(plugin_dir), env.get("PATH", "")])
    plugin = subprocess.run(
        [kubectl_binary(), "shipway", "status", name, "-n", k.namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.splitlines()[0].startswith(f"Pipeline {k.namespace}/{name}: Succeeded")

    listing = shipway(k.namespace, "list")
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines()[1:]}
    assert rows[name] == "Succeeded"
    assert rows[second] == "Succeeded"  # no --branch: "last" skipped, "never on main" ran


def test_a_failing_run_exits_non_zero_and_status_and_logs_tell_why(
    k: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "failing.yaml"
    manifest.write_text(yaml.safe_dump(_failing("failing")))
    result = shipway(k.namespace, "run", "-f", str(manifest))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = step_lines(result.stdout)
    broken = [line for line in lines if line.startswith("(step: broken)")]
    assert broken == [
        "(step: broken)",
        "(step: broken) about to fail",
        "(step: broken) error ✗ container exited with a 3 code",
    ]
    assert lines.index("(step: fine) success ✔") < lines.index("(step: broken)")
    assert lines.index(broken[-1]) < lines.index("(step: cleanup) cleaned")
    assert not [line for line in lines if "unreached" in line]
    name = created_name(result.stdout)
    assert name.startswith("failing-")

    status = shipway(k.namespace, "status", name)
    assert status.returncode == 0, status.stderr
    tree = status.stdout.splitlines()
    assert tree[0].startswith(f"Pipeline {k.namespace}/{name}: Failed (3/3) in ")
    row = {line.split()[2]: line.split() for line in tree[1:] if line[:1] in "├└│"}
    assert row["fine"][3:6] == ["Succeeded", "exit", "0"]
    assert row["broken"][3:6] == ["Failed", "exit", "3"]
    assert row["unreached"][3:] == ["Skipped", "PreviousStepFailed"]
    assert "cleanup" in status.stdout

    logs = shipway(k.namespace, "logs", name)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [
        "(step: fine) fine",
        "(step: broken) about to fail",
        "(step: cleanup) cleaned",
    ]
    one = shipway(k.namespace, "logs", name, "--step", "broken", "--no-prefix")
    assert one.stdout == "about to fail\n"


def test_cancel_stops_a_run_that_is_being_followed(k: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "long.yaml"
    manifest.write_text(yaml.safe_dump(_long("long")))
    follower = _background(k, "run", "-f", str(manifest))
    logs = None
    try:
        name = _wait_for_step(k, "long-", "sleeper")
        logs = _background(k, "logs", name, "-f", "--step", "sleeper")
        # streamed live, while the step still runs
        assert _read_until(logs, "(step: sleeper) started", 60)
        assert logs.poll() is None
        cancel = shipway(k.namespace, "cancel", name, "--wait", timeout=120)
        assert cancel.returncode == 0, cancel.stderr
        assert cancel.stdout.splitlines() == [
            f"pipeline {name} cancelling",
            f"pipeline {name} cancelled",
        ]
        rest, _ = logs.communicate(timeout=60)
        assert logs.returncode == 0
        assert "(step: sleeper) cancelled ■ the pipeline was cancelled" in rest
        stdout, stderr = follower.communicate(timeout=120)
        assert follower.returncode == 1, stdout + stderr
        assert "(step: sleeper) cancelled ■ the pipeline was cancelled" in stdout
        assert stdout.splitlines()[-1].startswith(f"Pipeline {k.namespace}/{name} cancelled")
        assert k.pipeline(name)["status"]["phase"] == "Cancelled"
        again = shipway(k.namespace, "cancel", name)
        assert again.stdout == f"pipeline {name} has already cancelled\n"
    finally:
        for proc in (follower, logs):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_an_interrupted_run_cancels_its_pipeline(k: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "long.yaml"
    manifest.write_text(yaml.safe_dump(_long("interrupted")))
    follower = _background(k, "run", "-f", str(manifest))
    try:
        name = _wait_for_step(k, "interrupted-", "sleeper")
        follower.send_signal(signal.SIGTERM)  # a CI job being stopped
        stdout, stderr = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 1, stdout + stderr
    assert f"shipway: cancelling {name}" in stdout
    assert k.wait_for(name)["status"]["phase"] == "Cancelled"


def test_unknown_pipeline_and_invalid_file_exit_2(k: Kubectl, tmp_path: Path) -> None:
    missing = shipway(k.namespace, "status", "no-such-pipeline")
    assert missing.returncode == 2
    assert "pipeline 'no-such-pipeline' not found" in missing.stderr
    # a docker:dind service without add_docker: its own daemon would need a privileged container
    (tmp_path / "codeship-services.yml").write_text("app:\n  image: docker:dind\n")
    (tmp_path / "codeship-steps.yml").write_text("- service: app\n  command: make\n")
    refused = shipway(k.namespace, "run", "--dir", str(tmp_path))
    assert refused.returncode == 2
    assert "app.image" in refused.stderr
    assert "which needs a privileged container" in refused.stderr
    assert k.json("get", "pipelines")["items"] == []


def _background(k: Kubectl, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shipway", *args, "-n", k.namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=shipway_env(),
    )


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> bool:
    """Read the process's output line by line until one is ``text``; False on timeout."""
    found = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.rstrip("\n") == text:
                found.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    return found.wait(timeout)


def _wait_for_step(k: Kubectl, prefix: str, step: str, timeout: float = 120) -> str:
    """The Pipeline named ``prefix…`` once ``step`` is running (its container started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in k.json("get", "pipelines")["items"]:
            if not item["metadata"]["name"].startswith(prefix):
                continue
            for s in (item.get("status") or {}).get("steps") or ():
                if s["name"] == step and s["phase"] == "Running" and s.get("pod"):
                    pod = k.json("get", "pod", s["pod"])
                    statuses = pod.get("status", {}).get("containerStatuses") or []
                    if any("running" in (c.get("state") or {}) for c in statuses):
                        return str(item["metadata"]["name"])
        time.sleep(0.5)
    raise AssertionError(f"no pipeline {prefix}* with {step} running after {timeout}s")
