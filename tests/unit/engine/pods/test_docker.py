"""add_docker: the daemon beside the step, and its refusal where the administrator has not
turned it on (the operator fails the Pipeline, the webhook refuses it, both naming the chart
value); ``shipway validate``, which knows no cluster, accepts it."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any, cast

import kopf
import pytest
import yaml

from shipway.cli import main
from shipway.controller import admission
from shipway.controller.config import ConfigError, pod_options
from shipway.engine.intents import StepToCreate
from shipway.engine.pods import docker
from shipway.engine.pods.manifests import pod_manifest
from shipway.engine.settings import DockerConfig, PodOptions
from tests.unit.builders import REF, compiled
from tests.unit.controller.test_reconciler_hardening import once
from tests.unit.engine.plan.test_push import pipeline, push_pod
from tests.unit.fakekube import FakeKube

FIXTURE = Path(__file__).parents[2] / "fixtures" / "docker" / "add-docker.yaml"
DOC: dict[str, Any] = yaml.safe_load(FIXTURE.read_text())
ON = DockerConfig(enabled=True, image="docker:20.10-dind")


def _webhook_says(doc: dict[str, Any], config: DockerConfig) -> str | None:
    try:
        asyncio.run(
            admission.validate_pipeline(kopf.Body(cast(kopf.RawBody, copy.deepcopy(doc))), config)
        )
    except kopf.AdmissionError as exc:
        return str(exc)
    return None


def test_validate_accepts_add_docker_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURE)]) == 0


def test_off_the_webhook_refuses_it_naming_the_chart_value() -> None:
    said = _webhook_says(DOC, DockerConfig())
    assert said is not None
    assert said.splitlines()[0] == "Pipeline add-docker is refused by this cluster's operator:"
    assert "spec.services.builder.add_docker:" in said
    assert "docker.enabled=true" in said


def test_the_webhook_admits_it_where_allowed_and_names_the_namespaces_elsewhere() -> None:
    assert _webhook_says(DOC, ON) is None
    assert _webhook_says(DOC, DockerConfig(enabled=True, namespaces=("ci",))) is None
    said = _webhook_says(DOC, DockerConfig(enabled=True, namespaces=("builds", "tools")))
    assert said is not None
    assert "not allowed in namespace ci" in said
    assert "docker.namespaces" in said
    assert "builds, tools" in said


def test_a_pipeline_without_add_docker_is_never_refused_for_it() -> None:
    doc = copy.deepcopy(DOC)
    doc["spec"]["services"]["builder"]["add_docker"] = False
    assert _webhook_says(doc, DockerConfig()) is None


def test_off_the_operator_fails_the_pipeline_naming_the_chart_value() -> None:
    kube = FakeKube()
    once(kube, DOC["spec"], options=PodOptions())
    assert kube.pods == {}
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "DockerNotAllowed"
    assert "docker.enabled=true" in kube.status["message"]


def test_on_the_operator_starts_the_step_with_its_daemon() -> None:
    kube = FakeKube()
    once(kube, DOC["spec"], options=PodOptions(docker=ON))
    assert kube.status["phase"] == "Running"
    (pod,) = kube.pods.values()
    assert [c["name"] for c in pod["spec"]["initContainers"]] == [docker.CONTAINER]


def _step_pod(raw: dict[str, Any], config: DockerConfig = ON) -> dict[str, Any]:
    create = StepToCreate(name="demo-4a49a-1-step", step_id="1", attempt=0)
    return pod_manifest(REF, compiled(raw), create, options=PodOptions(docker=config))


def test_the_daemon_is_a_privileged_native_sidecar_sharing_var_run_with_the_step() -> None:
    spec = _step_pod(DOC["spec"])["spec"]
    (daemon,) = spec["initContainers"]
    assert daemon["restartPolicy"] == "Always"
    assert daemon["securityContext"] == {"privileged": True}
    assert daemon["image"] == "docker:20.10-dind"
    assert daemon["args"][:2] == ["dockerd", "--host=unix:///var/run/docker.sock"]
    assert daemon["startupProbe"]["exec"]["command"] == ["docker", "version"]
    (step,) = spec["containers"]
    assert {"name": "DOCKER_HOST", "value": "unix:///var/run/docker.sock"} in step["env"]
    assert {"name": docker.RUN_VOLUME, "mountPath": "/var/run"} in step["volumeMounts"]
    assert {"name": docker.RUN_VOLUME, "mountPath": "/var/run"} in daemon["volumeMounts"]
    assert "privileged" not in str(step), "only the daemon is privileged"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[docker.RUN_VOLUME] == {"name": docker.RUN_VOLUME, "emptyDir": {}}
    assert volumes[docker.DATA_VOLUME] == {"name": docker.DATA_VOLUME, "emptyDir": {}}
    assert "workspace" in volumes, "the checkout is still mounted"


def test_the_daemon_pulls_through_the_mirror_trusting_its_ca() -> None:
    config = DockerConfig(enabled=True, mirror="registry.local:5000", ca_config_map="root-ca")
    spec = _step_pod(DOC["spec"], config)["spec"]
    (daemon,) = spec["initContainers"]
    assert "--registry-mirror=https://registry.local:5000" in daemon["args"]
    assert {
        "name": docker.CA_VOLUME,
        "mountPath": "/etc/docker/certs.d/registry.local:5000",
        "readOnly": True,
    } in daemon["volumeMounts"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[docker.CA_VOLUME]["configMap"]["name"] == "root-ca"


def test_a_linked_service_with_add_docker_shares_the_daemon_started_before_it() -> None:
    raw = {
        "services": {
            "app": {"image": "busybox:1.36", "links": ["ci"]},
            "ci": {"image": "docker:20.10", "add_docker": True},
        },
        "steps": [{"service": "app", "command": "true"}],
    }
    spec = _step_pod(raw)["spec"]
    daemon, linked = spec["initContainers"]
    assert (daemon["name"], linked["name"]) == (docker.CONTAINER, "ci")
    assert {"name": "DOCKER_HOST", "value": docker.DOCKER_HOST} in linked["env"]
    assert not any(e["name"] == "DOCKER_HOST" for e in spec["containers"][0]["env"])


def test_a_service_without_add_docker_gets_no_daemon() -> None:
    raw = copy.deepcopy(DOC["spec"])
    del raw["services"]["builder"]["add_docker"]
    spec = _step_pod(raw)["spec"]
    assert "initContainers" not in spec
    assert "docker" not in str(spec["volumes"])


def test_a_generator_with_add_docker_gets_the_daemon_before_it_runs() -> None:
    """dockercfg_service: only the generator asks for Docker (e.g. a registry login)."""
    raw = pipeline(dockercfgSecret=None, dockercfg_service="gen")
    del raw["steps"][1]["dockercfgSecret"]
    raw["services"]["gen"] = {"image": "docker:20.10", "add_docker": True}
    spec = push_pod(raw, PodOptions(docker=ON))["spec"]
    daemon, generator = spec["initContainers"]
    assert daemon["name"] == docker.CONTAINER
    assert daemon["restartPolicy"] == "Always"
    assert generator["name"] == "dockercfg"
    assert {"name": "DOCKER_HOST", "value": docker.DOCKER_HOST} in generator["env"]
    push = spec["containers"][0]
    assert not any(e["name"] == "DOCKER_HOST" for e in push["env"])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, DockerConfig()),
        (
            {"SHIPWAY_DOCKER": "on", "SHIPWAY_DOCKER_NAMESPACES": " ci, tools ,"},
            DockerConfig(enabled=True, namespaces=("ci", "tools")),
        ),
        (
            {
                "SHIPWAY_DOCKER": "true",
                "SHIPWAY_DOCKER_IMAGE": "mirror/docker:dind",
                "SHIPWAY_DOCKER_MIRROR": "registry.local",
                "SHIPWAY_DOCKER_CA_CONFIGMAP": "ca",
            },
            DockerConfig(
                enabled=True,
                image="mirror/docker:dind",
                mirror="registry.local",
                ca_config_map="ca",
            ),
        ),
    ],
)
def test_the_operators_environment(env: dict[str, str], expected: DockerConfig) -> None:
    assert pod_options(env).docker == expected


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SHIPWAY_DOCKER": "maybe"}, "SHIPWAY_DOCKER"),
        ({"SHIPWAY_DOCKER_MIRROR": "https://registry.local"}, "SHIPWAY_DOCKER_MIRROR"),
    ],
)
def test_a_bad_setting_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        pod_options(env)
