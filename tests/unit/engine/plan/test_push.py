"""Push steps: validation, the plan (gate, tag, PushDisabled), the pod, and its report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import compile_pipeline
from shipway.engine.intents import PushToCreate
from shipway.engine.observe import PodView, pod_view
from shipway.engine.plan.planner import Plan, PlanInput, plan
from shipway.engine.pods.manifests import pod_manifest
from shipway.engine.pods.push import SCRIPT
from shipway.engine.settings import PodOptions, PushConfig, Settings
from shipway.engine.termination import parse_push_result
from shipway.models import PipelinePhase, PipelineStatus, StepPhase
from tests.unit.builders import NOW, REF, at, compiled
from tests.unit.engine.plan.test_planner_builds import (
    CHECKED_OUT,
    CONFIG,
    DIGEST,
    GIT,
    OWNER,
    build_pod,
    ok,
)

COMMIT = "0" * 40
"""What CHECKED_OUT says the checkout found: {{ .CommitID }} when spec.ci sets none."""


def pipeline(**push: Any) -> dict[str, Any]:
    step = {
        "name": "push",
        "type": "push",
        "service": "app",
        "image_name": "registry.example:5000/team/app",
        "image_tag": "{{ .Branch }}-{{ .ShortCommitID }}",
        "dockercfgSecret": "push-creds",
        **push,
    }
    return {
        "services": {"app": {"build": "."}, "tool": {"image": "busybox"}},
        "steps": [{"name": "test", "service": "app", "command": "true"}, step],
        "source": GIT,
        "ci": {"branch": "main"},
    }


def errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidSpecError) as caught:
        compile_pipeline(raw)
    return [str(e) for e in caught.value.errors]


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"service": "tool"},
            "spec.steps[1].service: a push step pushes the image built for its service, and "
            "'tool' has no build",
        ),
        ({"image_tag": "{{ .Branchh }}"}, "spec.steps[1].image_tag: unknown variable .Branchh"),
        ({"image_name": "team/app:1.0"}, "spec.steps[1].image_name: 'team/app:1.0': a repository"),
        ({"image_name": "Team/App"}, "spec.steps[1].image_name: 'Team/App' is not a repository"),
        ({"command": "true"}, "spec.steps[1].command: a push step has no command"),
        ({"dockercfg_service": "nope"}, "spec.steps[1].dockercfg_service: set dockercfgSecret or"),
        ({"image_tag": "///"}, "spec.steps[1].image_tag: '///' holds no character of a tag"),
        ({"registry": "https://bad host/"}, "spec.steps[1].registry: 'https://bad host/' is not"),
    ],
)
def test_bad_push_steps_are_refused_naming_the_field(change: dict[str, Any], expected: str) -> None:
    assert any(e.startswith(expected) for e in errors(pipeline(**change))), errors(
        pipeline(**change)
    )


def test_push_keys_on_a_run_step_and_generators_on_run_steps_are_refused() -> None:
    raw = pipeline()
    raw["steps"][0].update(image_tag="x", dockercfg_service="tool")
    found = errors(raw)
    assert "spec.steps[0].image_tag: image_tag is set on push steps (type: push)" in found
    assert any(
        e.startswith("spec.steps[0].dockercfg_service: a run step's pod pulls") for e in found
    )


def test_an_unknown_generator_is_named_where_it_is_declared() -> None:
    raw = pipeline(dockercfgSecret=None)
    raw["steps"] = [{"type": "serial", "dockercfg_service": "gen", "steps": raw["steps"]}]
    assert "spec.steps[0].dockercfg_service: unknown service 'gen'" in errors(raw)


@pytest.mark.parametrize(
    ("image_name", "registry", "repository"),
    [
        ("registry.example:5000/team/app", None, "registry.example:5000/team/app"),
        ("team/app", "quay.io", "quay.io/team/app"),
        ("team/app", "https://quay.io/v1/", "quay.io/team/app"),
        ("team/app", "https://index.docker.io/v1/", "team/app"),
        ("team/app", None, "team/app"),
        ("quay.io/team/app", "quay.io", "quay.io/team/app"),
        ("registry.example:5000/myapp", "localhost:5000", "registry.example:5000/myapp"),
    ],
)
def test_the_registry_prefixes_names_that_carry_none(
    image_name: str, registry: str | None, repository: str
) -> None:
    raw = pipeline(image_name=image_name, registry=registry)
    if registry is None:
        del raw["steps"][1]["registry"]
    push = compile_pipeline(raw).runs[1].push
    assert push is not None
    assert push.repository == repository


@pytest.mark.parametrize(
    ("image_name", "registry", "field", "shown"),
    [
        ("localhost:5000/myapp", "localhost:5000", "image_name", "localhost:5000/myapp"),
        ("myapp", "localhost:5000", "registry", "localhost:5000"),
        ("127.0.0.1:5000/team/app", None, "image_name", "127.0.0.1:5000/team/app"),
        ("team/app", "http://127.0.1.1:5000/v2/", "registry", "http://127.0.1.1:5000/v2/"),
    ],
)
def test_a_push_to_the_pods_own_loopback_is_refused(
    image_name: str, registry: str | None, field: str, shown: str
) -> None:
    """Nothing listens on localhost in a push pod: refused where it is typed, not by crane."""
    raw = pipeline(image_name=image_name, registry=registry)
    if registry is None:
        del raw["steps"][1]["registry"]
    assert errors(raw) == [
        f"spec.steps[1].{field}: {shown!r}: a push runs in a pod of its own, where localhost is "
        "the pod itself and no registry listens (Codeship's jet pushed from your machine): push "
        "to a registry the cluster reaches, by its DNS name or a Service's"
    ]


def test_credentials_come_from_the_nearest_level() -> None:
    raw = pipeline(dockercfgSecret=None)
    del raw["steps"][1]["dockercfgSecret"]
    raw["dockercfgSecret"] = "pipeline-creds"
    raw["steps"] = [
        {"name": "t0", "service": "tool", "command": "true"},
        {
            "type": "serial",
            "dockercfgSecret": "group-creds",
            "steps": [
                {"name": "t1", "service": "tool", "command": "true"},
                raw["steps"][1],
                {**raw["steps"][1], "name": "own", "dockercfg_service": "tool"},
            ],
        },
    ]
    runs = {r.name: r for r in compile_pipeline(raw).runs}
    assert runs["t0"].pull_secret == "pipeline-creds"
    assert runs["t1"].pull_secret == "group-creds"
    push, own = runs["push"].push, runs["own"].push
    assert push is not None
    assert own is not None
    assert (push.credentials.secret, push.credentials.generator) == ("group-creds", None)
    assert (own.credentials.secret, own.credentials.generator) == (None, "tool")
    assert runs["push"].pull_secret is None


# -- the plan -----------------------------------------------------------------------------


def run(
    raw: dict[str, Any], status: PipelineStatus | None = None, pods: list[PodView] | None = None
) -> Plan:
    return plan(
        PlanInput(
            REF, compiled(raw), status or CHECKED_OUT, pods or [], NOW, Settings(build=CONFIG)
        )
    )


def step_pod(name: str, step_id: str, *, rc: int | None = None, message: str = "") -> PodView:
    if rc is None:
        state: dict[str, Any] = {"running": {"startedAt": at(-20)}}
    else:
        state = {
            "terminated": {
                "exitCode": rc,
                "reason": "Completed" if rc == 0 else "Error",
                "message": message,
                "startedAt": at(-20),
                "finishedAt": at(-10),
            }
        }
    view = pod_view(
        {
            "metadata": {
                "name": name,
                "uid": f"uid-{name}",
                "creationTimestamp": at(-25),
                "labels": {"shipway.dev/step": step_id, "shipway.dev/attempt": "0"},
                "annotations": {"kubectl.kubernetes.io/default-container": "push"},
                "ownerReferences": [OWNER],
            },
            "spec": {"nodeName": "node-1"},
            "status": {
                "phase": "Running" if rc is None else ("Succeeded" if rc == 0 else "Failed"),
                "startTime": at(-25),
                "containerStatuses": [{"name": "push", "state": state}],
            },
        }
    )
    assert view is not None
    return view


def through_the_test(raw: dict[str, Any]) -> tuple[Plan, list[PodView]]:
    """Build the image, run the test step: the plan that starts the push, and the pods."""
    first = run(raw)
    (build,) = first.builds
    built = build_pod(build.name, "app", rc=0, message=ok())
    second = run(raw, first.status, [built])
    (test,) = second.create
    pods = [built, step_pod(test.name, "1", rc=0, message="")]
    return run(raw, second.status, pods), pods


def test_the_push_copies_the_tested_digest_to_the_rendered_tag() -> None:
    third, _ = through_the_test(pipeline())
    (create,) = third.create
    assert create.step_id == "2"
    assert isinstance(create, PushToCreate)  # the push step's own intent
    assert create.push.source.endswith(f"/app@{DIGEST}")
    assert create.push.digest == DIGEST
    assert create.push.target == "registry.example:5000/team/app:main-0000000"
    raw = pipeline()
    raw["ci"]["commitId"] = "0123456789abcdef"  # spec.ci wins over the checkout, as for CI_*
    again, _ = through_the_test(raw)
    (again_create,) = again.create
    assert isinstance(again_create, PushToCreate)
    assert again_create.push.target.endswith(":main-0123456")


def test_push_disabled_skips_the_push_and_its_lonely_build() -> None:
    raw = pipeline()
    raw["push"] = False
    third, _ = through_the_test(raw)
    assert third.create == ()
    push = next(s for s in third.status.steps if s.name == "push")
    assert (push.phase, push.reason) == (StepPhase.SKIPPED, "PushDisabled")
    assert third.status.phase == PipelinePhase.SUCCEEDED
    only_push = pipeline()
    only_push.update(push=False, steps=[only_push["steps"][1]])
    first = run(only_push)
    assert first.builds == ()  # nothing else needs the image: it is not built
    assert first.status.phase == PipelinePhase.SUCCEEDED


def test_a_tag_with_no_value_in_this_build_fails_the_step_without_a_pod() -> None:
    raw = pipeline(image_tag="{{ .ProjectID }}-{{ .ShortCommitID }}")
    third, _ = through_the_test(raw)
    assert third.create == ()
    push = next(s for s in third.status.steps if s.name == "push")
    assert (push.phase, push.reason, push.pod) == (StepPhase.FAILED, "InvalidImageTag", None)
    assert push.message is not None
    assert ".ProjectID is empty in this build" in push.message
    assert third.status.phase == PipelinePhase.FAILED


def test_the_pushed_digest_lands_in_the_status_and_the_event() -> None:
    third, pods = through_the_test(pipeline())
    (create,) = third.create
    target = "registry.example:5000/team/app:main-0000000"
    done = step_pod(create.name, "2", rc=0, message=f'{{"image":"{target}","digest":"{DIGEST}"}}')
    fourth = run(pipeline(), third.status, [*pods, done])
    push = next(s for s in fourth.status.steps if s.name == "push")
    assert (push.phase, push.image, push.digest) == (StepPhase.SUCCEEDED, target, DIGEST)
    assert fourth.status.phase == PipelinePhase.SUCCEEDED
    assert f"pushed {target}@{DIGEST}" in fourth.events[-1].message
    # The record keeps it: the pod may go.
    fifth = run(pipeline(), fourth.status, pods)
    assert next(s for s in fifth.status.steps if s.name == "push").digest == DIGEST


def test_a_refused_push_fails_with_the_registrys_answer() -> None:
    third, pods = through_the_test(pipeline())
    (create,) = third.create
    answer = (
        "pushing registry.example:5000/team/app:main-0000000 failed: PUT https://"
        "registry.example:5000/v2/team/app/manifests/main-0000000: UNAUTHORIZED: "
        "authentication required"
    )
    failed = step_pod(create.name, "2", rc=1, message=answer)
    fourth = run(pipeline(), third.status, [*pods, failed])
    push = next(s for s in fourth.status.steps if s.name == "push")
    assert (push.phase, push.reason, push.message) == (StepPhase.FAILED, "PushFailed", answer)
    assert push.digest is None
    assert "UNAUTHORIZED" in fourth.events[-1].message


def test_a_report_without_digest_is_a_failure() -> None:
    assert parse_push_result("").problem == "the push pod reported no digest: ''"
    good = parse_push_result(f'{{"image":"r/a:t","digest":"{DIGEST}"}}')
    assert (good.image, good.digest, good.problem) == ("r/a:t", DIGEST, None)


# -- the pod ------------------------------------------------------------------------------


def push_pod(raw: dict[str, Any], options: PodOptions | None = None) -> dict[str, Any]:
    third, _ = through_the_test(raw)
    (create,) = third.create
    return pod_manifest(REF, compiled(raw), create, node="node-1", options=options)


def test_the_push_pod_copies_with_crane_and_mounts_the_secret_as_docker_config() -> None:
    config = PushConfig(image="crane:debug", ca_config_map="kube-root-ca.crt")
    manifest = push_pod(pipeline(), PodOptions(push=config))
    spec = manifest["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "crane:debug"
    assert container["command"][:3] == ["sh", "-c", SCRIPT]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SHIPWAY_SOURCE"].endswith(f"/app@{DIGEST}")
    assert env["SHIPWAY_TARGET"] == "registry.example:5000/team/app:main-0000000"
    assert env["DOCKER_CONFIG"] == "/run/secrets/shipway-registry"
    assert env["SSL_CERT_DIR"].startswith("/etc/shipway/registry-ca:")
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["registry"]["secret"]["secretName"] == "push-creds"
    assert volumes["registry"]["secret"]["items"] == [
        {"key": ".dockerconfigjson", "path": "config.json"}
    ]
    assert volumes["registry-ca"]["configMap"]["name"] == "kube-root-ca.crt"
    assert spec["automountServiceAccountToken"] is False
    assert container["securityContext"]["runAsNonRoot"] is True
    assert "persistentVolumeClaim" not in str(spec)  # a push needs no workspace
    assert manifest["metadata"]["labels"]["shipway.dev/step"] == "2"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == REF.uid


def test_a_generator_service_runs_first_and_writes_into_memory() -> None:
    raw = pipeline(dockercfgSecret=None, dockercfg_service="gen")
    del raw["steps"][1]["dockercfgSecret"]
    raw["services"]["gen"] = {
        "image": "codeship/ecr-dockercfg-generator",
        "environment": {"AWS_REGION": "eu-west-1"},
        "envFrom": [{"secretRef": {"name": "aws"}}],
    }
    spec = push_pod(raw)["spec"]
    (init,) = spec["initContainers"]
    assert init["image"] == "codeship/ecr-dockercfg-generator"
    assert init["args"] == ["/run/shipway-dockercfg/dockercfg"]
    assert init["envFrom"] == [{"secretRef": {"name": "aws"}}]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in init["env"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dockercfg"]["emptyDir"]["medium"] == "Memory"
    assert "registry" not in volumes
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["SHIPWAY_DOCKERCFG"] == "/run/shipway-dockercfg/dockercfg"
    assert "DOCKER_CONFIG" not in env


def test_run_steps_pull_with_the_pipelines_and_their_own_secrets() -> None:
    raw = pipeline()
    raw["imagePullSecrets"] = [{"name": "pull"}]
    raw["steps"][0]["dockercfgSecret"] = "own"
    first = run(raw)
    (build,) = first.builds
    second = run(raw, first.status, [build_pod(build.name, "app", rc=0, message=ok())])
    (create,) = second.create
    manifest = pod_manifest(REF, compiled(raw), create)
    assert manifest["spec"]["imagePullSecrets"] == [{"name": "pull"}, {"name": "own"}]


def test_an_insecure_cluster_registry_gives_crane_its_insecure_flag(tmp_path: Path) -> None:
    """The push script, run for real with a fake crane: --insecure on the copy and the check."""
    config = PushConfig(image="crane:debug", insecure=True)
    (container,) = push_pod(pipeline(), PodOptions(push=config))["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SHIPWAY_CRANE_INSECURE"] == "true"
    fake = tmp_path / "bin" / "crane"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\necho "$@" >> "$CALLS"\n[ "$1" = digest ] && echo "$SHIPWAY_DIGEST"\nexit 0\n'
    )
    fake.chmod(0o755)
    term = tmp_path / "termination-log"
    (tmp_path / "config.json").write_text('{"auths": {}}')  # the mounted Secret
    done = subprocess.run(
        ["sh", "-c", SCRIPT, "shipway-push"],
        env={
            **env,
            "PATH": f"{fake.parent}:{os.environ['PATH']}",
            "TMPDIR": str(tmp_path),
            "SHIPWAY_TERMINATION_LOG": str(term),
            "CALLS": str(tmp_path / "calls"),
            "DOCKER_CONFIG": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c.split()[:2] for c in calls] == [["copy", "--insecure"], ["digest", "--insecure"]]
    assert json.loads(term.read_text())["digest"] == env["SHIPWAY_DIGEST"]
