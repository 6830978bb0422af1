"""Phase 0: what the admission webhook adds to creating a Pipeline.

The operator runs with its webhook (development mode: its own configuration, scoped to the
bench namespace). Pipelines are created one at a time, alternating in blocks between the
webhook's configuration present and removed, so both sets see the same cluster load; the
figure is the difference and the ratio of the two p95s, for the API request ``kubectl apply``
makes (POST, timed in-process: a kubectl process start costs ~50 ms of noise on a busy
2-core machine) and for whole ``kubectl apply`` runs. The webhook's own round trip (an
AdmissionReview posted straight to it over one kept-alive TLS connection) is reported too.
The Pipelines are created cancelled, so the operator only marks them and starts no pod.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path
from typing import Any

from bench.kube import Kube
from bench.overhead import pipeline_body
from bench.procs import Operator, free_port
from bench.stats import percentile, summary_ms
from shipway import GROUP, PLURAL, VERSION
from shipway.controller.webhookconfig import HANDLER_ID
from shipway.engine.objects import Manifest

BLOCKS = 10
PER_BLOCK = 10
DIRECT = 200


def _apply(kube: Kube, namespace: str, body: Manifest) -> float:
    started = time.monotonic()
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    return time.monotonic() - started


def _create(kube: Kube, namespace: str, body: Manifest) -> float:
    started = time.monotonic()
    kube.create_pipeline(namespace, body)
    return time.monotonic() - started


def _direct(port: int, body: Manifest, count: int) -> list[float]:
    """Round trips of AdmissionReviews posted straight to the webhook (certificate unchecked:
    it is the operator's self-signed one)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench",
            "kind": {"group": GROUP, "version": VERSION, "kind": "Pipeline"},
            "resource": {"group": GROUP, "version": VERSION, "resource": PLURAL},
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": body,
        },
    }
    payload = json.dumps(review)
    took = []
    for _ in range(count):
        started = time.monotonic()
        connection.request("POST", f"/{HANDLER_ID}", payload, {"Content-Type": "application/json"})
        answer = json.loads(connection.getresponse().read())
        took.append(time.monotonic() - started)
        if not answer["response"]["allowed"]:
            raise RuntimeError(f"the webhook refused the bench pipeline: {answer}")
    connection.close()
    return took


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
    port = free_port()
    operator = Operator(
        [namespace],
        workdir / "operator-admission.log",
        args=[f"--webhook-url=https://127.0.0.1:{port}", f"--webhook-config={config}"],
    )
    timings: dict[bool, list[float]] = {True: [], False: []}
    applies: dict[bool, list[float]] = {True: [], False: []}
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
                timings[webhook].append(_create(kube, namespace, _body(f"b{block}-{i:02d}", 5)))
                applies[webhook].append(_apply(kube, namespace, _body(f"k{block}-{i:02d}", 5)))
            # The largest spec there is: 1000 run steps (5 groups of 200).
            large[webhook].append(_create(kube, namespace, _large(f"large-{block}")))
            if not webhook:
                kube.kubectl("create", "-f", "-", input=json.dumps(saved))
                _wait_for_webhook(kube, namespace)
        direct = _direct(port, _body("direct", 5), DIRECT)
        direct_large = _direct(port, _large("direct-large"), 20)
    finally:
        operator.stop()
        kube.kubectl("delete", "validatingwebhookconfiguration", config, "--ignore-not-found",
                     check=False)  # fmt: skip
    with_p95 = percentile(timings[True], 95) or 0.0
    without_p95 = percentile(timings[False], 95) or 0.0
    kubectl_with = percentile(applies[True], 95) or 0.0
    kubectl_without = percentile(applies[False], 95) or 0.0
    return {
        "namespace": namespace,
        "applies_per_set": len(timings[True]),
        "with_webhook_ms": summary_ms(timings[True]),
        "without_webhook_ms": summary_ms(timings[False]),
        "p95_added_ms": round((with_p95 - without_p95) * 1000, 1),
        "p95_ratio": round(with_p95 / without_p95, 3) if without_p95 else None,
        "kubectl_apply_with_webhook_ms": summary_ms(applies[True]),
        "kubectl_apply_without_webhook_ms": summary_ms(applies[False]),
        "kubectl_apply_p95_ratio": (
            round(kubectl_with / kubectl_without, 3) if kubectl_without else None
        ),
        "webhook_round_trip_ms": summary_ms(direct),
        "webhook_round_trip_1000_steps_ms": summary_ms(direct_large),
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
