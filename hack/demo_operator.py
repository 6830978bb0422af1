"""The demo's background operator, as a user runs it: admission webhook included.

``make demo`` leaves an operator running for the demo's namespace only (``shipway-demo``),
with its own ValidatingWebhookConfiguration (``shipway-demo``, scoped to that namespace by
the operator itself), so a bad Pipeline applied there with ``kubectl`` is refused with
``shipway validate``'s lines, as the README promises; other namespaces (test sessions,
benchmarks) are neither reviewed nor acted on. Commands that must be the only operator on the
machine (``make bench`` measures the operator's CPU and memory) stop it with :func:`stop`,
which says so; its clean stop deletes its webhook configuration.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

STATE = Path(os.environ.get("SHIPWAY_DEMO_STATE", "/tmp/shipway-demo"))
NAMESPACE = "shipway-demo"
WEBHOOK_CONFIG = "shipway-demo"
STOP_SECONDS = 15.0


def probe(namespace: str = NAMESPACE) -> str:
    """A Pipeline whose step names no service: only the webhook (the compiler) can refuse it."""
    return f"""apiVersion: shipway.dev/v1alpha1
kind: Pipeline
metadata: {{name: demo-webhook-probe, namespace: {namespace}}}
spec:
  services: {{app: {{image: busybox:1.36}}}}
  steps: [{{name: probe, service: ghost, command: "true"}}]
"""


PROBE = probe()
PROBE_LINE = "spec.steps[0].service: unknown service 'ghost'"


def argv(port: int, namespace: str = NAMESPACE, webhook_config: str = WEBHOOK_CONFIG) -> list[str]:
    """The operator's command line: the demo's namespace, a webhook on a loopback port.
    (Another namespace and configuration name only for the e2e test on a shared cluster.)"""
    return [
        sys.executable, "-m", "shipway", "operator", "-n", namespace,
        f"--webhook-url=https://127.0.0.1:{port}", f"--webhook-config={webhook_config}",
    ]  # fmt: skip


def is_operator(cmdline: list[str]) -> bool:
    """Whether a process's command line is a Shipway operator (the pid may have been reused)."""
    return "shipway" in cmdline and "operator" in cmdline


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def running_pid(state: Path = STATE) -> int | None:
    """The demo operator's pid when it runs, from its pidfile."""
    try:
        pid = int((state / "operator.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if is_operator(_cmdline(pid)) else None


def stop(why: str, state: Path = STATE, say: Callable[[str], None] = print) -> int | None:
    """Stop the demo's operator if it runs, saying so and why; its pid, or None."""
    pid = running_pid(state)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and is_operator(_cmdline(pid)):
        time.sleep(0.2)
    if is_operator(_cmdline(pid)):
        os.kill(pid, signal.SIGKILL)
    (state / "operator.pid").unlink(missing_ok=True)
    say(f"stopped the demo's operator (pid {pid}): {why}; `make demo` starts it again")
    return pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(
    env: dict[str, str],
    state: Path = STATE,
    namespace: str = NAMESPACE,
    webhook_config: str = WEBHOOK_CONFIG,
) -> int:
    """(Re)start the operator in the background; its pid. Its log is ``state/operator.log``."""
    state.mkdir(parents=True, exist_ok=True)
    stop("starting it again", state, say=lambda _: None)
    log = (state / "operator.log").open("ab")
    process = subprocess.Popen(
        argv(free_port(), namespace, webhook_config),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (state / "operator.pid").write_text(str(process.pid))
    return process.pid


def webhook_refusal(kubectl: str, env: dict[str, str], namespace: str = NAMESPACE) -> str | None:
    """What ``kubectl create --dry-run=server`` of :func:`probe` answers; None when admitted."""
    done = subprocess.run(
        [kubectl, "create", "--dry-run=server", "-f", "-"],
        input=probe(namespace), env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip()


def wait_for_webhook(
    kubectl: str,
    env: dict[str, str],
    timeout: float = 60.0,
    *,
    pause: float = 1.0,
    namespace: str = NAMESPACE,
    state: Path = STATE,
) -> str:
    """Wait until the webhook refuses the probe; its message (else RuntimeError saying why)."""
    deadline = time.monotonic() + timeout
    said = None
    while time.monotonic() < deadline:
        said = webhook_refusal(kubectl, env, namespace)
        if said is not None and PROBE_LINE in said:
            return said
        time.sleep(pause)
    raise RuntimeError(
        f"the demo operator's webhook did not refuse a bad Pipeline within {timeout:.0f}s "
        f"(last answer: {said or 'admitted'}); see {state / 'operator.log'}"
    )
