"""The Pods and the claim Shipway creates: one claim, subPaths, sidecars, never a hostPath."""

from __future__ import annotations

import json
from typing import Any

from shipway.engine.intents import StepToCreate
from shipway.engine.pods.manifests import all_manifests, claim_manifest, pod_manifest
from tests.unit.builders import REF, WALKTHROUGH, compiled, spec

LINKED: dict[str, Any] = {
    "services": {
        "app": {
            "image": "busybox:1.36",
            "links": ["redis:cache"],
            "volumes": ["./:/code"],
            "environment": {"REDIS_URL": "redis://redis:6379", "DEBUG": True},
            "working_dir": "/code",
            "envFrom": [{"secretRef": {"name": "creds"}}],
            "resources": {"limits": {"memory": "256Mi", "cpu": 1}},
        },
        "redis": {
            "image": "redis:7.0",
            "volumes": ["./redis-data:/data"],
            "healthcheck": {
                "test": ["CMD", "redis-cli", "ping"],
                "interval": "1s",
                "retries": 5,
                "start_period": "3s",
            },
            "command": "redis-server --appendonly yes",
        },
    },
    "steps": [{"service": "app", "command": "sh -c 'redis-cli -h redis ping'"}],
    "ci": {"branch": "main", "commitId": "abc123"},
    "serviceAccountName": "builder",
}


def _pods(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in all_manifests(REF, compiled(raw)) if m["kind"] == "Pod"]


def test_walkthrough_pods_share_one_claim_at_app_with_sub_path_tmp() -> None:
    manifests = all_manifests(REF, compiled(WALKTHROUGH))
    claim, write, check = manifests
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["name"] == "demo-4a49a-workspace"
    for pod in (write, check):
        assert pod["spec"]["volumes"] == [
            {"name": "workspace", "persistentVolumeClaim": {"claimName": "demo-4a49a-workspace"}}
        ]
        assert pod["spec"]["containers"][0]["volumeMounts"] == [
            {"name": "workspace", "mountPath": "/app", "subPath": "tmp"}
        ]
        assert pod["spec"]["restartPolicy"] == "Never"
        assert pod["metadata"]["ownerReferences"][0]["uid"] == REF.uid
    assert write["spec"]["containers"][0]["args"] == ["sh", "-c", "echo built > /app/artifact.txt"]
    assert "command" not in write["spec"]["containers"][0], "the image's entrypoint is kept"
    assert check["spec"]["containers"][0]["name"] == "volumes-test"
    assert check["metadata"]["labels"] == {
        "shipway.dev/pipeline": "demo",
        "shipway.dev/step": "2",
        "shipway.dev/attempt": "0",
        "app.kubernetes.io/managed-by": "shipway",
    }


def test_no_manifest_ever_has_a_host_path() -> None:
    for raw in (WALKTHROUGH, LINKED):
        assert "hostPath" not in json.dumps(all_manifests(REF, compiled(raw)))


def test_linked_services_run_as_native_sidecars_with_host_aliases_and_a_health_gate() -> None:
    (pod,) = _pods(LINKED)
    spec_ = pod["spec"]
    (sidecar,) = spec_["initContainers"]
    assert sidecar["name"] == "redis"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["args"] == ["redis-server", "--appendonly", "yes"]
    assert sidecar["volumeMounts"] == [
        {"name": "workspace", "mountPath": "/data", "subPath": "redis-data"}
    ]
    assert sidecar["startupProbe"] == {
        "exec": {"command": ["redis-cli", "ping"]},
        "periodSeconds": 1,
        "timeoutSeconds": 5,
        "failureThreshold": 8,
    }
    assert spec_["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["redis", "cache"]}]
    main = spec_["containers"][0]
    assert main["volumeMounts"] == [{"name": "workspace", "mountPath": "/code"}]
    assert main["workingDir"] == "/code"
    assert main["envFrom"] == [{"secretRef": {"name": "creds"}}]
    assert main["resources"] == {"limits": {"memory": "256Mi", "cpu": "1"}}
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["REDIS_URL"] == "redis://redis:6379"
    assert env["DEBUG"] == "true"
    assert env["CI"] == "true"
    assert env["CI_NAME"] == "shipway"
    assert env["CI_BRANCH"] == "main"
    assert env["CI_COMMIT_ID"] == "abc123"
    assert env["CI_BUILD_ID"] == REF.uid
    assert spec_["serviceAccountName"] == "builder"
    assert spec_["automountServiceAccountToken"] is False


def test_links_are_transitive_and_dependencies_start_first() -> None:
    raw = spec([{"service": "a", "command": "x"}])
    raw["services"]["a"]["depends_on"] = ["b"]
    raw["services"]["b"]["links"] = ["c"]
    (pod,) = _pods(raw)
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["c", "b"]


def test_shell_form_and_none_healthchecks() -> None:
    raw = spec([{"service": "a", "command": "x"}])
    raw["services"]["a"]["links"] = ["b", "c"]
    raw["services"]["b"]["healthcheck"] = {"test": "pg_isready"}
    raw["services"]["c"]["healthcheck"] = {"test": ["NONE"]}
    (pod,) = _pods(raw)
    b, c = pod["spec"]["initContainers"]
    assert b["startupProbe"]["exec"]["command"] == ["/bin/sh", "-c", "pg_isready"]
    assert "startupProbe" not in c


def test_read_write_once_pods_stay_together_and_read_write_many_do_not() -> None:
    plan = compiled(WALKTHROUGH)
    create = StepToCreate("2", 0, "demo-4a49a-2-check-artifact")
    before = pod_manifest(REF, plan, create)["spec"]["affinity"]
    assert before["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "labelSelector"
    ] == {"matchLabels": {"shipway.dev/pipeline": "demo"}}
    after = pod_manifest(REF, plan, create, node="node-3")["spec"]["affinity"]
    term = after["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]
    assert term == {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-3"]}]
    }
    shared = compiled({**WALKTHROUGH, "workspace": {"accessModes": ["ReadWriteMany"]}})
    assert "affinity" not in pod_manifest(REF, shared, create, node="node-3")["spec"]


def test_the_claim_follows_the_workspace_and_keep_drops_the_owner() -> None:
    raw = {**WALKTHROUGH, "workspace": {"size": "5Gi", "storageClassName": "fast", "keep": True}}
    claim = claim_manifest(REF, compiled(raw))
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast",
    }
    assert "ownerReferences" not in claim["metadata"]


def test_step_timeouts_become_active_deadlines() -> None:
    (pod,) = _pods(spec([{"service": "a", "command": "x", "timeout": "1m30s"}]))
    assert pod["spec"]["activeDeadlineSeconds"] == 90


def test_a_pipeline_that_mounts_nothing_gets_no_claim_and_no_affinity() -> None:
    raw = {
        "services": {"noop": {"image": "busybox:1.36"}},
        "steps": [{"service": "noop", "command": "true"}, {"service": "noop", "command": "true"}],
    }
    manifests = all_manifests(REF, compiled(raw))
    assert [m["kind"] for m in manifests] == ["Pod", "Pod"]
    for pod in manifests:
        assert "volumes" not in pod["spec"]
        assert "affinity" not in pod["spec"]
        assert "volumeMounts" not in pod["spec"]["containers"][0]
