"""Extra fake nodes through kwok, for scheduling across several nodes and large benchmarks.

kwok (built from its Go module) runs on the host and plays the kubelet for the nodes that
carry the ``kwok.x-k8s.io/node=fake`` annotation. Those nodes are tainted
``kwok.x-k8s.io/node=fake:NoSchedule``, so only pods that tolerate the taint land there and
ordinary tests keep running on the real node.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from localkube import config
from localkube.cluster import host, runtime
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.process import run
from localkube.toolchain import build

ANNOTATION = "kwok.x-k8s.io/node"
LABEL = "type"
LABEL_VALUE = "kwok"
PREFIX = "kwok-node-"
KWOK_PORT = 10247


def node_manifest(name: str) -> dict[str, object]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "node-role.kubernetes.io/agent": "",
                LABEL: LABEL_VALUE,
            },
        },
        "spec": {"taints": [{"key": ANNOTATION, "value": "fake", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": capacity,
            "capacity": capacity,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
                "containerRuntimeVersion": "kwok",
                "kernelVersion": "kwok",
                "osImage": "kwok",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "phase": "Running",
        },
    }


#: kwok's own stage definitions (from its module): fast node and pod life cycles.
STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def stage_files(paths: Paths) -> list[Path]:
    """The stage files, copied once from kwok's module into the cache."""
    dest = build.KWOK.bin_dir(paths).parent / "stages"
    files = [dest / s.replace("/", "-") for s in STAGES]
    if all(f.is_file() for f in files):
        _complete_pipeline_pods(files)
        return files
    go = build.go_command(paths)
    out = run([go, "mod", "download", "-json", f"sigs.k8s.io/kwok@{config.KWOK_VERSION}"])
    module_dir = Path(json.loads(out.stdout)["Dir"])
    dest.mkdir(parents=True, exist_ok=True)
    for stage, target in zip(STAGES, files, strict=True):
        shutil.copyfile(module_dir / "kustomize" / "stage" / stage, target)
    _complete_pipeline_pods(files)
    return files


def _complete_pipeline_pods(files: list[Path]) -> None:
    """kwok completes only pods owned by a Job; step pods are owned by a Pipeline."""
    complete = next(f for f in files if f.name.endswith("pod-complete.yaml"))
    text = complete.read_text()
    job = "      - 'Job'\n"
    if job in text and "'Pipeline'" not in text:
        complete.write_text(text.replace(job, job + "      - 'Pipeline'\n"))


def ensure_running(paths: Paths) -> None:
    svc = runtime.service(paths, "kwok")
    if svc.running():
        return
    host.check_ports({KWOK_PORT: "kwok"})
    kwok = build.build(build.KWOK, paths) / "kwok"
    runtime.log("starting kwok")
    svc.start(
        [
            str(kwok),
            f"--kubeconfig={paths.etc / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={ANNOTATION}=fake",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{KWOK_PORT}",
            *(f"--config={f}" for f in stage_files(paths)),
        ]
    )


def schedulable(node: dict[str, Any]) -> bool:
    """Ready, and the node lifecycle controller has lifted its ``not-ready`` taint.

    The controller taints a new node ``node.kubernetes.io/not-ready`` and lifts the
    taint a few seconds after kwok reports Ready; until then nothing is scheduled there.
    """
    ready = any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node.get("status", {}).get("conditions", [])
    )
    taints = node.get("spec", {}).get("taints", [])
    return ready and not any(t["key"].startswith("node.kubernetes.io/") for t in taints)


def scale(paths: Paths, count: int) -> None:
    """Run kwok and make exactly ``count`` fake nodes exist (all Ready)."""
    if count < 0:
        raise LocalkubeError("the number of fake nodes cannot be negative")
    if not runtime.is_up(paths):
        raise LocalkubeError("the cluster is not up: run `python -m localkube up` first")
    ensure_running(paths)
    existing = {
        n["metadata"]["name"]
        for n in runtime.kubectl_json(paths, "get", "nodes", "-l", f"{LABEL}={LABEL_VALUE}")[
            "items"
        ]
    }
    wanted = {f"{PREFIX}{i}" for i in range(count)}
    extra = sorted(existing - wanted)
    if extra:
        runtime.kubectl(paths, "delete", "node", *extra)
    missing = sorted(wanted - existing)
    if missing:
        doc = {"apiVersion": "v1", "kind": "List", "items": [node_manifest(n) for n in missing]}
        runtime.kubectl(paths, "create", "-f", "-", input=json.dumps(doc))

    def all_ready() -> bool:
        nodes = runtime.kubectl_json(paths, "get", "nodes", "-l", f"{LABEL}={LABEL_VALUE}")
        return len([n for n in nodes["items"] if schedulable(n)]) == count

    runtime.wait_for(
        f"{count} fake nodes to be Ready and untainted by the node controller",
        all_ready,
        timeout=60,
        svc=runtime.service(paths, "kwok"),
    )
    runtime.log(f"{count} kwok fake node(s) Ready")
