"""Phase "triggers": a git push to Gitea in the local cluster, through ``shipway triggers``.

* **received → created**: from the webhook's arrival at the receiver to the Pipeline's create
  returning, as the receiver logs it (``pipeline NAME created 0.123s after receipt``), in
  parts: its checks before the answer, waiting for a worker, waiting for Gitea's reads of
  the files at the commit, the conversion and the create;
* **push → first step pod**: from the start of ``git push`` on the host to the first step
  pod (not the checkout) seen by a pod watch; includes the push itself, Gitea's own delivery
  and the checkout, each stage reported apart (:data:`STAGES`).

``PUSHES`` pushes, one at a time, each to its own branch (no supersede in the way).
``BENCH_TRIGGERS_CLONE_AUTH=password`` gives the receiver's reads the Gitea user's password
instead of an access token (:data:`CLONE_AUTH`); ``BENCH_TRIGGERS_WARM=0`` turns the
Repository's warm workspaces off (:data:`WARM`).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import watch

from bench.kube import Kube
from bench.procs import ROOT, Operator, free_port
from bench.stats import percentile, summary_ms
from localkube.addons.gitea import server as gitea_addon
from localkube.addons.gitea.client import Gitea, Work
from localkube.config import Paths

PUSHES = 10
HOST_FROM_PODS = "10.244.0.1"
CREATED = re.compile(r"pipeline (\S+) created ([0-9.]+)s after receipt")
#: The same line with its time (the receiver logs local time to the millisecond).
CREATED_AT = re.compile(
    r"^(\S+ \S+) shipway\.triggers INFO pipeline (\S+) created ([0-9.]+)s after receipt", re.M
)
#: The same line's parts: the receiver's checks before its answer (signature, payload,
#: decision), waiting for a worker thread, waiting for the forge's reads, the conversion, the
#: create (the Pipeline and its Secrets); and how many calls the reads took.
PARTS = re.compile(
    r"after receipt \(checked ([0-9.]+)s, queued ([0-9.]+)s, read ([0-9.]+)s, converted"
    r" ([0-9.]+)s, created ([0-9.]+)s; ([0-9]+) forge calls\)"
)
PART_NAMES = ("checked", "queued", "read", "converted", "created")
PROJECT = {
    "codeship-services.yml": "app:\n  image: busybox:1.36\n",
    "codeship-steps.yml": "- name: test\n  service: app\n  command: 'true'\n",
}


#: The stages between the Pipeline's creation and its first step pod, in the order they come,
#: as the watch sees them: the workspace claim and the checkout pod made (together), the claim
#: bound (the provisioner made its volume once the scheduler picked a node), the checkout pod
#: scheduled, its container running, ended, and the first step pod made.
STAGES = (
    "claim", "checkout", "claim_bound", "checkout_scheduled", "checkout_running",
    "checkout_ended", "first_step",
)  # fmt: skip
WARM = os.environ.get("BENCH_TRIGGERS_WARM")
"""``spec.warmWorkspaces`` of the Repository (unset: its default); ``0`` measures pushes
that each wait for a new claim to be provisioned."""
CLONE_AUTH = os.environ.get("BENCH_TRIGGERS_CLONE_AUTH") or "token"
"""What the clone Secret (the receiver's reads at the commit) holds: an access ``token`` of
the Gitea user (what docs/triggers.md asks for), or its ``password`` (Gitea checks it with a
slow hash on every API call)."""


class PodSeen:
    """Host-side arrival time of each stage of each pipeline of the namespace (its pods and
    its workspace claim), from one watch of each."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.seen: dict[str, dict[str, float]] = {}
        self.stop = threading.Event()
        self.kube, self.namespace = kube, namespace
        for lister, stages in ((kube.core.list_namespaced_pod, _pod_stages),
                               (kube.core.list_namespaced_persistent_volume_claim, _claim_stages)):  # fmt: skip
            threading.Thread(target=self._run, args=(lister, stages), daemon=True).start()

    @property
    def first_step(self) -> dict[str, float]:
        return {name: marks["first_step"] for name, marks in self.seen.items() if "first_step" in marks}  # fmt: skip

    def _mark(self, pipeline: str, stage: str, now: float) -> None:
        self.seen.setdefault(pipeline, {}).setdefault(stage, now)

    def _run(self, lister: Any, stages: Any) -> None:
        while not self.stop.is_set():
            stream = watch.Watch().stream(lister, self.namespace, timeout_seconds=60)  # type: ignore[no-untyped-call]
            for event in stream:
                now = time.monotonic()
                obj = event["object"]
                owner = next(
                    (o.name for o in obj.metadata.owner_references or [] if o.kind == "Pipeline"),
                    None,
                )
                if owner is not None:
                    for stage in stages(obj):
                        self._mark(owner, stage, now)
                if self.stop.is_set():
                    return

    def parts(self) -> dict[str, list[float]]:
        """Seconds from each stage to the next, over the pipelines that reached both."""
        out: dict[str, list[float]] = {}
        for before, after in itertools.pairwise(STAGES):
            out[f"{before}_to_{after}"] = [
                m[after] - m[before] for m in self.seen.values() if before in m and after in m
            ]
        return out


def _claim_stages(obj: Any) -> list[str]:
    return ["claim", "claim_bound"] if obj.status and obj.status.phase == "Bound" else ["claim"]


def _pod_stages(obj: Any) -> list[str]:
    """The stages a pipeline's pod shows."""
    step = (obj.metadata.labels or {}).get("shipway.dev/step")
    if not step:
        return []
    if step != "source":
        return ["first_step"]
    stages = ["checkout"]
    if obj.spec.node_name:
        stages.append("checkout_scheduled")
    for status in (obj.status.container_statuses if obj.status else None) or []:
        if status.state.running or status.state.terminated:
            stages.append("checkout_running")
        if status.state.terminated:
            stages.append("checkout_ended")
    return stages


def _start_triggers(namespace: str, port: int, log: Path, kubeconfig: str) -> subprocess.Popen[bytes]:  # fmt: skip
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipway", "triggers", "-n", namespace, "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"shipway triggers did not start: {log.read_text()[-2000:]}")


def run(kube: Kube, run_id: str, workdir: Path) -> dict[str, Any]:
    namespace = f"bench-triggers-{run_id}"
    kube.create_namespace(namespace, run_id)
    found = gitea_addon.up(Paths.default())
    forge = Gitea(found["host_url"], found["username"], found["password"])
    repo = f"bench-{secrets.token_hex(3)}"
    forge.create_repo(repo)
    secret = secrets.token_hex(16)
    port = free_port()
    log = workdir / "triggers.log"
    operator = Operator([namespace], workdir / "operator-triggers.log")
    proc = _start_triggers(namespace, port, log, kube.kubeconfig)
    try:
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        forge.add_hook(repo, f"http://{HOST_FROM_PODS}:{port}/hooks/{namespace}/{repo}", secret)
        clone = forge.password if CLONE_AUTH == "password" else forge.token(f"bench-{repo}")
        for name, data in (("hook", {"secret": secret}),
                           ("clone", {"username": forge.username, "password": clone})):  # fmt: skip
            kube.core.create_namespaced_secret(
                namespace, {"metadata": {"name": name}, "stringData": data}
            )
        kube.custom.create_namespaced_custom_object(
            "shipway.dev", "v1alpha1", namespace, "repositories",
            {"apiVersion": "shipway.dev/v1alpha1", "kind": "Repository",
             "metadata": {"name": repo},
             "spec": {"url": f"{found['host_url']}/{forge.username}/{repo}.git",
                      "provider": "gitea", "concurrency": "none",
                      "webhookSecret": {"name": "hook", "key": "secret"},
                      "cloneSecretName": "clone",
                      **({"warmWorkspaces": int(WARM)} if WARM else {})}},
        )  # fmt: skip
        warm_ready = _wait_for_spare(kube, namespace) if WARM != "0" else None
        seen = PodSeen(kube, namespace)
        work = Work(forge.clone_url(repo))
        work.commit(PROJECT, "bench")
        to_step: list[float] = []
        to_pod: list[float] = []
        push_took: list[float] = []
        push_wall: dict[str, float] = {}
        for index in range(PUSHES):
            work.commit({"n": f"{index}\n"}, f"push {index}")
            branch = f"b{index}"
            before = set(seen.first_step)
            started, wall = time.monotonic(), time.time()
            work.push(branch)
            push_took.append(time.monotonic() - started)
            deadline = started + 60
            while time.monotonic() < deadline:
                new = set(seen.first_step) - before
                if new:
                    name = new.pop()
                    push_wall[name] = wall
                    to_step.append(seen.first_step[name] - started)
                    to_pod.append(seen.seen[name].get("checkout", seen.first_step[name]) - started)
                    break
                time.sleep(0.02)
            time.sleep(1)  # the run's steps end before the next push
        seen.stop.set()
        listed = kube.custom.list_namespaced_custom_object(
            "shipway.dev", "v1alpha1", namespace, "pipelines"
        )
        on_warm = sum(
            1 for p in listed.get("items") or []
            if ((p.get("spec") or {}).get("workspace") or {}).get("claimName")
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        operator.stop()
    text = log.read_text()
    created = [float(m.group(2)) for m in CREATED.finditer(text)]
    to_received = [
        _wall(m.group(1)) - float(m.group(3)) - push_wall[m.group(2)]
        for m in CREATED_AT.finditer(text)
        if m.group(2) in push_wall
    ]
    parts = [tuple(float(g) for g in m.groups()[:-1]) for m in PARTS.finditer(text)]
    calls = [int(m.group(6)) for m in PARTS.finditer(text)]
    return {
        "namespace": namespace,
        "pushes": PUSHES,
        "clone_auth": CLONE_AUTH,
        "git_push_ms": summary_ms(push_took),
        "push_to_received_ms": summary_ms(to_received),
        "received_to_created_ms": summary_ms(created),
        "received_to_created_parts_ms": {
            name: summary_ms([p[i] for p in parts]) for i, name in enumerate(PART_NAMES)
        },
        "forge_calls_per_delivery": max(calls, default=None),
        "push_to_first_pod_ms": summary_ms(to_pod),
        "checkout_parts_ms": {name: summary_ms(values) for name, values in seen.parts().items()},
        "push_to_first_step_pod_ms": summary_ms(to_step),
        "received_to_created_p95_ms": _ms(percentile(created, 95)),
        "push_to_first_step_pod_p95_ms": _ms(percentile(to_step, 95)),
        "missed": PUSHES - len(to_step),
        "warm_workspace_ready_s": warm_ready,
        "pushes_on_a_warm_workspace": on_warm,
    }


def _wait_for_spare(kube: Kube, namespace: str, timeout: float = 60) -> float | None:
    """Seconds until the Repository's first warm workspace is bound (the steady state the
    pushes meet: each push's take makes the next spare at once); None if none came."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        claims = kube.core.list_namespaced_persistent_volume_claim(
            namespace, label_selector="shipway.dev/warm-workspace"
        )
        if any(c.status and c.status.phase == "Bound" for c in claims.items):
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    return None


def _wall(stamp: str) -> float:
    """Epoch seconds of a log line's ``2026-12-06 19:56:37,389`` (local time)."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def rows(tr: dict[str, Any], mark: Any, fmt: Any) -> list[tuple[str, str, str]]:
    """The triggers phase's rows of the table."""
    if not tr:
        return []
    created = tr.get("received_to_created_ms") or {}
    step = tr.get("push_to_first_step_pod_ms") or {}
    pod = tr.get("push_to_first_pod_ms") or {}
    parts = tr.get("received_to_created_parts_ms") or {}
    stages = tr.get("checkout_parts_ms") or {}

    def p50s(named: dict[str, Any]) -> str:
        return " / ".join(fmt((v or {}).get("p50")) for v in named.values())

    return [
        (f"triggers ({tr.get('pushes', '?')} pushes to Gitea)", "", ""),
        ("  webhook received → Pipeline p50 / p95", f"{fmt(created.get('p50'))} / {fmt(created.get('p95'), ' ms')}", mark("triggers_received_to_created_p95_ms")),
        ("  of which " + " / ".join(parts) + ", p50", p50s(parts) + " ms", ""),
        ("  git push / its start → webhook received, p50", f"{fmt((tr.get('git_push_ms') or {}).get('p50'))} / {fmt((tr.get('push_to_received_ms') or {}).get('p50'), ' ms')}", ""),
        ("  push → checkout pod p50 / p95", f"{fmt(pod.get('p50'))} / {fmt(pod.get('p95'), ' ms')}", ""),
        ("  push → first step pod p50 / p95", f"{fmt(step.get('p50'))} / {fmt(step.get('p95'), ' ms')}", mark("triggers_push_to_first_step_pod_p95_ms")),
        ("  pushes on a warm workspace (spec.warmWorkspaces)", f"{tr.get('pushes_on_a_warm_workspace', '?')} of {tr.get('pushes', '?')}", ""),
        *((f"  {name.replace('_to_', ' → ')} p50", fmt((v or {}).get("p50"), " ms"), "") for name, v in stages.items()),
    ]  # fmt: skip
