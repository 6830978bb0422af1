"""``python -m bench.hardening``: how fast each runtime fault of issue 18 ends, and how long the
operator takes to exit on SIGTERM, idle and under load (docs/robustness.md quotes the figures).

It runs its own operator (``python -m shipway operator -n NS``) on a namespace of its own, so
it shares the cluster with test sessions and other benchmarks. Each case is timed from the
moment its Pipeline is applied (or, for the names taken while the operator was down, from the
operator's start) to the moment the status says what the case must say.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.kube import Kube
from bench.load import delete_namespace
from bench.procs import Operator
from shipway.engine.naming import pod_name, pvc_name

ROOT = Path(__file__).resolve().parents[2]
GRACE = "20s"
"""The unschedulable grace the benchmark's operator runs with (the default is 10m)."""
ACCOUNT = "shipway-bench-operator"
LOAD_PIPELINES = 60
LOAD_STEPS = 4

Check = Callable[[dict[str, Any]], bool]


def pipeline(name: str, *, volumes: bool = False, command: str = "true", **spec: Any) -> Any:
    app: dict[str, Any] = {"image": "busybox:1.36"}
    if volumes:
        app["volumes"] = ["./:/ws"]
    steps = spec.pop("steps", [{"name": "s", "service": "app", "command": command}])
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"services": {"app": app, **spec.pop("services", {})}, "steps": steps, **spec},
    }


class Figures(dict[str, float]):
    """Seconds by case, printed as they come (a later failure loses none)."""

    def __setitem__(self, name: str, seconds: float) -> None:
        print(f"{name:<52}  {seconds:6.1f} s", flush=True)
        super().__setitem__(name, seconds)


class Bench:
    def __init__(self, kube: Kube, namespace: str, workdir: Path) -> None:
        self.kube = kube
        self.namespace = namespace
        self.operator = Operator(
            [namespace],
            workdir / "operator.log",
            {"SHIPWAY_UNSCHEDULABLE_GRACE": GRACE, "SHIPWAY_OPERATOR_SERVICE_ACCOUNT": ACCOUNT},
        )

    def apply(self, *docs: Any) -> float:
        items = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
        self.kube.kubectl("apply", "-n", self.namespace, "-f", "-", input=items)
        return time.monotonic()

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(
            self.kube.kubectl("get", "-n", self.namespace, kind, name, "-o", "json")
        )
        return found

    def until(self, name: str, check: Check, since: float, timeout: float = 300) -> float:
        """Seconds from ``since`` until the Pipeline's status passes ``check``."""
        while time.monotonic() - since < timeout:
            status = self.get("pipeline", name).get("status") or {}
            if check(status):
                return time.monotonic() - since
            time.sleep(0.2)
        raise RuntimeError(f"{name}: not done in {timeout:.0f}s: {status}")


def phase(*phases: str) -> Check:
    return lambda status: status.get("phase") in phases


def reason(expected: str) -> Check:
    return lambda status: (
        any(c.get("reason") == expected for c in status.get("conditions") or ())
        or any(s.get("reason") == expected for s in status.get("steps") or ())
    )


def failed_with(expected: str) -> Check:
    return lambda status: status.get("phase") == "Failed" and reason(expected)(status)


def faults(bench: Bench) -> dict[str, float]:
    """Seconds each case takes to end (or to say why it waits)."""
    ns = bench.namespace
    figures = Figures()
    # Names taken while the operator is down: timed from its start.
    bench.apply(pipeline("podless"), pipeline("claimless", volumes=True))
    uid = {n: bench.get("pipeline", n)["metadata"]["uid"] for n in ("podless", "claimless")}
    foreign_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name("podless", uid["podless"], "1", "s")},
        "spec": {
            "containers": [{"name": "x", "image": "busybox:1.36", "command": ["sleep", "600"]}],
            "terminationGracePeriodSeconds": 0,
        },
    }
    foreign_claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": pvc_name("claimless", uid["claimless"])},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    bench.apply(foreign_pod, foreign_claim)
    bench.operator.start(bench.kube.kubeconfig)
    ready = bench.operator.started_at
    figures["foreign pod: step Failed (PodNameConflict)"] = bench.until(
        "podless", failed_with("PodNameConflict"), ready
    )
    figures["foreign claim: pipeline Failed (ClaimNameConflict)"] = bench.until(
        "claimless", failed_with("ClaimNameConflict"), ready
    )
    since = bench.apply(pipeline("normal"))
    figures["normal pipeline alongside: Succeeded"] = bench.until(
        "normal", phase("Succeeded"), since
    )
    since = bench.apply(
        pipeline("foo", steps=[{"name": "1 y", "service": "app", "command": "true"}]),
        pipeline("foo-1", steps=[{"name": "y", "service": "app", "command": "true"}]),
    )
    bench.until("foo", phase("Succeeded"), since)
    figures["colliding names: both Succeeded"] = bench.until("foo-1", phase("Succeeded"), since)
    since = bench.apply(pipeline("borrower", serviceAccountName=ACCOUNT))
    figures["operator's ServiceAccount: Failed"] = bench.until(
        "borrower", failed_with("ServiceAccountNotAllowed"), since
    )
    huge = {"image": "busybox:1.36", "resources": {"requests": {"memory": "100Ti"}}}
    since = bench.apply(
        pipeline("huge", steps=[{"name": "s", "service": "huge"}], services={"huge": huge})
    )
    figures["unschedulable: reason shown"] = bench.until("huge", reason("Unschedulable"), since)
    figures[f"unschedulable: Failed (grace {GRACE})"] = bench.until(
        "huge", failed_with("Unschedulable"), since
    )
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-claims"},
        "spec": {"hard": {"persistentvolumeclaims": "0"}},
    }
    bench.apply(quota)
    time.sleep(2)  # the quota controller must fill in the quota's status first
    since = bench.apply(pipeline("held", volumes=True))
    figures["quota-refused claim: condition shown"] = bench.until(
        "held", reason("ExceededResourceQuota"), since
    )
    bench.kube.kubectl("delete", "-n", ns, "resourcequota", "no-claims")
    since = time.monotonic()
    figures["quota lifted: Succeeded (retried every 10 s)"] = bench.until(
        "held", phase("Succeeded"), since
    )
    since = bench.apply(pipeline("keeper", volumes=True, command="true", workspace={"keep": True}))
    bench.until("keeper", phase("Succeeded"), since)
    kept = pvc_name("keeper", bench.get("pipeline", "keeper")["metadata"]["uid"])
    crd(bench.kube)  # other sessions on a shared cluster may have applied an older CRD since
    since = bench.apply(pipeline("reuser", volumes=True, workspace={"claimName": kept}))
    figures["kept claim reused: Succeeded"] = bench.until("reuser", phase("Succeeded"), since)
    return figures


def crd(kube: Kube) -> None:
    """The CRD of this tree (spec.workspace.claimName): the cluster may hold an older one."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))


def sigterm(operator: Operator) -> float:
    """Seconds from SIGTERM to the operator's exit."""
    assert operator.proc is not None
    started = time.monotonic()
    operator.proc.send_signal(signal.SIGTERM)
    operator.proc.wait(timeout=120)
    return time.monotonic() - started


def shutdown(bench: Bench) -> dict[str, float]:
    figures = Figures()
    figures["SIGTERM, idle: exit"] = sigterm(bench.operator)
    bench.operator.start(bench.kube.kubeconfig)
    bench.operator.wait_ready()
    docs = [
        pipeline(
            f"load-{i}",
            steps=[{"service": "app", "command": "sleep 2"} for _ in range(LOAD_STEPS)],
        )
        for i in range(LOAD_PIPELINES)
    ]
    bench.apply(*docs)
    time.sleep(8)  # pods being created, status patches and Events queued
    figures[f"SIGTERM, {LOAD_PIPELINES} pipelines starting: exit"] = sigterm(bench.operator)
    return figures


def main() -> int:
    kube = Kube.connect()
    run_id = secrets.token_hex(3)
    namespace = f"bench-hardening-{run_id}"
    workdir = Path(tempfile.mkdtemp(prefix="hardening-"))
    crd(kube)
    kube.create_namespace(namespace, run_id)
    bench = Bench(kube, namespace, workdir)
    try:
        faults(bench)
        shutdown(bench)
    finally:
        bench.operator.stop()
        if not os.environ.get("BENCH_KEEP"):
            delete_namespace(kube, run_id, namespace)
    print(f"(operator log: {workdir / 'operator.log'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
