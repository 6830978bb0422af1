"""The source (checkout or upload) runs before the first step; its failure fails the pipeline."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shipway.engine.cienv import ci_environment
from shipway.engine.intents import SourceToCreate
from shipway.engine.naming import pod_name
from shipway.engine.observe import PodView
from shipway.engine.plan.planner import Plan, PlanInput, finished_plan, plan
from shipway.engine.pods.frame import claim_name
from shipway.engine.pods.manifests import pod_manifest
from shipway.engine.settings import PodOptions
from shipway.models import PipelinePhase, PipelineStatus, StepPhase
from tests.unit.builders import NOW, REF, WALKTHROUGH, compiled, pod

GIT = {
    **WALKTHROUGH,
    "source": {"git": {"url": "https://git.example/org/app.git", "revision": "main"}},
}
UPLOAD = {**WALKTHROUGH, "source": {"upload": {"timeout": "5m"}}}
CHECKOUT_POD = pod_name(REF.name, REF.uid, "source", "checkout")
UPLOAD_POD = pod_name(REF.name, REF.uid, "source", "upload")
FIRST_POD = pod_name(REF.name, REF.uid, "1", "write artifact")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def report(**facts: str) -> str:
    plain = {"commit", "reason", "files", "bytes"}
    return "\n".join(f"{k}={v if k in plain else b64(v)}" for k, v in facts.items())


def run(raw: dict[str, Any], status: PipelineStatus | None = None, *pods: PodView) -> Plan:
    return plan(PlanInput(REF, compiled(raw), status or PipelineStatus(), list(pods), NOW))


def checked_out(**kw: Any) -> PodView:
    facts = {
        "commit": "a" * 40,
        "branch": "main",
        "message": "Add the artifact step\n\nbody",
        "committerName": "Ann Dev",
        "committerEmail": "ann@example.org",
    }
    return pod(
        CHECKOUT_POD,
        "source",
        phase="Succeeded",
        exit_code=0,
        message=report(**facts),
        **kw,
    )


def test_the_checkout_runs_first_and_no_step_starts_before_it_succeeds() -> None:
    first = run(GIT)
    assert [(c.step_id, c.name) for c in first.create] == [("source", CHECKOUT_POD)]
    assert first.ensure_claim, "the checkout writes into the claim"
    assert first.status.phase == PipelinePhase.RUNNING
    assert first.status.source is not None
    assert first.status.source.phase == StepPhase.RUNNING
    assert first.status.current_step == "checkout"
    assert {s.phase for s in first.status.steps} == {StepPhase.PENDING}
    waiting = run(GIT, first.status, pod(CHECKOUT_POD, "source"))
    assert waiting.create == ()
    assert waiting.status == first.status.model_copy(update={"node_name": "node-1"})


def test_after_the_checkout_the_first_step_starts_with_what_it_found() -> None:
    first = run(GIT)
    done = run(GIT, first.status, checked_out())
    assert [c.name for c in done.create] == [FIRST_POD]
    source = done.status.source
    assert source is not None
    assert source.phase == StepPhase.SUCCEEDED
    assert (source.commit, source.branch, source.committer_name) == ("a" * 40, "main", "Ann Dev")
    assert source.commit_message == "Add the artifact step\n\nbody"
    assert source.repo_name == "app"
    assert [e.reason for e in done.events] == ["SourceReady"]
    assert done.events[0].message.startswith(f"checked out {'a' * 12} (main)")
    assert "started 'write artifact'" in done.events[0].message
    env = dict(ci_environment(REF, compiled(GIT), source))
    assert env["CI_COMMIT_ID"] == "a" * 40
    assert env["CI_BRANCH"] == "main"
    assert env["CI_COMMIT_MESSAGE"] == "Add the artifact step\n\nbody"
    assert env["CI_COMMITTER_EMAIL"] == "ann@example.org"
    assert env["CI_REPO_NAME"] == "app"


def test_spec_ci_wins_over_the_checkout() -> None:
    raw = {**GIT, "ci": {"branch": "release", "commitId": "given"}}
    source = run(raw, run(raw).status, checked_out()).status.source
    env = dict(ci_environment(REF, compiled(raw), source))
    assert (env["CI_BRANCH"], env["CI_COMMIT_ID"]) == ("release", "given")
    assert env["CI_COMMITTER_NAME"] == "Ann Dev"


def test_a_failed_checkout_fails_the_pipeline_with_gits_message_and_no_step_pod() -> None:
    first = run(GIT)
    failed = pod(
        CHECKOUT_POD,
        "source",
        phase="Failed",
        exit_code=1,
        message=report(reason="RevisionNotFound", message="fatal: couldn't find remote ref nope\n"),
    )
    after = run(GIT, first.status, failed)
    assert after.create == ()
    assert after.status.phase == PipelinePhase.FAILED
    assert after.status.message == "checkout failed: fatal: couldn't find remote ref nope"
    source = after.status.source
    assert source is not None
    assert (source.phase, source.reason) == (StepPhase.FAILED, "RevisionNotFound")
    assert {(s.phase, s.reason) for s in after.status.steps} == {
        (StepPhase.SKIPPED, "SourceFailed")
    }
    assert [e.reason for e in after.events] == ["PipelineFailed"]
    assert after.events[0].message.startswith("checkout failed: fatal: couldn't find")
    again = run(GIT, after.status, failed)
    assert again.create == ()
    assert again.events == ()


def test_credentials_in_a_message_never_reach_the_status() -> None:
    leaked = report(reason="CheckoutFailed", message="fatal: https://bob:hunter2@host/x.git")
    failed = pod(CHECKOUT_POD, "source", phase="Failed", exit_code=1, message=leaked)
    after = run(GIT, run(GIT).status, failed)
    assert after.status.source is not None
    assert "hunter2" not in (after.status.source.message or "")
    assert "hunter2" not in (after.status.message or "")
    assert all("hunter2" not in e.message for e in after.events)


def test_a_checkout_pod_deleted_while_running_fails_the_source() -> None:
    first = run(GIT)
    gone = run(GIT, first.status)
    assert gone.status.phase == PipelinePhase.FAILED
    assert gone.status.source is not None
    assert gone.status.source.reason == "PodDeleted"


def test_an_upload_that_never_completes_fails_at_its_deadline() -> None:
    first = run(UPLOAD)
    assert [c.name for c in first.create] == [UPLOAD_POD]
    assert first.create[0].active_deadline == 300
    expired = pod(
        UPLOAD_POD,
        "source",
        phase="Failed",
        reason="DeadlineExceeded",
        deadline=300,
        exit_code=137,
    )
    after = run(UPLOAD, first.status, expired)
    assert after.status.phase == PipelinePhase.FAILED
    assert after.status.source is not None
    assert after.status.source.reason == "UploadTimeout"
    assert "no complete upload arrived within 300s" in (after.status.message or "")


def test_an_upload_reports_what_it_received() -> None:
    received = pod(
        UPLOAD_POD,
        "source",
        phase="Succeeded",
        exit_code=0,
        message="files=12\nbytes=3456",
    )
    done = run(UPLOAD, run(UPLOAD).status, received)
    assert done.status.source is not None
    assert (done.status.source.files, done.status.source.bytes) == (12, 3456)
    assert done.events[0].message.startswith("received 12 files (3456 bytes)")


def test_cancel_during_the_checkout_stops_its_pod() -> None:
    first = run(GIT)
    cancelled = run({**GIT, "cancel": True}, first.status, pod(CHECKOUT_POD, "source"))
    assert cancelled.stop == (CHECKOUT_POD,)
    assert cancelled.status.phase == PipelinePhase.CANCELLED
    assert cancelled.status.source is not None
    assert cancelled.status.source.phase == StepPhase.CANCELLED


def test_a_finished_pipeline_stops_only_a_checkout_pod_its_status_does_not_record() -> None:
    live = pod(CHECKOUT_POD, "source")  # still running, e.g. after a lost status write
    recorded = run(GIT).status.model_copy(update={"phase": PipelinePhase.FAILED})
    assert finished_plan(recorded, [live], REF.uid).stop == ()
    stray = recorded.model_copy(update={"source": None})
    assert finished_plan(stray, [live], REF.uid).stop == (CHECKOUT_POD,)


def test_the_checkout_pod_has_no_token_the_claim_and_the_secret_as_files() -> None:
    raw = {
        **WALKTHROUGH,
        "source": {"git": {"url": "git@git.example:org/app.git", "secretName": "deploy-key"}},
    }
    manifest = pod_manifest(
        REF, compiled(raw), SourceToCreate("source", 0, CHECKOUT_POD, 3600), options=PodOptions()
    )
    spec = manifest["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["activeDeadlineSeconds"] == 3600
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"]["claimName"] == claim_name(
        REF, compiled(raw)
    )
    assert volumes["git-secret"]["secret"]["secretName"] == "deploy-key"
    (container,) = spec["containers"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/workspace",
        "/etc/shipway/git-secret",
    }
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GIT_URL"] == "git@git.example:org/app.git"
    assert not any("deploy-key" in v for v in env.values()), "only the mount names the Secret"
    assert manifest["metadata"]["labels"]["shipway.dev/step"] == "source"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == REF.uid


def test_the_upload_receiver_keeps_stdin_open_for_one_attach() -> None:
    manifest = pod_manifest(REF, compiled(UPLOAD), SourceToCreate("source", 0, UPLOAD_POD))
    (container,) = manifest["spec"]["containers"]
    assert container["stdin"] is True
    assert container["stdinOnce"] is True
    assert "tty" not in container


def test_a_checked_out_branch_becomes_the_build_tag_for_filters() -> None:
    raw = {
        **WALKTHROUGH,
        "source": {"git": {"url": "https://git.example/org/app.git"}},
        "steps": [
            {"name": "only main", "service": "demo", "command": "true", "tag": "main"},
            {"name": "not main", "service": "demo", "command": "true", "exclude": "main"},
        ],
    }
    from shipway.compiler.pipeline import compile_pipeline

    before = {r.name: r.enabled for r in compile_pipeline(raw).runs}
    after = {r.name: r.enabled for r in compile_pipeline(raw, "main").runs}
    assert before == {"only main": False, "not main": True}
    assert after == {"only main": True, "not main": False}
    named = {**raw, "source": {"git": {"url": "https://g/x.git", "revision": "main"}}}
    assert {r.name: r.enabled for r in compile_pipeline(named).runs} == after


# -- the command line's view -----------------------------------------------------------------


def test_status_shows_the_source_and_waiting_apart_from_running() -> None:
    from shipway.cli.statustree import status_tree
    from tests.unit.cli.client_builders import NOW as CLI_NOW
    from tests.unit.cli.client_builders import at, pipeline, step

    body = pipeline(
        "Succeeded",
        [
            step(
                "1",
                "build",
                "Succeeded",
                pod="p-1",
                exit_code=0,
                createdAt=at(3),
                started=7,
                finished=9,
            )
        ],
        progress="1/1",
        finished=9,
        spec={"services": {"app": {"image": "x"}}, "steps": [{"name": "build", "service": "app"}]},
    )
    body["status"]["source"] = {
        "kind": "git",
        "phase": "Succeeded",
        "pod": "p-src",
        "commit": "b" * 40,
        "branch": "main",
        "commitMessage": "Fix the build\n\nbecause",
        "createdAt": at(0),
        "startedAt": at(2),
        "finishedAt": at(3),
    }
    lines = status_tree(body, CLI_NOW)
    assert lines[1].split() == [
        "├─",
        "✔",
        "checkout",
        "Succeeded",
        "1s",
        "waited",
        "2s",
        f"{'b' * 12}",
        "(main)",
        "Fix",
        "the",
        "build",
    ]
    assert lines[2].split()[3:] == ["Succeeded", "exit", "0", "2s", "waited", "4s"]


def test_the_checkout_is_followed_and_its_logs_read_like_a_step() -> None:
    from shipway.cli.commands import select_steps
    from shipway.cli.tracker import AttemptEnded, AttemptStarted, Tracker, every_step

    status = run(GIT, run(GIT).status, checked_out()).status
    events = Tracker().update(status)
    assert [type(e) for e in events[:2]] == [AttemptStarted, AttemptEnded]
    assert (events[0].step.name, events[0].pod) == ("checkout", CHECKOUT_POD)
    assert isinstance(events[1], AttemptEnded)
    assert events[1].phase == StepPhase.SUCCEEDED
    assert events[2].step.name == "write artifact"
    (chosen,) = select_steps(every_step(status), ["checkout"])
    assert (chosen.pod, chosen.service) == (CHECKOUT_POD, "checkout"), "the container's name"


def test_the_operator_settings_of_checkouts() -> None:
    from shipway.controller.config import ConfigError, pod_options
    from shipway.engine.settings import DEFAULT_GIT_IMAGE, SourceSettings

    assert pod_options({}).source == SourceSettings(DEFAULT_GIT_IMAGE, 2 * 2**30)
    options = pod_options({"SHIPWAY_GIT_IMAGE": "reg/git:1", "SHIPWAY_SOURCE_MAX_SIZE": "500Mi"})
    assert options.source == SourceSettings("reg/git:1", 500 * 2**20)
    for bad in ("lots", "0"):
        with pytest.raises(ConfigError, match="SHIPWAY_SOURCE_MAX_SIZE"):
            pod_options({"SHIPWAY_SOURCE_MAX_SIZE": bad})
    # a pipeline may lower the limit, never raise it
    raw = {**GIT, "source": {"git": {"url": "https://g/x.git", "maxSize": "10Gi"}}}
    manifest = pod_manifest(
        REF, compiled(raw), SourceToCreate("source", 0, CHECKOUT_POD), options=options
    )
    env = {e["name"]: e["value"] for e in manifest["spec"]["containers"][0]["env"]}
    assert env["SHIPWAY_MAX_SIZE"] == str(500 * 2**20)
    assert manifest["spec"]["containers"][0]["image"] == "reg/git:1"
