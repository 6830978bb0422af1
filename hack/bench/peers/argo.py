"""Argo Workflows in the local cluster for one benchmark run, and removed afterwards.

Its CRDs (the module's ``minimal`` set) are applied server-side; its controller runs as a
process of the benchmark on the host, like the Shipway operator it is compared with, so both
are measured the same way (CPU and peak RSS from /proc) and neither pays for an image pull. It
runs ``--namespaced`` on a namespace of its own, which holds its ConfigMap, the Workflows and
their pods; the pods' service account may write task results (what ``argoexec wait`` needs).

Settings, from Argo's own docs for v4.0.5 (``docs/scaling.md``,
``docs/environment-variables.md``, ``docs/workflow-controller-configmap.yaml``):
``--workflow-workers`` and ``--pod-cleanup-workers`` (more goroutines), ``--qps``/``--burst``
(client-side rate limit, default 20/30), ``resourceRateLimit`` (pod creation rate, default
10/s burst 25), ``DEFAULT_REQUEUE_TIME`` (workflow requeue, default 10s); the emissary executor
(the only one since v3.4), pulled IfNotPresent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.kube import Kube
from bench.peers.argobuild import ARGO, ARGO_MODULE, ARGO_VERSION
from bench.procs import Usage, free_port, proc_usage
from localkube.config import Paths
from localkube.crds import wait_established
from localkube.process import run
from localkube.toolchain import build

SERVICE_ACCOUNT = "argo-bench"
WORKFLOW_WORKERS = 32
POD_CLEANUP_WORKERS = 8
QPS, BURST = 200, 300
POD_RATE_LIMIT, POD_RATE_BURST = 200, 400
REQUEUE_TIME = "1s"

SETTINGS: dict[str, Any] = {
    "executor": "emissary (imagePullPolicy IfNotPresent)",
    "--workflow-workers": WORKFLOW_WORKERS,
    "--pod-cleanup-workers": POD_CLEANUP_WORKERS,
    "--qps": QPS,
    "--burst": BURST,
    "resourceRateLimit": {"limit": POD_RATE_LIMIT, "burst": POD_RATE_BURST},
    "DEFAULT_REQUEUE_TIME": REQUEUE_TIME,
    "LEADER_ELECTION_DISABLE": "true",
}


def module_dir(paths: Paths) -> Path:
    out = run(
        [build.go_command(paths), "mod", "download", "-json", f"{ARGO_MODULE}@{ARGO_VERSION}"]
    )
    return Path(json.loads(out.stdout)["Dir"])


def crd_files(paths: Paths) -> list[Path]:
    return sorted(
        (module_dir(paths) / "manifests" / "base" / "crds" / "minimal").glob("argoproj.io_*.yaml")
    )


def install_crds(kube: Kube, paths: Paths) -> None:
    files = crd_files(paths)
    kube.kubectl("apply", "--server-side", "--force-conflicts", *(f"-f={f}" for f in files))
    wait_established(
        lambda *a: kube.kubectl(*a, check=False),
        ["workflows.argoproj.io", "workflowtaskresults.argoproj.io"],
    )


def remove_crds(kube: Kube, paths: Paths) -> None:
    """Every Argo CRD goes, and with it whatever objects of theirs are left."""
    files = crd_files(paths)
    kube.kubectl("delete", "--ignore-not-found", "--wait=true", *(f"-f={f}" for f in files),
                 check=False, timeout=300)  # fmt: skip


def namespace_objects(namespace: str, metrics_port: int) -> list[dict[str, Any]]:
    """The ConfigMap (the documented tuning), and the pods' service account and its rights.

    Metrics stay on (Argo's default), on a free port of the host.
    """
    config = {
        "resourceRateLimit": f"limit: {POD_RATE_LIMIT}\nburst: {POD_RATE_BURST}\n",
        "executor": "imagePullPolicy: IfNotPresent\n",
        "metricsConfig": f"enabled: true\nport: {metrics_port}\n",
        "telemetryConfig": f"enabled: true\nport: {metrics_port}\n",
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "workflow-controller-configmap", "namespace": namespace},
         "data": config},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
         "rules": [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                    "verbs": ["create", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": SERVICE_ACCOUNT},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT,
                       "namespace": namespace}]},
    ]  # fmt: skip


class Controller:
    """``workflow-controller --namespaced`` as a child process, its log in a file."""

    def __init__(self, namespace: str, image: str, log_path: Path, paths: Paths) -> None:
        self.namespace = namespace
        self.image = image
        self.log_path = log_path
        self.paths = paths
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def start(self, kubeconfig: str) -> None:
        binary = ARGO.bin_dir(self.paths) / "workflow-controller"
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "LEADER_ELECTION_DISABLE": "true",
            "DEFAULT_REQUEUE_TIME": REQUEUE_TIME,
        }
        argv = [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--namespace={self.namespace}",
            "--namespaced",
            f"--managed-namespace={self.namespace}",
            f"--executor-image={self.image}",
            "--executor-image-pull-policy=IfNotPresent",
            f"--workflow-workers={WORKFLOW_WORKERS}",
            f"--pod-cleanup-workers={POD_CLEANUP_WORKERS}",
            f"--qps={QPS}",
            f"--burst={BURST}",
            "--loglevel=warn",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, kube: Kube, timeout: float = 90) -> float:
        """Seconds until the controller answers on its health port (it has synced)."""
        assert self.proc is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"workflow-controller exited; see {self.log_path}")
            try:
                with urllib.request.urlopen("http://127.0.0.1:6060/healthz", timeout=1):
                    return time.monotonic() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"workflow-controller not healthy in {timeout:.0f}s; {self.log_path}")

    def usage(self) -> Usage:
        assert self.proc is not None
        return proc_usage(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
