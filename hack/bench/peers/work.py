"""The same work expressed natively in each engine: Shipway Pipelines and Argo Workflows.

(1) ``serial``: N no-op busybox steps one after the other; (2) ``workspace``: the same steps
sharing a workspace claim, each appending a line to a file the next one checks (Codeship's
volumes pattern; Argo's ``volumeClaimTemplates``); (3) ``burst``: many 5-step pipelines on the
fake nodes, submitted at once.
"""

from __future__ import annotations

from typing import Any

from bench.overhead import pipeline_body
from bench.peers.argo import SERVICE_ACCOUNT
from localkube.config import BUSYBOX_IMAGE
from shipway import GROUP, KIND, VERSION

Manifest = dict[str, Any]
WORKFLOW_NAME_LABEL = "workflows.argoproj.io/workflow"


def append_script(index: int) -> str:
    """Step ``index`` (from 0) finds exactly ``index`` lines, then adds its own."""
    return (
        f"touch /ws/log && test $(wc -l < /ws/log) -eq {index} && echo s{index + 1:02d} >> /ws/log"
    )


def shipway_serial(name: str, steps: int) -> Manifest:
    return pipeline_body(name, steps)


def shipway_workspace(name: str, steps: int) -> Manifest:
    body = pipeline_body(name, steps, {"size": "1Gi"})
    for i, step in enumerate(body["spec"]["steps"]):
        step["command"] = ["sh", "-c", append_script(i)]
    return body


def shipway_burst(name: str, steps: int) -> Manifest:
    return pipeline_body(name, steps)


def _workflow(name: str, steps: list[Manifest], templates: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": SERVICE_ACCOUNT,
            "templates": [{"name": "main", "steps": [[s] for s in steps]}, *templates],
        },
    }


def _noop() -> Manifest:
    return {"name": "noop", "container": {"image": BUSYBOX_IMAGE, "command": ["true"]}}


def argo_serial(name: str, steps: int) -> Manifest:
    return _workflow(
        name,
        [{"name": f"s{i:02d}", "template": "noop"} for i in range(1, steps + 1)],
        [_noop()],
    )


def argo_workspace(name: str, steps: int) -> Manifest:
    step = {
        "name": "append",
        "inputs": {"parameters": [{"name": "index"}]},
        "container": {
            "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c"],
            "args": [
                "touch /ws/log && test $(wc -l < /ws/log) -eq {{inputs.parameters.index}}"
                " && echo step >> /ws/log"
            ],
            "volumeMounts": [{"name": "workspace", "mountPath": "/ws"}],
        },
    }
    wf = _workflow(
        name,
        [
            {
                "name": f"s{i + 1:02d}",
                "template": "append",
                "arguments": {"parameters": [{"name": "index", "value": str(i)}]},
            }
            for i in range(steps)
        ],
        [step],
    )
    wf["spec"]["volumeClaimTemplates"] = [
        {
            "metadata": {"name": "workspace"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    ]
    return wf


def argo_burst(name: str, steps: int, toleration: Manifest, selector: dict[str, str]) -> Manifest:
    wf = argo_serial(name, steps)
    wf["spec"]["tolerations"] = [toleration]
    wf["spec"]["nodeSelector"] = selector
    return wf


def shipway_ref() -> tuple[str, str, str]:
    return GROUP, VERSION, KIND
