"""Phase 0: what the admission webhook adds to ``kubectl apply`` of a Pipeline.

The operator runs with its webhook (development mode: its own configuration, scoped to the
bench namespace). Pipelines are applied one at a time with kubectl, alternating in blocks
between the webhook's configuration present and removed, so both sets see the same cluster
load; the figure is the difference and the ratio of the two p95s. The Pipelines are created
cancelled, so the operator only marks them and starts no pod.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.kube import Kube, Manifest
from bench.overhead import pipeline_body
from bench.procs import Operator, free_port
from bench.stats import percentile, summary_ms

BLOCKS = 6
PER_BLOCK = 20


def _apply(kube: Kube, namespace: str, body: Manifest) -> float:
    started = time.monotonic()
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    return time.monotonic() - started


def _body(name: str, steps: int) -> Manifest:
    body = pipeline_body(name, steps)
    body["spec"]["cancel"] = True
    return body


def _wait_for_webhook(kube: Kube, namespace: str, timeout: float = 60) -> None:
    bad = _body("bench-probe", 1)
    bad["spec"]["services"]["noop"]["volumes"] = ["/etc:/x"]
    deadline = time.monotonic() + timeout
    while True:
        out = kube.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-f", "-",
            input=json.dumps(bad), check=False,
        )  # fmt: skip
        if not out.strip():  # refused: the error is on stderr, nothing on stdout
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the webhook never refused the probe")
        time.sleep(0.5)


def run(kube: Kube, run_id: str, workdir: Path) -> dict[str, Any]:
    namespace = f"bench-admission-{run_id}"
    kube.create_namespace(namespace, run_id)
    config = f"shipway-bench-{run_id}"
    operator = Operator(
        [namespace],
        workdir / "operator-admission.log",
        args=[f"--webhook-url=https://127.0.0.1:{free_port()}", f"--webhook-config={config}"],
    )
    timings: dict[bool, list[float]] = {True: [], False: []}
    large: dict[bool, list[float]] = {True: [], False: []}
    try:
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        _wait_for_webhook(kube, namespace)
        saved = json.loads(
            kube.kubectl("get", "validatingwebhookconfiguration", config, "-o", "json")
        )
        saved["metadata"] = {"name": config, "labels": saved["metadata"].get("labels", {})}
        for n in range(5):  # warm up kubectl's discovery cache and both servers
            _apply(kube, namespace, _body(f"warm-{n}", 2))
        for block in range(BLOCKS):
            webhook = block % 2 == 0
            if not webhook:
                kube.kubectl("delete", "validatingwebhookconfiguration", config)
            for i in range(PER_BLOCK):
                timings[webhook].append(_apply(kube, namespace, _body(f"b{block}-{i:02d}", 5)))
            # The largest spec there is: 1000 run steps (5 groups of 200).
            large[webhook].append(_apply(kube, namespace, _large(f"large-{block}")))
            if not webhook:
                kube.kubectl("create", "-f", "-", input=json.dumps(saved))
                _wait_for_webhook(kube, namespace)
    finally:
        operator.stop()
        kube.kubectl("delete", "validatingwebhookconfiguration", config, "--ignore-not-found",
                     check=False)  # fmt: skip
    with_p95 = percentile(timings[True], 95) or 0.0
    without_p95 = percentile(timings[False], 95) or 0.0
    return {
        "namespace": namespace,
        "applies_per_set": len(timings[True]),
        "with_webhook_ms": summary_ms(timings[True]),
        "without_webhook_ms": summary_ms(timings[False]),
        "p95_added_ms": round((with_p95 - without_p95) * 1000, 1),
        "p95_ratio": round(with_p95 / without_p95, 3) if without_p95 else None,
        "large_with_webhook_ms": summary_ms(large[True]),
        "large_without_webhook_ms": summary_ms(large[False]),
    }


def _large(name: str) -> Manifest:
    body = _body(name, 0)
    body["spec"]["steps"] = [
        {
            "type": "parallel",
            "steps": [{"service": "noop", "command": f"echo {g}-{i}"} for i in range(200)],
        }
        for g in range(5)
    ]
    return body
