"""Processes the benchmark starts and ends itself: the operator under test, and a kwok of its own.

Each is ended by its own process id, never by name. The operator's memory and CPU time are read
from /proc: ``VmHWM`` is the kernel's exact high-water mark of its resident set.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench.kube import BENCH_LABEL, Kube
from bench.threads import stat_cpu_seconds

ROOT = Path(__file__).resolve().parents[2]
KWOK_TAINT = "kwok.x-k8s.io/node"
MANAGED_ANNOTATION = "shipway.dev/bench-kwok"
POOL_LABEL = "shipway.dev/bench-pool"
KWOK_RESOURCE = "shipway.dev/bench-kwok"
"""An extended resource only the benchmark's fake nodes offer: a step whose service asks for
one (``resources.limits``) can run nowhere else, whatever the operator's placement."""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Usage:
    peak_rss_mb: float
    rss_mb: float
    cpu_s: float


def proc_usage(pid: int) -> Usage:
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(after_name[11]), int(after_name[12])
    return Usage(
        peak_rss_mb=round(int(fields["VmHWM"].split()[0]) / 1024, 1),
        rss_mb=round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        cpu_s=round((utime + stime) / CLK_TCK, 2),
    )


COMPONENTS = ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller", "kwok")


def cpu_seconds(pid: int) -> float:
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def component_cpu() -> dict[str, float]:
    """CPU seconds so far of the cluster's processes on this host, by command name."""
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm in COMPONENTS:
                totals[comm] = totals.get(comm, 0.0) + cpu_seconds(int(entry.name))
        except (OSError, ValueError):
            continue
    return totals


def host_cpu_seconds() -> float:
    """Busy CPU seconds of the whole host so far (all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


class Operator:
    """``python -m shipway operator -n NS`` as a child process, with its log in a file."""

    def __init__(
        self,
        namespaces: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ):
        self.namespaces = namespaces
        self.log_path = log_path
        self.extra_env = env or {}
        self.extra_args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_at = 0.0
        self.profiler: subprocess.Popen[bytes] | None = None

    def start(self, kubeconfig: str) -> None:
        env = dict(os.environ)
        # No history unless a phase asks for it: kwok's fake nodes serve no logs, and the
        # figures stay comparable with earlier runs (the archival phase is still to come).
        env["SHIPWAY_HISTORY"] = "off"
        env.update(self.extra_env)
        env["KUBECONFIG"] = kubeconfig
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "operator"), str(ROOT / "hack"), env.get("PYTHONPATH", "")]
        )
        self.port = free_port()
        argv = [sys.executable, "-m", "shipway", "operator"]
        for namespace in self.namespaces:
            argv += ["-n", namespace]
        argv += ["--liveness", f"http://127.0.0.1:{self.port}/healthz", *self.extra_args]
        log: IO[bytes]
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from start until kopf's health endpoint answers."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the operator exited ({self.proc.returncode}); see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return time.monotonic() - self.started_at
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise RuntimeError(f"the operator was not ready in {timeout:.0f}s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def usage(self) -> Usage:
        return proc_usage(self.pid)

    def profile(self, output: Path) -> None:
        """Sample the operator with py-spy until it stops (BENCH_PROFILE)."""
        spy = Path(sys.executable).parent / "py-spy"
        if not spy.exists():
            print("  (py-spy is not installed in the virtualenv: no profile)")
            return
        self.profiler = subprocess.Popen(
            [str(spy), "record", "--pid", str(self.pid), "--rate", "40", "--nonblocking",
             "--format", "speedscope", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _end_profiler(self) -> None:
        if self.profiler is not None and self.profiler.poll() is None:
            self.profiler.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.profiler.wait(timeout=30)
        self.profiler = None

    def kill(self) -> None:
        """SIGKILL: no cleanup handler runs, as in a crash or an OOM kill."""
        self._end_profiler()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self._end_profiler()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


KWOK_OPTIONS = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: 32
  nodePlayStageParallelism: 4
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 4
"""
"""kwok plays 4 pod stages at a time by default: ~40 status patches/s here, i.e. at most
~20 fake steps/s, which would measure kwok rather than Shipway."""


def _complete_stage(source: Path) -> str:
    """kwok's fast pod-complete stage, for pods owned by a Pipeline (or, for ``make
    bench-peers``, by an Argo Workflow, or by the ConfigMap of its raw pods: ``rawburst``)
    instead of a Job."""
    text = source.read_text()
    if "- 'Job'" not in text or "name: pod-complete" not in text:
        raise RuntimeError(f"unexpected kwok stage {source}")
    lines = [
        line
        for line in text.splitlines(keepends=True)
        if line.strip() not in ("- 'Pipeline'", "- 'Workflow'", "- 'ConfigMap'")
    ]
    kinds = "".join(lines).replace(
        "- 'Job'\n", "- 'Pipeline'\n      - 'Workflow'\n      - 'ConfigMap'\n"
    )
    return kinds.replace("name: pod-complete", "name: shipway-pod-complete")


class FakeNodes:
    """Fake nodes served by a kwok process of the benchmark's own.

    The nodes carry kwok's usual taint (so nothing lands there by accident) but not the
    annotation the cluster's shared kwok manages, and not its ``type=kwok`` label, so the
    shared kwok and ``localkube kwok-nodes`` never touch them, and they never touch theirs.
    Step pods complete the moment they run (kwok's fast stages).
    """

    def __init__(self, kube: Kube, run_id: str, workdir: Path) -> None:
        self.kube = kube
        self.run_id = run_id
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.names: list[str] = []

    @property
    def toleration(self) -> dict[str, str]:
        return {"key": KWOK_TAINT, "operator": "Exists", "effect": "NoSchedule"}

    @property
    def selector(self) -> dict[str, str]:
        return {POOL_LABEL: self.run_id}

    def operator_env(self, *, select: bool = True) -> dict[str, str]:
        """Every step pod tolerates the fake nodes; with ``select`` it also goes only there
        (without, a pod lands on them only if it asks for :data:`KWOK_RESOURCE`)."""
        env = {"SHIPWAY_STEP_TOLERATIONS": json.dumps([self.toleration])}
        if select:
            env["SHIPWAY_STEP_NODE_SELECTOR"] = json.dumps(self.selector)
        return env

    def start(self, count: int, pods_per_node: int, *, logs: Path | None = None) -> None:
        """``count`` Ready nodes; with ``logs``, every pod on them serves that file as its
        containers' logs through the API server (bench.kwoklogs)."""
        from localkube.addons import kwok
        from localkube.config import Paths
        from localkube.toolchain import build

        paths = Paths.default()
        binary = build.build(build.KWOK, paths, log=False) / "kwok"
        stages = kwok.stage_files(paths)
        configs = [s for s in stages if not s.name.endswith("pod-complete.yaml")]
        complete = self.workdir / "shipway-pod-complete.yaml"
        complete.write_text(
            _complete_stage(next(s for s in stages if s.name.endswith("pod-complete.yaml")))
        )
        configs.append(complete)
        options = self.workdir / "kwok-options.yaml"
        port = free_port()
        served: list[str] = []
        options_text = KWOK_OPTIONS
        if logs is not None:
            from bench import kwoklogs

            options_text += kwoklogs.DEBUGGING_OPTION
            crt, key = kwoklogs.serving_cert(paths.pki, self.workdir)
            (self.workdir / "kwok-logs.yaml").write_text(kwoklogs.cluster_logs(logs))
            configs.append(self.workdir / "kwok-logs.yaml")
            served = [
                "--node-ip=127.0.0.1",
                f"--node-port={port}",
                f"--tls-cert-file={crt}",
                f"--tls-private-key-file={key}",
            ]
        options.write_text(options_text)
        configs.append(options)
        argv = [
            str(binary),
            f"--kubeconfig={paths.etc / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={MANAGED_ANNOTATION}={self.run_id}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.200.0.0/16",
            f"--server-address=127.0.0.1:{port}",
            *served,
            *(f"--config={c}" for c in configs),
        ]
        with (self.workdir / "kwok.log").open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.names = [f"bench-kwok-{self.run_id}-{i}" for i in range(count)]
        items = [self._node(name, kwok.node_manifest(name), pods_per_node) for name in self.names]
        self.kube.kubectl(
            "create",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kwok exited ({self.proc.returncode}); see {self.workdir}/kwok.log"
                )
            nodes = json.loads(
                self.kube.kubectl("get", "nodes", "-l", f"{POOL_LABEL}={self.run_id}", "-o", "json")
            )["items"]
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", [])
                )
            ]
            if len(ready) == count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{count} fake nodes were not Ready in 90s")

    def _node(self, name: str, node: dict[str, Any], pods_per_node: int) -> dict[str, Any]:
        meta = node["metadata"]
        meta["annotations"] = {MANAGED_ANNOTATION: self.run_id, "node.alpha.kubernetes.io/ttl": "0"}
        meta["labels"]["type"] = "shipway-bench"
        meta["labels"][POOL_LABEL] = self.run_id
        meta["labels"][BENCH_LABEL] = self.run_id
        for key in ("allocatable", "capacity"):
            node["status"][key]["pods"] = str(pods_per_node)
            node["status"][key][KWOK_RESOURCE] = str(pods_per_node)
        return node

    def stop(self) -> None:
        if self.names:
            self.kube.kubectl(
                "delete", "nodes", "-l", f"{POOL_LABEL}={self.run_id}", "--wait=false", check=False
            )
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
