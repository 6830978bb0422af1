"""The history's pure parts: records, log capping and masking, retention decisions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from shipway.history.logs import MASK, Masker, cap_log, pack, unpack
from shipway.history.masking import masked_values, referenced_secrets
from shipway.history.records import body_of, build_record, project_of, step_timings
from shipway.history.retention import Policy, Run, decide, namespace_policy
from shipway.models.durations import parse_duration

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def pipeline_body(**status: object) -> dict[str, object]:
    return {
        "metadata": {
            "name": "app-x7k2p",
            "generateName": "app-",
            "namespace": "ci",
            "uid": "uid-1",
            "creationTimestamp": "2026-12-06T11:00:00Z",
            "annotations": {"shipway.dev/keep": "yes"},
        },
        "spec": {
            "services": {"a": {"image": "busybox"}},
            "steps": [{"service": "a", "command": "true"}],
            "ci": {"branch": "main", "commitId": "abc123"},
        },
        "status": {
            "phase": "Failed",
            "message": "step 'test' failed",
            "startedAt": "2026-12-06T11:00:05Z",
            "finishedAt": "2026-12-06T11:01:00Z",
            "conditions": [{"type": "Succeeded", "status": "False", "reason": "StepFailed"}],
            "steps": [
                {
                    "id": "1",
                    "name": "test",
                    "service": "a",
                    "phase": "Failed",
                    "exitCode": 2,
                    "createdAt": "2026-12-06T11:00:05Z",
                    "startedAt": "2026-12-06T11:00:09Z",
                }
            ],
            **status,
        },
    }


def test_a_record_says_who_what_and_how_it_ended() -> None:
    record = build_record(pipeline_body())
    assert (record.namespace, record.name, record.uid) == ("ci", "app-x7k2p", "uid-1")
    assert (record.project, record.branch, record.commit) == ("app", "main", "abc123")
    assert (record.phase, record.reason, record.message) == (
        "Failed",
        "StepFailed",
        "step 'test' failed",
    )
    assert record.trigger == "manifest"
    assert record.keep
    assert record.finished_at == datetime(2026, 12, 6, 11, 1, tzinfo=UTC)
    assert json.loads(record.status_json)["steps"][0]["exitCode"] == 2
    rebuilt = body_of(record)
    assert rebuilt["status"]["steps"][0]["name"] == "test"
    assert rebuilt["metadata"]["creationTimestamp"] == "2026-12-06T11:00:00Z"


def test_the_checked_out_branch_and_commit_win_over_the_ci_fields() -> None:
    record = build_record(pipeline_body(source={"kind": "git", "branch": "dev", "commit": "f00"}))
    assert (record.branch, record.commit) == ("dev", "f00")


def test_the_project_is_the_repository_without_credentials() -> None:
    spec = {"source": {"git": {"url": "https://bot:secret@git.example.com/team/app.git"}}}
    assert project_of(spec, "ignored-", "name") == "git.example.com/team/app"
    assert project_of({"cacheKey": "mine"}, None, "n") == "mine"
    assert project_of({}, None, "plain") == "plain"


def test_waiting_time_is_from_pod_creation_to_container_start() -> None:
    (timing,) = step_timings(pipeline_body()["status"])  # type: ignore[arg-type]
    assert timing.waited_seconds == 4.0


def test_a_short_log_is_kept_whole_and_a_long_one_head_and_tail_at_line_ends() -> None:
    assert cap_log([b"one\n", b"two\n"], 100) == (b"one\ntwo\n", 8, False)
    lines = [f"line {i:05d}\n".encode() for i in range(10_000)]
    kept, size, truncated = cap_log(lines, 4096)
    assert truncated
    assert size == sum(map(len, lines))
    text = kept.decode()
    assert text.startswith("line 00000\n")
    assert text.endswith("line 09999\n")
    assert "bytes of this log were cut here" in text
    assert len(kept) <= 4096 + 200
    # the cut falls between whole lines
    assert all(line.startswith(("line ", "[shipway")) for line in text.splitlines())


def test_secret_values_are_masked_longest_first_and_short_ones_left() -> None:
    masker = Masker(["hunter22", "hunter22-extended", "no", "-----BEGIN KEY-----\nabcdefgh\n"])
    text = "pw=hunter22-extended and hunter22, no way, key abcdefgh"
    assert masker.mask(text) == f"pw={MASK} and {MASK}, no way, key {MASK}"
    assert not Masker(["abc"])


def test_the_secrets_a_spec_names_and_their_values() -> None:
    spec = {
        "services": {
            "a": {
                "envFrom": [{"secretRef": {"name": "env"}}],
                "build": {"secrets": [{"secretRef": {"name": "bs"}}]},
            }
        },
        "steps": [{"type": "push", "dockercfgSecret": "creds"}],
        "source": {"git": {"url": "u", "secretName": "ssh"}},
    }
    assert referenced_secrets(spec) == {"env", "bs", "creds", "ssh"}
    auth = base64.b64encode(b"robot:pa55word").decode()
    config = json.dumps({"auths": {"reg.example.com": {"auth": auth}}})
    secret = {
        "data": {
            "TOKEN": base64.b64encode(b"s3cr3t-token").decode(),
            ".dockerconfigjson": base64.b64encode(config.encode()).decode(),
            "binary": base64.b64encode(b"\xff\xfe").decode(),
        }
    }
    values = masked_values([secret])
    assert "s3cr3t-token" in values
    assert "pa55word" in values
    assert auth in values


def test_logs_pack_and_unpack() -> None:
    text = "héllo\n" * 1000
    packed = pack(text)
    assert len(packed) < len(text) // 10
    assert unpack(packed) == text


def run(name: str, phase: str, minutes_ago: float, **kw: object) -> Run:
    finished = NOW - timedelta(minutes=minutes_ago)
    fields: dict[str, object] = {
        "namespace": "ci",
        "name": name,
        "project": "app",
        "branch": "main",
        "phase": phase,
        "finished_at": finished,
        "created_at": finished - timedelta(minutes=1),
    }
    fields.update(kw)
    return Run(**fields)  # type: ignore[arg-type]


def test_retention_keeps_the_newest_per_branch_and_never_a_running_or_kept_one() -> None:
    runs = [run(f"ok-{i}", "Succeeded", i) for i in range(5)]
    runs += [run(f"bad-{i}", "Failed", i) for i in range(4)]
    runs += [run("going", "Running", 500, finished_at=None)]
    runs += [run("kept", "Succeeded", 600, keep=True)]
    runs += [run(f"other-{i}", "Succeeded", i, branch="dev") for i in range(2)]
    decision = decide(runs, Policy(succeeded=2, failed=3), NOW)
    assert sorted(r.name for r in decision.prune) == ["bad-3", "ok-2", "ok-3", "ok-4"]
    assert decision.held == ()


def test_retention_counts_a_rejected_run_as_failed_and_never_prunes_one_awaiting_approval() -> None:
    runs = [run(f"no-{i}", "Rejected", i) for i in range(3)]
    runs += [run("gate", "AwaitingApproval", 900, finished_at=None)]
    decision = decide(runs, Policy(failed=1, max_age=timedelta(hours=1)), NOW)
    assert sorted(r.name for r in decision.prune) == ["no-1", "no-2"]


def test_retention_prunes_by_age_and_holds_runs_not_archived() -> None:
    runs = [
        run("old", "Succeeded", 8 * 24 * 60),
        run("old-unarchived", "Cancelled", 9 * 24 * 60, archived=False),
        run("new", "Succeeded", 1),
    ]
    decision = decide(runs, Policy(), NOW)
    assert [r.name for r in decision.prune] == ["old"]
    assert [r.name for r in decision.held] == ["old-unarchived"]
    assert decide(runs, Policy(enabled=False), NOW).prune == ()


def test_a_namespace_overrides_the_policy_and_a_bad_override_is_named() -> None:
    policy = namespace_policy({"succeeded": "1", "maxAge": "2h"}, Policy(), parse_duration)
    assert (policy.succeeded, policy.failed, policy.max_age) == (1, 25, timedelta(hours=2))
    runs = [
        run("a", "Succeeded", 1),
        run("b", "Succeeded", 2),
        run("c", "Succeeded", 3, namespace="qa"),
    ]
    decision = decide(runs, Policy(enabled=False), NOW, {"ci": policy})
    assert [r.name for r in decision.prune] == ["b"]
    for bad in ({"succeeded": "ten"}, {"maxAge": "1 day"}, {"keep": "1"}, {"enabled": "yes"}):
        with pytest.raises(ValueError, match="shipway-retention"):
            namespace_policy(bad, Policy(), parse_duration)
