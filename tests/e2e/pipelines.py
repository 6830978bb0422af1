"""kubectl-driven helpers for end-to-end tests of Pipelines (the way users drive Shipway)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TERMINAL = ("Succeeded", "Failed", "Cancelled")


def kubeconfig() -> str:
    explicit = os.environ.get("SHIPWAY_E2E_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if explicit:
        return explicit
    from localkube.config import Paths

    return str(Paths.default().kubeconfig)


def kubectl_binary() -> str:
    from localkube.config import Paths

    built = Paths.default().bin / "kubectl"
    return str(built) if built.exists() else "kubectl"


class Kubectl:
    """Runs kubectl in one namespace; raises with kubectl's own message on failure."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.binary = kubectl_binary()
        self.env = {**os.environ, "KUBECONFIG": kubeconfig()}

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, "-n", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def apply_docs(self, docs: list[dict[str, Any]]) -> None:
        self("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def pipeline(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("get", "pipeline", name)
        return result

    def wait_for(
        self, name: str, phases: tuple[str, ...] = TERMINAL, timeout: float = 180
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.pipeline(name)
            phase = (body.get("status") or {}).get("phase")
            if phase in phases:
                return body
            if time.monotonic() > deadline:
                pods = self("get", "pods", "-o", "wide")
                raise AssertionError(
                    f"pipeline {name} is {phase} after {timeout}s, not {phases}\n"
                    f"status: {json.dumps(body.get('status'), indent=1)}\npods:\n{pods}"
                )
            time.sleep(0.5)

    def events(self, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json(
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name={name},involvedObject.kind=Pipeline",
        )["items"]
        return items


def example(name: str) -> list[dict[str, Any]]:
    """The documents of an example file, exactly as a user would apply them."""
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


def steps_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in body["status"]["steps"]}
