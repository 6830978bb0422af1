"""Every example in examples/ runs on the real cluster, with real pods and a real PVC."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .pipelines import EXAMPLES, Kubectl, example, steps_by_name

pytestmark = pytest.mark.e2e

EXAMPLE_FILES = [
    "walkthrough-volumes.yaml",
    "generated-assets.yaml",
    "database-volume.yaml",
    "passing-credentials.yaml",
    "failure-and-on-fail.yaml",
    "branch-filters.yaml",
]


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def test_every_example_is_covered_here() -> None:
    on_disk = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert sorted(EXAMPLE_FILES) == on_disk
    # seed-walkthrough (built images, linked redis and postgres) runs in test_build.py from an
    # upload and from the git server, and in test_push.py to its push
    directories = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
    assert directories == ["codeship-walkthrough", "seed-walkthrough"]


def test_the_codeship_walkthrough_runs_with_shipway_run(k: Kubectl) -> None:
    """codeship-services.yml + codeship-steps.yml, converted on the fly, like `jet steps`."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "shipway",
            "run",
            "--dir",
            str(EXAMPLES / "codeship-walkthrough"),
            "-n",
            k.namespace,
        ],
        capture_output=True,
        text=True,
        env={**k.env, "PYTHONPATH": str(EXAMPLES.parent / "operator")},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(step: write artifact) success" in result.stdout
    assert "(step: check artifact) success" in result.stdout


def test_walkthrough_artifact_crosses_pods_through_the_claim(k: Kubectl) -> None:
    k.apply_docs(example("walkthrough-volumes.yaml"))
    k("wait", "--for=condition=Succeeded", "pipeline/volumes-demo", "--timeout=180s")
    body = k.pipeline("volumes-demo")
    status = body["status"]
    assert status["phase"] == "Succeeded"
    assert status["progress"] == "2/2"
    steps = steps_by_name(body)
    write, check = steps["write artifact"], steps["check artifact"]
    assert write["exitCode"] == 0
    assert check["exitCode"] == 0
    assert write["pod"] != check["pod"]
    pods = {p["metadata"]["name"]: p for p in k.json("get", "pods")["items"]}
    for step in (write, check):
        pod = pods[step["pod"]]
        assert pod["metadata"]["ownerReferences"][0]["name"] == "volumes-demo"
        mount = pod["spec"]["containers"][0]["volumeMounts"][0]
        assert (mount["mountPath"], mount["subPath"]) == ("/app", "tmp")
        claim_name = pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        assert re.fullmatch(r"volumes-demo-[0-9a-f]{5}-workspace", claim_name), claim_name
    claim = k.json("get", "pvc", claim_name)
    assert claim["status"]["phase"] == "Bound"
    table = k("get", "pipelines")
    assert table.split("\n")[0].split()[:4] == ["NAME", "PHASE", "PROGRESS", "STEP"]
    assert "Succeeded" in table
    assert "2/2" in table
    reasons = [e["reason"] for e in k.events("volumes-demo")]
    assert sorted(reasons) == ["PipelineSucceeded", "StepSucceeded"], "one Event per step"
    assert "services" in k("explain", "pipeline.spec")


def test_generated_assets_flow_through_a_parallel_group(k: Kubectl) -> None:
    k.apply_docs(example("generated-assets.yaml"))
    body = k.wait_for("generated-assets")
    assert body["status"]["phase"] == "Succeeded", body["status"]
    steps = steps_by_name(body)
    assert {steps["check css"]["group"], steps["check js"]["group"]} == {"checks"}
    assert all(s["phase"] == "Succeeded" for s in steps.values())


def test_a_linked_database_keeps_its_data_between_steps(k: Kubectl) -> None:
    k.apply_docs(example("database-volume.yaml"))
    body = k.wait_for("database-volume", timeout=240)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    seed, read = steps_by_name(body)["seed database"], steps_by_name(body)["read database"]
    pods = {p["metadata"]["name"]: p for p in k.json("get", "pods")["items"]}
    for step in (seed, read):
        sidecar = pods[step["pod"]]["spec"]["initContainers"][0]
        assert sidecar["name"] == "redis"
        assert sidecar["restartPolicy"] == "Always"
        assert sidecar["startupProbe"]["exec"]["command"] == ["redis-cli", "ping"]


def test_credentials_pass_through_the_workspace_and_never_leak(
    k: Kubectl, shipway_operator: object
) -> None:
    docs = example("passing-credentials.yaml")
    secret_value = docs[0]["stringData"]["API_KEY"]
    k.apply_docs(docs)
    body = k.wait_for("passing-credentials")
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert secret_value not in k("get", "pipeline", "passing-credentials", "-o", "yaml")
    assert secret_value not in k("get", "events", "-o", "yaml")
    log = getattr(shipway_operator, "log_path", None)
    if isinstance(log, Path) and log.exists():
        assert secret_value not in log.read_text()


def test_a_failing_step_fails_the_pipeline_skips_the_rest_and_runs_on_fail(k: Kubectl) -> None:
    k.apply_docs(example("failure-and-on-fail.yaml"))
    body = k.wait_for("failure-and-on-fail")
    steps = steps_by_name(body)
    assert body["status"]["phase"] == "Failed"
    assert steps["lint"]["phase"] == "Failed"
    assert steps["lint"]["exitCode"] == 3
    assert steps["slow tests"]["phase"] == "Succeeded", "a running parallel sibling finishes"
    assert steps["lint report"]["phase"] == "Succeeded", "on_fail runs"
    assert steps["deploy"]["phase"] == "Skipped"
    assert "deploy" not in " ".join(k("get", "pods", "-o", "name").split())
    condition = body["status"]["conditions"][0]
    assert (condition["type"], condition["status"]) == ("Succeeded", "False")
    assert "StepFailed" in [e["reason"] for e in k.events("failure-and-on-fail")]


@pytest.mark.parametrize(
    ("ci", "expected"),
    [
        (
            {"branch": "main"},
            {
                "test": "Succeeded",
                "deploy staging": "Succeeded",
                "release": "Skipped",
                "not on main": "Skipped",
            },
        ),
        (
            {"branch": "main", "tag": "v1.2.0"},
            {
                "test": "Succeeded",
                "deploy staging": "Skipped",
                "release": "Succeeded",
                "not on main": "Succeeded",
            },
        ),
    ],
)
def test_tag_and_exclude_pick_the_steps_for_the_build(
    k: Kubectl, ci: dict[str, str], expected: dict[str, str]
) -> None:
    (doc,) = example("branch-filters.yaml")
    doc = copy.deepcopy(doc)
    doc["spec"]["ci"].update(ci)
    k.apply_docs([doc])
    body = k.wait_for("branch-filters")
    assert body["status"]["phase"] == "Succeeded"
    assert {n: s["phase"] for n, s in steps_by_name(body).items()} == expected


def test_deleting_a_pipeline_removes_its_pods_and_claim(k: Kubectl) -> None:
    k.apply_docs(example("walkthrough-volumes.yaml"))
    k.wait_for("volumes-demo")
    assert k("get", "pods", "-l", "shipway.dev/pipeline=volumes-demo", "-o", "name").strip()
    k("delete", "pipeline", "volumes-demo", "--wait=true")
    deadline = time.monotonic() + 90
    while (left := k("get", "pods,pvc", "-o", "name").strip()) and time.monotonic() < deadline:
        time.sleep(1)
    assert left == "", f"left behind after deleting the Pipeline: {left}"
