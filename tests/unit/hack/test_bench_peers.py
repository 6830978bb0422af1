"""The peers benchmark's pure parts: the same work for both engines, and how it is measured."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.peers import rawburst, work
from bench.peers.measure import by_pipeline, gaps
from bench.procs import _complete_stage
from bench.watch import PodRecord
from shipway.compiler.pipeline import compile_pipeline


def _run(script: str, cwd: Path) -> int:
    return subprocess.run(["sh", "-c", script.replace("/ws/", f"{cwd}/")], check=False).returncode


def test_each_workspace_step_needs_exactly_the_lines_of_the_steps_before(tmp_path: Path) -> None:
    assert _run(work.append_script(0), tmp_path) == 0
    assert _run(work.append_script(1), tmp_path) == 0
    assert _run(work.append_script(1), tmp_path) != 0  # run twice: the count no longer matches
    assert _run(work.append_script(3), tmp_path) != 0  # a step skipped
    assert (tmp_path / "log").read_text().splitlines() == ["s01", "s02"]


def test_shipway_and_argo_run_the_same_steps() -> None:
    steps = 20
    pipeline = work.shipway_workspace("w", steps)
    compiled = compile_pipeline(pipeline["spec"])
    assert len(compiled.runs) == steps
    workflow = work.argo_workspace("w", steps)
    serial = workflow["spec"]["templates"][0]["steps"]
    assert [len(group) for group in serial] == [1] * steps  # one step at a time
    indexes = [group[0]["arguments"]["parameters"][0]["value"] for group in serial]
    assert indexes == [str(i) for i in range(steps)]
    assert workflow["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "workspace"
    assert len(compile_pipeline(work.shipway_serial("s", 5)["spec"]).runs) == 5
    assert len(work.argo_serial("s", 5)["spec"]["templates"][0]["steps"]) == 5


def test_burst_workflows_land_on_the_fake_nodes_only() -> None:
    toleration = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
    wf = work.argo_burst("p-0001", 5, toleration, {"pool": "abc"})
    assert wf["spec"]["tolerations"] == [toleration]
    assert wf["spec"]["nodeSelector"] == {"pool": "abc"}


def test_gaps_follow_each_pipeline_in_the_order_its_pods_appeared() -> None:
    key = "workflows.argoproj.io/workflow"
    pods = [
        PodRecord("b-2", added_at=12.0, terminated_at=13.0, labels={key: "b"}),
        PodRecord("a-1", added_at=1.0, terminated_at=2.0, labels={key: "a"}),
        PodRecord("a-2", added_at=2.5, terminated_at=4.0, labels={key: "a"}),
        PodRecord("b-1", added_at=10.0, terminated_at=11.0, labels={key: "b"}),
        PodRecord("other", added_at=0.0, terminated_at=1.0, labels={}),
    ]
    groups = by_pipeline(pods, "argo")
    assert [r.name for r in groups["a"]] == ["a-1", "a-2"]
    assert sorted(gaps(groups)) == [0.5, 1.0]
    assert by_pipeline(pods, "shipway") == {}


def test_kwok_completes_pipeline_workflow_and_raw_pods(tmp_path: Path) -> None:
    stage = tmp_path / "pod-complete.yaml"
    stage.write_text(
        "metadata:\n  name: pod-complete\nspec:\n  selector:\n    values:\n"
        "      - 'Job'\n      - 'Pipeline'\n  next: {}\n"
    )
    text = _complete_stage(stage)
    assert "name: shipway-pod-complete" in text
    kinds = [line.strip() for line in text.splitlines() if line.strip().startswith("- '")]
    assert kinds == ["- 'Pipeline'", "- 'Workflow'", f"- '{rawburst.OWNER_KIND}'"]


def test_a_raw_chain_moves_on_only_when_its_pod_terminated_and_never_twice() -> None:
    pods = {
        "raw-0000-0": PodRecord("raw-0000-0", added_at=1.0, terminated_at=2.0),
        "raw-0001-0": PodRecord("raw-0001-0", added_at=1.0),  # still running
        "raw-0002-4": PodRecord("raw-0002-4", added_at=1.0, terminated_at=2.0),  # the last
    }
    current, created = [0, 0, 4], {"raw-0000-0", "raw-0001-0", "raw-0002-4"}
    assert rawburst.next_steps(pods, current, 5, created=created) == [(0, 1)]
    assert current == [1, 0, 4]
    assert "raw-0000-1" in created
    assert rawburst.next_steps(pods, current, 5, created=created) == []  # not again


def test_raw_burst_pods_go_to_the_fake_nodes_owned_by_the_runs_configmap() -> None:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "raw-burst", "uid": "u"}
    toleration = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
    pod = rawburst.raw_pod(7, 3, owner=owner, toleration=toleration, selector={"pool": "abc"})
    assert pod["metadata"]["name"] == "raw-0007-3"
    assert pod["metadata"]["ownerReferences"] == [owner]
    assert pod["spec"]["tolerations"] == [toleration]
    assert pod["spec"]["nodeSelector"] == {"pool": "abc"}
