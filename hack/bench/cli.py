"""``python -m bench`` (``make bench``): run the phases, print a table, write the JSON.

Environment: ``BENCH_OUT`` (default bench-results.json), ``BENCH_SCALE`` (default 1: 1000
pipelines of 5 steps in the scale and restart phases, half as many paced at 36 steps/s; 0.1 gives
100), ``BENCH_PHASES``
(default ``admission,overhead,scale,paced,restart,fairness,archival,source,builds,history,dashboard,triggers``;
``BENCH_PHASES=fairness`` runs that one alone, in about two minutes), ``BENCH_PROFILE`` (set: py-spy profiles of the operator
in the scale and restart phases, written next to the logs), ``BENCH_VOLUMES`` (set: the steps
mount a workspace, one claim per pipeline), ``BENCH_TRIGGERS_CLONE_AUTH`` (``password``: the
triggers phase reads with the Gitea user's password, not a token), ``BENCH_TRIGGERS_WARM``
(the triggers phase's Repository's ``spec.warmWorkspaces``; ``0``: off), ``KUBECONFIG`` (default: the
local cluster's).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import math
import os
import platform
import secrets
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

import demo_operator
from bench import admission, builds, fairness, kwoklogs, overhead, scale
from bench import archival as archival_phase
from bench import dashboard as dashboard_phase
from bench import history as history_phase
from bench import source as source_phase
from bench import triggers as triggers_phase
from bench.kube import BENCH_LABEL, Kube, write_json
from bench.load import delete_namespace, release_storage
from bench.procs import MANAGED_ANNOTATION, FakeNodes
from bench.report import PACED_STEPS_PER_SECOND, TARGETS, flatten, table, verdicts
from localkube.crds import wait_established

PHASES = (
    "admission",
    "overhead",
    "scale",
    "paced",
    "restart",
    "fairness",
    "archival",
    "source",
    "builds",
    "history",
    "dashboard",
    "triggers",
)


def _watches_bench(argv: list[str]) -> bool:
    """Whether an operator started with these arguments would act on ``bench-*`` namespaces."""
    patterns: list[str] = []
    for i, arg in enumerate(argv):
        if arg in ("-A", "--all-namespaces"):
            return True
        if arg in ("-n", "--namespace") and i + 1 < len(argv):
            patterns.append(argv[i + 1])
        elif arg.startswith("--namespace="):
            patterns.append(arg.split("=", 1)[1])
    included = [p for p in patterns if not p.startswith("!")]
    excluded = [p[1:] for p in patterns if p.startswith("!")]
    sample = "bench-scale-000000"
    if any(fnmatch.fnmatch(sample, p) for p in excluded):
        return False
    return any(fnmatch.fnmatch(sample, p) for p in included) or (bool(excluded) and not included)


def other_operators() -> list[str]:
    """Shipway operators on this host, not the benchmark's, that would act on its namespaces."""
    found = []
    mine = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        text = " ".join(args)
        if (
            "shipway" in text
            and " operator" in text
            and int(parent) != mine
            and _watches_bench(args)
        ):
            found.append(f"{entry.name}: {text[:160]}")
    return found


def cleanup(kube: Kube, run_id: str) -> None:
    """Delete whatever this run created that is still there (namespaces, volumes)."""
    for ns in kube.list_json(kube.core.list_namespace, label_selector=f"{BENCH_LABEL}={run_id}")[
        "items"
    ]:
        with contextlib.suppress(Exception):
            delete_namespace(kube, run_id, ns["metadata"]["name"], timeout=180)
    release_storage(kube, run_id, None)


def cluster_identity(kube: Kube) -> str:
    """The UID of kube-system: it changes when the cluster is recreated under the benchmark."""
    return str(kube.list_json(kube.core.read_namespace, "kube-system")["metadata"]["uid"])


def stale_cleanup(kube: Kube) -> None:
    """Remove what an interrupted earlier run left: namespaces, volumes, nodes, its kwok."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            if f"--manage-nodes-with-annotation-selector={MANAGED_ANNOTATION}=" in argv:
                os.kill(int(entry.name), signal.SIGTERM)
    namespaces = kube.list_json(kube.core.list_namespace, label_selector=BENCH_LABEL)["items"]
    for ns in namespaces:
        name = ns["metadata"]["name"]
        run_id = ns["metadata"]["labels"][BENCH_LABEL]
        print(f"  removing {name}, left by an earlier run")
        delete_namespace(kube, run_id, name, timeout=120)
    volumes = kube.list_json(kube.core.list_persistent_volume, label_selector=BENCH_LABEL)["items"]
    for volume in volumes:
        with contextlib.suppress(ApiException):
            kube.core.patch_persistent_volume(
                volume["metadata"]["name"], {"metadata": {"finalizers": None}}
            )
            kube.core.delete_persistent_volume(volume["metadata"]["name"])
    kube.kubectl("delete", "nodes", "-l", BENCH_LABEL, "--wait=false", check=False)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # watch reconnects are handled
    out = Path(os.environ.get("BENCH_OUT") or "bench-results.json")
    factor = float(os.environ.get("BENCH_SCALE") or 1)
    phases = [p.strip() for p in (os.environ.get("BENCH_PHASES") or ",".join(PHASES)).split(",")]
    unknown = set(phases) - set(PHASES)
    if unknown:
        print(f"bench: unknown phase(s) {sorted(unknown)}; known: {', '.join(PHASES)}")
        return 2
    count = max(10, round(1000 * factor))
    demo_operator.stop(
        "make bench measures the only operator on this machine", say=lambda m: print(f"bench: {m}")
    )
    steps = 5
    run_id = secrets.token_hex(3)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"shipway-bench-{run_id}"
    workdir.mkdir(parents=True)
    kube = Kube.connect()
    results: dict[str, Any] = {
        "run_id": run_id,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scale_factor": factor,
        "phases": phases,
        "logs": str(workdir),
        "other_operators_at_start": other_operators(),
    }
    print(f"bench {run_id}: phases {', '.join(phases)}; {count} pipelines x {steps} steps at scale")
    print(f"  logs in {workdir}")
    if results["other_operators_at_start"]:
        print("  WARNING: other Shipway operators on this host also act on the bench namespaces:")
        for line in results["other_operators_at_start"]:
            print(f"    {line}")
    started = time.monotonic()
    identity = cluster_identity(kube)
    crds = Path(__file__).resolve().parents[2] / "crds"
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    wait_established(lambda *a: kube.kubectl(*a, check=False), ["pipelines.shipway.dev"])
    stale_cleanup(kube)
    nodes: FakeNodes | None = None
    failed = False
    try:
        if "admission" in phases:
            print("phase 0: admission webhook, kubectl apply with and without ...", flush=True)
            results["admission"] = ad = admission.run(kube, run_id, workdir)
            delete_namespace(kube, run_id, ad["namespace"], timeout=120)
        if "overhead" in phases:
            print("phase 1: overhead on the real kubelet ...", flush=True)
            results["overhead"] = ov = overhead.run(kube, run_id, workdir)
            results["transition_gap_ms"] = ov["transition_gap_ms"]
            results["shipway_vs_raw_ratio"] = ov["shipway_vs_raw_ratio"]
            delete_namespace(kube, run_id, ov["namespace"], timeout=120)
        if "builds" in phases:
            print("phase 1b: builds, the seed's Dockerfile beside buildctl by hand ...", flush=True)
            results["builds"] = bd = builds.run(kube, run_id, workdir)
            delete_namespace(kube, run_id, bd["namespace"], timeout=120)
        if {"scale", "paced", "restart", "fairness", "archival"} & set(phases):
            nodes = FakeNodes(kube, run_id, workdir)
            node_count = max(4, math.ceil(count / 100))
            print(f"  {node_count} fake nodes (kwok) ...", flush=True)
            # Their pods serve a 1 KiB log through the API server when archival is measured.
            logs = kwoklogs.log_file(workdir) if "archival" in phases else None
            nodes.start(node_count, pods_per_node=2000, logs=logs)
            timeout = max(180.0, count * steps / 10)
        if "scale" in phases and nodes is not None:
            print(f"phase 2: scale, {count} pipelines x {steps} steps ...", flush=True)
            results["scale"] = sc = scale.run_scale(
                kube, run_id, workdir, nodes, count=count, steps=steps, timeout=timeout
            )
            sc["cleanup_s"] = round(delete_namespace(kube, run_id, sc["namespace"]), 1)
        if "paced" in phases and nodes is not None:
            paced = max(10, count // 2)
            rate = PACED_STEPS_PER_SECOND / steps
            print(f"phase 2b: paced, {paced} pipelines at {rate:g}/s ...", flush=True)
            results["paced"] = pc = scale.run_scale(
                kube, run_id, workdir, nodes, count=paced, steps=steps, timeout=timeout, rate=rate
            )
            pc["cleanup_s"] = round(delete_namespace(kube, run_id, pc["namespace"]), 1)
        if "restart" in phases and nodes is not None:
            print(
                f"phase 3: restart, {count} pipelines x {steps} steps, SIGKILL at 30% ...",
                flush=True,
            )
            results["restart"] = rs = scale.run_restart(
                kube, run_id, workdir, nodes, count=count, steps=steps, timeout=timeout
            )
            rs["cleanup_s"] = round(delete_namespace(kube, run_id, rs["namespace"]), 1)
        if "fairness" in phases and nodes is not None:
            print(
                "phase 3b: fairness, 3 steps alone and beside 1000 in another namespace ...",
                flush=True,
            )
            results["fairness"] = fa = fairness.run(kube, run_id, workdir, nodes)
            for namespace in fa["namespaces"]:
                delete_namespace(kube, run_id, namespace, timeout=180)
        if "archival" in phases and nodes is not None:
            print(f"phase 2c: archival off, then on, {count} x {steps} ...", flush=True)
            results["archival"] = archival_phase.run(
                kube, run_id, workdir, nodes, count=count, steps=steps, timeout=timeout
            )
        if "history" in phases:
            print("phase 5: history store, 100,000 runs in SQLite ...", flush=True)
            results["history"] = history_phase.run(
                workdir, max(1000, round(history_phase.RUNS * factor))
            )
        if "dashboard" in phases:
            print("phase 6: dashboard, 100,000 stored runs and a live log ...", flush=True)
            results["dashboard"] = da = dashboard_phase.run(
                kube, run_id, workdir, max(1000, round(history_phase.RUNS * factor))
            )
            delete_namespace(kube, run_id, da["namespace"], timeout=120)
        if "source" in phases:
            print("phase 4: source, a 50 MB / 5000-file repository ...", flush=True)
            results["source"] = so = source_phase.run(kube, run_id, workdir)
            delete_namespace(kube, run_id, so["namespace"], timeout=120)
        if "triggers" in phases:
            print("phase 6: triggers, git pushes to Gitea through shipway triggers ...", flush=True)
            results["triggers"] = tr = triggers_phase.run(kube, run_id, workdir)
            delete_namespace(kube, run_id, tr["namespace"], timeout=120)
    except Exception:
        failed = True
        results["error"] = traceback.format_exc()
        print(results["error"], file=sys.stderr)
    finally:
        try:
            cleanup(Kube.connect(), run_id)  # a fresh client: the cluster may have been recreated
        except Exception as exc:
            print(f"bench: cleanup failed: {exc}", file=sys.stderr)
        if nodes is not None:
            with contextlib.suppress(Exception):
                nodes.stop()
    results["other_operators_at_end"] = other_operators()
    with contextlib.suppress(Exception):
        if cluster_identity(Kube.connect()) != identity:
            results["error"] = "the cluster was torn down and set up again during the run"
            failed = True
            print(f"bench: {results['error']}: the figures are not valid", file=sys.stderr)
    results["duration_s"] = round(time.monotonic() - started, 1)
    flat = flatten(results)
    results["targets"] = {k: f"{op} {limit}" for k, (op, limit) in TARGETS.items()}
    results["met"] = verdicts(flat)
    write_json(out, results)
    print()
    print(table(results))
    print(f"\n{out} written; {results['duration_s']:.0f} s in all")
    return 1 if failed else 0
