"""Phase "source": a 50 MB / 5,000-file repository checked out and uploaded, beside doing the
same by hand on the host.

* **checkout**: the checkout pod's own work, from its script's first log line (the container
  runs) to its last (the files are in place), read with ``kubectl logs --timestamps``; beside
  ``git clone --depth 1`` of the same repository from the same in-cluster server, run on the
  host (the target: at most 1.5 times as long);
* **upload**: ``shipway run --dir`` of the same tree, the transfer as the CLI reports it
  (attach, stream, the receiver's exit); beside ``tar -c | tar -x`` of the tree on the host;
* **wait**, apart: from creating the Pipeline to the source container's first log line
  (the operator's reaction, the claim, scheduling, the container's start).

Each figure is the median of ``REPEATS`` runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.kube import Kube, kubectl_binary
from bench.procs import ROOT, Operator
from localkube.addons import gitserver
from localkube.config import Paths
from localkube.images import git as gitimages
from shipway import GROUP, KIND, VERSION

FILES = 5000
TOTAL_BYTES = 50 * 1000 * 1000
REPEATS = 3
TIMEOUT = 300.0


def make_repository(root: Path) -> Path:
    """A work tree of FILES incompressible files (TOTAL_BYTES in all) in 50 folders, committed;
    its bare clone is ``root/bench.git``."""
    work = root / "bench-work"
    size = TOTAL_BYTES // FILES
    for index in range(FILES):
        folder = work / f"d{index % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:04d}.bin").write_bytes(os.urandom(size))
    (work / "codeship-services.yml").write_text(
        "app:\n  image: busybox:1.36\n  volumes: [./:/src]\n"
    )
    (work / "codeship-steps.yml").write_text(
        "- service: app\n  command: test -f /src/d00/f0000.bin\n"
    )
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@e.x"}
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@e.x"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)
    bare = root / "bench.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return work


def _timed(argv: list[str], **kwargs: Any) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, **kwargs)
    return time.monotonic() - started


def _log_span(kube: Kube, namespace: str, pod: str) -> tuple[float, float]:
    """Epoch seconds of the pod's first and last log lines (the runtime's timestamps)."""
    out = kube.kubectl("logs", "-n", namespace, pod, "--timestamps")
    stamps = [line.split(" ", 1)[0] for line in out.splitlines() if line.strip()]
    if not stamps:
        raise RuntimeError(f"{pod} logged nothing")

    def epoch(stamp: str) -> float:
        # RFC 3339 with nanoseconds: keep microseconds for fromisoformat
        match = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-].*)$", stamp)
        assert match is not None, stamp
        frac = (match.group(2) or ".0")[:7]
        zone = "+00:00" if match.group(3) == "Z" else match.group(3)
        return datetime.fromisoformat(match.group(1) + frac + zone).timestamp()

    return epoch(stamps[0]), epoch(stamps[-1])


def _pipeline(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "source": {"git": {"url": url}},
            "services": {"app": {"image": "busybox:1.36", "volumes": ["./:/src"]}},
            "steps": [{"name": "check", "service": "app", "command": "test -f /src/d00/f0000.bin"}],
        },
    }


def _wait(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        body = json.loads(kube.kubectl("get", "pipeline", name, "-n", namespace, "-o", "json"))
        if (body.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Cancelled"):
            return dict(body)
        time.sleep(0.2)
    raise RuntimeError(f"pipeline {name} did not finish in {TIMEOUT:.0f}s")


def _apply_crds(kube: Kube, namespace: str = "default") -> None:
    """This tree's CRD, served: another session on a shared cluster may have applied a
    different one (without spec.source, or with fields this operator refuses). After an
    apply the API server takes a moment to serve the new schema: a dry-run create shows
    when a Pipeline keeps its source and gains nothing."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    probe = _pipeline("schema-probe", "https://example.invalid/x.git")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = kube.kubectl(
            "create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-",
            input=json.dumps(probe), check=False,
        )  # fmt: skip
        try:
            spec = json.loads(out)["spec"]
        except (ValueError, KeyError):
            spec = {}
        if "source" in spec and set(spec) <= set(probe["spec"]) | {"workspace", "ci", "cancel"}:
            return
        time.sleep(0.2)


def _checkout(kube: Kube, namespace: str, url: str, index: int) -> tuple[float, float]:
    """(checkout seconds, wait seconds) of one pipeline."""
    for attempt in range(6):
        _apply_crds(kube, namespace)
        name = f"checkout-{index}-{attempt}"
        created = time.time()
        kube.create_pipeline(namespace, _pipeline(name, url))
        status = _wait(kube, namespace, name)["status"]
        if "source" in status and status.get("phase") == "Succeeded":
            break
    if status["phase"] != "Succeeded" or "source" not in status:
        raise RuntimeError(f"checkout pipeline {name}: {json.dumps(status)[:2000]}")
    first, last = _log_span(kube, namespace, status["source"]["pod"])
    return last - first, first - created


def _upload(kube: Kube, namespace: str, work: Path) -> tuple[float, float]:
    """(transfer seconds, receiver-ready seconds) as ``shipway run --dir`` reports them."""
    env = {**os.environ, "KUBECONFIG": kube.kubeconfig}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), env.get("PYTHONPATH", "")])
    pattern = r"uploaded \d+ files .* in ([\d.]+)s \(receiver ready after ([\d.]+)s\)"
    for _ in range(6):  # again when another session's CRD got in the way (see _apply_crds)
        _apply_crds(kube, namespace)
        done = subprocess.run(
            [sys.executable, "-m", "shipway", "run", "--dir", str(work), "--no-logs", "-n", namespace],
            capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        match = re.search(pattern, done.stdout)
        if done.returncode == 0 and match is not None:
            return float(match.group(1)), float(match.group(2))
    raise RuntimeError(f"shipway run --dir failed:\n{done.stdout}\n{done.stderr}")


def run(kube: Kube, run_id: str, workdir: Path) -> dict[str, Any]:
    namespace = f"bench-source-{run_id}"
    kube.create_namespace(namespace, run_id)
    paths = Paths.default()
    gitimages.ensure(paths, import_into=paths.containerd_socket)
    kubectl = [kubectl_binary(), "--kubeconfig", kube.kubeconfig]
    repo_root = Path(tempfile.mkdtemp(prefix="shipway-bench-repo-"))
    operator = Operator([namespace], workdir / "operator-source.log")
    try:
        work = make_repository(repo_root)
        ip, _ = gitserver.deploy(kubectl, namespace, "bench", "bench", authorized_keys="")
        gitserver.publish(kubectl, namespace, repo_root / "bench.git")
        url = gitserver.http_url(ip, "bench")
        operator.start(kube.kubeconfig)
        operator.wait_ready()
        clones, checkouts, waits, uploads, tars, ready = [], [], [], [], [], []
        problems: list[str] = []
        for index in range(REPEATS):
            target = repo_root / f"clone-{index}"
            clones.append(_timed(["git", "clone", "-q", "--depth", "1", url, str(target)]))
            shutil.rmtree(target)
            copy = repo_root / f"copy-{index}"
            copy.mkdir()
            tars.append(_timed(["sh", "-c", f"tar -C '{work}' -c . | tar -C '{copy}' -x"]))
            shutil.rmtree(copy)
            try:
                checkout_s, wait_s = _checkout(kube, namespace, url, index)
                checkouts.append(checkout_s)
                waits.append(wait_s)
                upload_s, ready_s = _upload(kube, namespace, work)
                uploads.append(upload_s)
                ready.append(ready_s)
            except RuntimeError as exc:  # kept apart: a shared cluster's CRD may interfere
                problems.append(str(exc)[:1000])
        if not checkouts or not uploads:
            raise RuntimeError("no complete run: " + "; ".join(problems))
    finally:
        operator.stop()
        shutil.rmtree(repo_root, ignore_errors=True)
    med = statistics.median
    return {
        "namespace": namespace,
        "files": FILES,
        "bytes": TOTAL_BYTES,
        "repeats": REPEATS,
        "checkout_s": round(med(checkouts), 3),
        "host_clone_s": round(med(clones), 3),
        "checkout_vs_clone_ratio": round(med(checkouts) / med(clones), 3),
        "upload_s": round(med(uploads), 3),
        "host_tar_s": round(med(tars), 3),
        "upload_vs_tar_ratio": round(med(uploads) / med(tars), 3),
        "checkout_wait_s": round(med(waits), 3),
        "upload_receiver_ready_s": round(med(ready), 3),
        "problems": problems,
        "runs": {
            "checkout_s": [round(x, 3) for x in checkouts],
            "host_clone_s": [round(x, 3) for x in clones],
            "checkout_wait_s": [round(x, 3) for x in waits],
            "upload_s": [round(x, 3) for x in uploads],
            "host_tar_s": [round(x, 3) for x in tars],
        },
    }
