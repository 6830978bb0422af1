"""Builds in the plan: what is built, in parallel, before whom, and what a failure does."""

from __future__ import annotations

from typing import Any

from shipway.engine.intents import StepToCreate
from shipway.engine.observe import PodView, pod_view
from shipway.engine.plan.planner import Plan, PlanInput, plan
from shipway.engine.settings import BuildConfig, Settings
from shipway.models import PipelinePhase, PipelineStatus, SourceStatus, StepPhase
from tests.unit.builders import NOW, REF, at, compiled

CONFIG = BuildConfig(
    registry="registry.local",
    builder="tcp://buildkitd:1234",
    client_secret="client",
    namespace="shipway-system",
)
DIGEST = "sha256:" + "1" * 64
GIT = {"git": {"url": "https://git.example.com/team/seed.git", "revision": "main"}}
CHECKED_OUT = PipelineStatus(
    phase=PipelinePhase.RUNNING,
    started_at=at(-40),
    source=SourceStatus(
        kind="git",
        phase=StepPhase.SUCCEEDED,
        pod="demo-source-checkout",
        commit="0" * 40,
        branch="main",
        finished_at=at(-35),
    ),
)
"""The checkout is in place: builds may start."""

# The seed walkthrough's services: demo built from Dockerfile, linking redis and postgres;
# volumes_test built from Dockerfile2.
SEED: dict[str, Any] = {
    "services": {
        "demo": {
            "build": {"image": "myapp", "dockerfile_path": "Dockerfile"},
            "links": ["redis", "postgres"],
            "volumes": ["./tmp:/app"],
        },
        "redis": {"image": "redis:7"},
        "postgres": {"image": "postgres:15"},
        "volumes_test": {
            "build": {"image": "volumestest", "dockerfile_path": "Dockerfile2"},
            "volumes_from": ["demo"],
        },
    },
    "steps": [
        {"name": "write artifact", "service": "demo", "command": "./artifact.sh"},
        {"name": "check artifact", "service": "volumes_test", "command": "rspec"},
    ],
    "ci": {"branch": "main"},
}


def run(
    raw: dict[str, Any],
    status: PipelineStatus | None = None,
    pods: list[PodView] | None = None,
    config: BuildConfig = CONFIG,
) -> Plan:
    raw = {"source": GIT, **raw}
    return plan(
        PlanInput(
            REF, compiled(raw), status or CHECKED_OUT, pods or [], NOW, Settings(build=config)
        )
    )


OWNER = {
    "apiVersion": "shipway.dev/v1alpha1",
    "kind": "Pipeline",
    "name": REF.name,
    "uid": REF.uid,
    "controller": True,
}
"""The controller reference of the pipeline's own pods (others are not its)."""


def build_pod(
    name: str,
    service: str,
    *,
    rc: int | None = None,
    message: str = "",
    created: float = -30,
    inspect: tuple[int, str] | None = None,
) -> PodView:
    """A build pod as the API server shows it, summarised by the real pod_view.

    ``inspect``: (exit code, message) of the container reading the image after the build,
    which makes the build an init container (a linked service's build).
    """
    if rc is None:
        state: dict[str, Any] = {"running": {"startedAt": at(created + 1)}}
        phase = "Running"
    else:
        state = {
            "terminated": {
                "exitCode": rc,
                "reason": "Completed" if rc == 0 else "Error",
                "message": message,
                "startedAt": at(created + 1),
                "finishedAt": at(created + 20),
            }
        }
        phase = "Succeeded" if rc == 0 else "Failed"
    view = pod_view(
        {
            "metadata": {
                "name": name,
                "uid": f"uid-{name}",
                "creationTimestamp": at(created),
                "labels": {
                    "shipway.dev/pipeline": REF.name,
                    "shipway.dev/step": f"build-{service}",
                    "shipway.dev/attempt": "0",
                },
                "annotations": {"kubectl.kubernetes.io/default-container": "build"},
                "ownerReferences": [OWNER],
            },
            "spec": {"nodeName": "node-1", "activeDeadlineSeconds": 3600},
            "status": {
                "phase": phase,
                "startTime": at(created),
                "containerStatuses": [{"name": "build", "state": state}],
            }
            if inspect is None
            else {
                "phase": "Succeeded" if inspect[0] == 0 and rc == 0 else "Failed",
                "startTime": at(created),
                "initContainerStatuses": [{"name": "build", "state": state}],
                "containerStatuses": [
                    {"name": "inspect", "state": _terminated(*inspect, created + 21)}
                ],
            },
        }
    )
    assert view is not None
    return view


def _terminated(rc: int, message: str, start: float) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": rc,
            "reason": "Completed" if rc == 0 else "Error",
            "message": message,
            "startedAt": at(start),
            "finishedAt": at(start + 5),
        }
    }


def ok(cached: int = 0, steps: int = 3, digest: str = DIGEST) -> str:
    return f'{{"digest":"{digest}","cached":{cached},"steps":{steps}}}'


def builds_of(status: PipelineStatus) -> dict[str, str]:
    return {b.service: b.phase.value for b in status.builds}


def steps_of(status: PipelineStatus) -> dict[str, tuple[str, str | None]]:
    return {s.name: (s.phase.value, s.reason) for s in status.steps}


def test_nothing_builds_before_the_checkout_is_in_place() -> None:
    first = run(SEED, PipelineStatus())
    assert first.builds == ()
    assert [c.step_id for c in first.create] == ["source"]
    assert builds_of(first.status) == {"demo": "Pending", "volumes_test": "Pending"}
    assert first.status.progress == "0/4"


def test_both_builds_start_at_once_and_no_step_before_its_image() -> None:
    first = run(SEED)
    assert sorted(b.service for b in first.builds) == ["demo", "volumes_test"]
    assert first.create == ()
    assert first.ensure_claim
    assert first.build_secret is True
    assert first.status.phase == PipelinePhase.RUNNING
    assert builds_of(first.status) == {"demo": "Running", "volumes_test": "Running"}
    assert first.status.progress == "0/4"
    assert first.status.current_step == "build demo, build volumes_test"
    demo = next(b for b in first.builds if b.service == "demo")
    assert demo.repository.startswith("registry.local/ci/demo-")
    assert demo.repository.endswith("/demo")
    assert demo.cache_repository is None  # not cached: Codeship builds from scratch


def _names(plan_: Plan) -> dict[str, str]:
    return {b.service: b.name for b in plan_.builds}


def test_a_step_starts_when_its_build_pushed_and_runs_the_image_by_digest() -> None:
    first = run(SEED)
    names = _names(first)
    demo_done = build_pod(names["demo"], "demo", rc=0, message=ok(cached=1))
    building = build_pod(names["volumes_test"], "volumes_test")
    second = run(SEED, first.status, [demo_done, building])
    (create,) = second.create
    assert create.step_id == "1"
    assert isinstance(create, StepToCreate)
    image = dict(create.images)["demo"]
    assert image == f"{next(b.image for b in second.status.builds if b.service == 'demo')}@{DIGEST}"
    assert "redis" not in dict(create.images)  # pulled as it is, not built
    demo = next(b for b in second.status.builds if b.service == "demo")
    assert (demo.phase, demo.digest, demo.cached_steps, demo.total_steps) == (
        StepPhase.SUCCEEDED,
        DIGEST,
        1,
        3,
    )
    assert [e.reason for e in second.events] == ["BuildSucceeded"]
    assert "1 of 3 steps cached" in second.events[0].message
    assert "started 'write artifact'" in second.events[0].message
    assert second.build_secret is None  # volumes_test still builds


def test_the_pod_manifest_runs_the_digest_in_the_main_container_and_sidecars() -> None:
    from shipway.engine.pods.manifests import pod_manifest

    raw: dict[str, Any] = {
        "services": {
            "app": {"build": "."},
            "db": {"build": {"context": "db"}},
        },
        "steps": [{"name": "t", "service": "app", "command": "true"}],
    }
    raw["services"]["app"]["links"] = ["db"]
    first = run(raw)
    assert sorted(b.service for b in first.builds) == ["app", "db"]
    names = _names(first)
    pods = [
        build_pod(names["app"], "app", rc=0, message=ok(digest="sha256:" + "a" * 64)),
        build_pod(names["db"], "db", rc=0, message=ok(digest="sha256:" + "d" * 64)),
    ]
    second = run(raw, first.status, pods)
    (create,) = second.create
    manifest = pod_manifest(REF, compiled({"source": GIT, **raw}), create)
    (main,) = manifest["spec"]["containers"]
    (sidecar,) = manifest["spec"]["initContainers"]
    assert main["image"].endswith("/app@sha256:" + "a" * 64)
    assert sidecar["image"].endswith("/db@sha256:" + "d" * 64)
    assert second.build_secret is False  # the last build ended: the certificate goes


def test_a_failed_build_fails_its_step_with_buildkits_line_and_skips_the_rest() -> None:
    first = run(SEED)
    names = _names(first)
    lines = (
        "------\n > [2/2] RUN bundle install:\n------\n"
        'error: failed to solve: process "/bin/sh -c bundle install" did not complete '
        "successfully: exit code: 1"
    )
    failed = build_pod(names["demo"], "demo", rc=1, message=lines)
    second = run(SEED, first.status, [failed, build_pod(names["volumes_test"], "volumes_test")])
    assert second.create == ()
    demo = next(b for b in second.status.builds if b.service == "demo")
    assert demo.phase == StepPhase.FAILED
    assert demo.reason == "BuildFailed"
    assert demo.message == lines
    write = next(s for s in second.status.steps if s.name == "write artifact")
    assert (write.phase, write.reason, write.pod) == (StepPhase.FAILED, "BuildFailed", None)
    assert write.message is not None
    assert write.message.startswith("the image of 'demo' was not built: error: failed to solve")
    assert steps_of(second.status)["check artifact"] == ("Skipped", "PreviousStepFailed")
    # The pipeline is over: the other build is stopped, not left running for nobody.
    assert second.status.phase == PipelinePhase.FAILED
    assert builds_of(second.status)["volumes_test"] == "Cancelled"
    assert names["volumes_test"] in second.stop
    reasons = [e.reason for e in second.events]
    assert reasons[0] == "BuildFailed"
    assert reasons[-1] == "PipelineFailed"


def test_parallel_siblings_of_a_step_whose_build_failed_run_on() -> None:
    raw = {
        "services": {"app": {"build": "."}, "tool": {"image": "busybox"}},
        "steps": [
            {
                "type": "parallel",
                "steps": [
                    {"name": "lint", "service": "tool", "command": "true"},
                    {"name": "test", "service": "app", "command": "true"},
                ],
            },
            {"name": "after", "service": "tool", "command": "true"},
        ],
    }
    first = run(raw)
    assert [c.step_id for c in first.create] == ["1"]  # lint needs no image
    (build,) = first.builds
    failed = build_pod(build.name, "app", rc=1, message="error: failed to solve: boom")
    lint = pod_view_running(first.create[0].name, "1")
    second = run(raw, first.status, [failed, lint])
    assert steps_of(second.status)["test"] == ("Failed", "BuildFailed")
    assert steps_of(second.status)["lint"][0] == "Running"
    assert second.status.phase == PipelinePhase.RUNNING
    assert second.stop == ()
    third = run(raw, second.status, [failed, pod_view_done(first.create[0].name, "1")])
    assert third.status.phase == PipelinePhase.FAILED
    assert steps_of(third.status)["after"] == ("Skipped", "PreviousStepFailed")


def pod_view_running(name: str, step_id: str) -> PodView:
    from tests.unit.builders import pod

    return pod(name, step_id)


def pod_view_done(name: str, step_id: str) -> PodView:
    from tests.unit.builders import pod

    return pod(name, step_id, phase="Succeeded", exit_code=0)


def test_services_of_filtered_out_steps_are_not_built() -> None:
    raw = {
        "services": {"app": {"build": "."}, "docs": {"build": "docs"}},
        "steps": [
            {"name": "test", "service": "app", "command": "true"},
            {"name": "publish", "service": "docs", "command": "true", "tag": "release"},
        ],
        "ci": {"branch": "main"},
    }
    first = run(raw)
    assert [b.service for b in first.builds] == ["app"]
    assert builds_of(first.status) == {"app": "Running"}


def test_an_on_fail_service_is_built_only_when_its_step_is_about_to_run() -> None:
    raw = {
        "services": {"app": {"image": "busybox"}, "report": {"build": "report"}},
        "steps": [
            {
                "name": "test",
                "service": "app",
                "command": "false",
                "on_fail": [{"name": "report", "service": "report", "command": "true"}],
            }
        ],
    }
    first = run(raw)
    assert first.builds == ()
    assert first.status.builds == []
    failed = pod_fail(first.create[0].name, "1")
    second = run(raw, first.status, [failed])
    assert [b.service for b in second.builds] == ["report"]
    assert second.create == ()
    assert second.status.phase == PipelinePhase.RUNNING


def pod_fail(name: str, step_id: str) -> PodView:
    from tests.unit.builders import pod

    return pod(name, step_id, phase="Failed", exit_code=1)


def test_a_cluster_without_a_builder_fails_the_build_and_says_what_is_missing() -> None:
    first = run(SEED, config=BuildConfig())
    assert first.builds == ()
    assert first.status.phase == PipelinePhase.FAILED
    demo = next(b for b in first.status.builds if b.service == "demo")
    assert demo.reason == "BuilderNotConfigured"
    assert demo.message is not None
    assert "SHIPWAY_BUILDKIT_ADDR" in demo.message
    write = next(s for s in first.status.steps if s.name == "write artifact")
    assert write.reason == "BuildFailed"
    assert "this cluster cannot build images" in (write.message or "")


def test_cancel_stops_running_builds() -> None:
    first = run(SEED)
    names = _names(first)
    running = [build_pod(n, s) for s, n in names.items()]
    cancelled = run({**SEED, "cancel": True}, first.status, running)
    assert sorted(cancelled.stop) == sorted(names.values())
    assert set(builds_of(cancelled.status).values()) == {"Cancelled"}
    assert cancelled.status.phase == PipelinePhase.CANCELLED
    assert cancelled.build_secret is False


def test_a_build_pod_deleted_mid_build_fails_the_build() -> None:
    first = run(SEED)
    names = _names(first)
    second = run(SEED, first.status, [build_pod(names["volumes_test"], "volumes_test")])
    demo = next(b for b in second.status.builds if b.service == "demo")
    assert (demo.phase, demo.reason) == (StepPhase.FAILED, "PodDeleted")


def test_a_success_without_a_digest_is_a_failure() -> None:
    first = run(SEED)
    names = _names(first)
    odd = build_pod(names["demo"], "demo", rc=0, message="")
    second = run(SEED, first.status, [odd])
    demo = next(b for b in second.status.builds if b.service == "demo")
    assert demo.phase == StepPhase.FAILED
    assert "no image digest" in (demo.message or "")


def test_a_finished_pipeline_leaves_its_recorded_build_pods_alone() -> None:
    from shipway.engine.plan.planner import finished_plan

    first = run(SEED)
    names = _names(first)
    pods = [build_pod(n, s, rc=0, message=ok()) for s, n in names.items()]
    status = first.status.model_copy(update={"phase": PipelinePhase.SUCCEEDED})
    assert finished_plan(status, pods, REF.uid).stop == ()


def test_cached_builds_import_the_branch_then_the_default_branch_and_export_the_branch() -> None:
    raw = {
        "services": {
            "app": {"build": ".", "cached": True, "default_cache_branch": "master"},
        },
        "steps": [{"name": "t", "service": "app", "command": "true"}],
        "ci": {"branch": "feature/x"},
    }
    (build,) = run(raw).builds
    assert build.cache_repository is not None
    assert build.cache_repository.startswith("registry.local/ci/cache/seed-")  # the git URL
    assert build.cache_repository.endswith("/app")
    assert build.cache_tags[0].startswith("feature-x-")
    assert build.cache_tags[1] == "master"
    keyed = run({**raw, "cacheKey": "shop"}).builds[0]
    assert keyed.cache_repository == "registry.local/ci/cache/shop/app"
