"""The end-to-end tests' handle on a cluster: kubectl with a fixed kubeconfig, and waits."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TERMINAL_POD_PHASES = ("Succeeded", "Failed")


class KubectlError(AssertionError):
    """kubectl failed; the message carries its command line and output."""


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    kubectl_binary: str
    #: True for the local cluster that localkube manages (its version and storage are known).
    local: bool

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.kubectl_binary, "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise KubectlError(
                f"`kubectl {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def apply(self, namespace: str, *docs: dict[str, Any]) -> None:
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
        self.kubectl("apply", "-n", namespace, "-f", "-", input=body)

    def wait_pod(
        self,
        namespace: str,
        name: str,
        phases: tuple[str, ...] = TERMINAL_POD_PHASES,
        timeout: float = 180,
    ) -> dict[str, Any]:
        """Poll the pod until its phase is one of ``phases``; fail with its story if not."""
        deadline = time.monotonic() + timeout
        pod: dict[str, Any] = {}
        while time.monotonic() < deadline:
            pod = self.json("get", "pod", name, "-n", namespace)
            if pod.get("status", {}).get("phase") in phases:
                return pod
            time.sleep(1)
        raise AssertionError(
            f"pod {namespace}/{name} did not reach {phases} in {timeout:.0f}s; status:\n"
            + json.dumps(pod.get("status"), indent=1)
            + "\nevents:\n"
            + self.kubectl(
                "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
            )
        )

    def logs(self, namespace: str, pod: str, container: str | None = None) -> str:
        args = ["logs", "-n", namespace, pod]
        if container:
            args += ["-c", container]
        return self.kubectl(*args)


def busybox_pod(
    name: str,
    script: str,
    *,
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    image: str = "docker.io/library/busybox:1.36",
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "command": ["sh", "-c", script]}
    if mounts:
        container["volumeMounts"] = mounts
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
