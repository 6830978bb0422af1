"""The burst's limit: the same chains of pods with no engine, driven by a bare loop.

``count`` chains of ``steps`` no-op pods on the fake nodes: every chain's first pod is
created at once, and each next pod the moment the watch shows the one before it terminated,
as the smallest script would. The pods go through the same scheduler, kubelet stand-in (kwok)
and API server as both engines' pods, so the wall time is what the cluster allows, the floor
under Shipway's and Argo's figures.

kwok completes only pods it recognises by their owner's kind (``procs._complete_stage``);
these pods are owned by a ConfigMap made for the run, which nothing else on the fake nodes is.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.kube import Kube
from bench.overhead import RAW_LABEL
from bench.peers.measure import gaps
from bench.stats import summary_ms
from bench.watch import PodRecord, PodWatch
from localkube.config import BUSYBOX_IMAGE
from shipway.engine.objects import Manifest

OWNER_KIND = "ConfigMap"
"""The kind kwok's complete stage accepts besides Pipeline and Workflow: the raw pods'."""
OWNER_NAME = "raw-burst"


def pod_name(chain: int, step: int) -> str:
    return f"raw-{chain:04d}-{step}"


def raw_pod(
    chain: int, step: int, *, owner: Manifest, toleration: Manifest, selector: dict[str, str]
) -> Manifest:
    """One no-op step pod, as small as a pod on the fake nodes can be."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(chain, step),
            "labels": {RAW_LABEL: OWNER_NAME},
            "ownerReferences": [owner],
        },
        "spec": {
            "restartPolicy": "Never",
            "tolerations": [toleration],
            "nodeSelector": selector,
            "containers": [{"name": "step", "image": BUSYBOX_IMAGE, "command": ["true"]}],
        },
    }


def next_steps(
    pods: dict[str, PodRecord], current: list[int], steps: int, *, created: set[str]
) -> list[tuple[int, int]]:
    """(chain, step) of every pod to create now: the chain's current pod terminated and the
    next one not created yet. Advances ``current`` and records the names in ``created``."""
    due = []
    for chain, step in enumerate(current):
        record = pods.get(pod_name(chain, step))
        if record is None or record.terminated_at is None or step + 1 >= steps:
            continue
        name = pod_name(chain, step + 1)
        if name not in created:
            created.add(name)
            current[chain] = step + 1
            due.append((chain, step + 1))
    return due


def run(
    kube: Kube,
    namespace: str,
    *,
    count: int,
    steps: int,
    toleration: Manifest,
    selector: dict[str, str],
    timeout: float,
) -> dict[str, Any]:
    """Drive ``count`` chains to their end; the same figures as the engines' rows."""
    owner_body = {"metadata": {"name": OWNER_NAME}}
    made = kube.core.create_namespaced_config_map(namespace, owner_body)
    owner = {"apiVersion": "v1", "kind": OWNER_KIND, "name": OWNER_NAME, "uid": made.metadata.uid}
    watch = PodWatch(kube.fresh_api(), namespace, f"{RAW_LABEL}={OWNER_NAME}")
    watch.start()
    watch.ready.wait(30)
    failures: list[BaseException] = []
    failed = threading.Event()

    def create(chain: int, step: int) -> None:
        try:
            kube.create_pod(
                namespace,
                raw_pod(chain, step, owner=owner, toleration=toleration, selector=selector),
            )
        except Exception as exc:  # reported after the loop, not lost in the pool
            failures.append(exc)
            failed.set()

    current = [0] * count
    created = {pod_name(chain, 0) for chain in range(count)}
    last = [pod_name(chain, steps - 1) for chain in range(count)]
    pool = ThreadPoolExecutor(max_workers=8)
    started = time.monotonic()
    try:
        for chain in range(count):
            pool.submit(create, chain, 0)
        deadline = started + timeout
        with watch.lock:
            while not failed.is_set():
                if all((r := watch.pods.get(n)) and r.terminated_at for n in last):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"raw burst: not finished in {timeout:.0f}s")
                for chain, step in next_steps(watch.pods, current, steps, created=created):
                    pool.submit(create, chain, step)
                watch.changed.wait(0.05)
        if failures:
            raise RuntimeError(f"raw burst: a create failed: {failures[0]}")
        with watch.lock:
            chains = [[watch.pods[pod_name(c, s)] for s in range(steps)] for c in range(count)]
    finally:
        pool.shutdown(wait=True)
        watch.stop()
    ends = [chain[-1].terminated_at for chain in chains]
    wall = max(e for e in ends if e is not None) - started
    done = count * steps
    return {
        "wall_s": round(wall, 2),
        "steps": done,
        "transition_gap_ms": summary_ms(gaps({str(c): chain for c, chain in enumerate(chains)})),
        "steps_per_second": round(done / wall, 2),
    }
