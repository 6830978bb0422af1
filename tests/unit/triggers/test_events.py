"""Webhook payloads of each forge (fixtures written from their documentation), signatures,
and the decision whether and how a delivery runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipway.models.repository import RepositorySpec
from shipway.triggers import decide, events, signatures
from shipway.triggers.events import Event, Unhandled

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
SHA2 = "c7a3d2e1f0b9a8c7d6e5f4a3b2c1d0e9f8a7b6c5"


def _body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _hub_push(ref: str = "refs/heads/main", message: str = "Fix the build") -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": SHA,
        "deleted": False,
        "repository": {"full_name": "acme/app", "clone_url": "https://forge/acme/app.git"},
        "pusher": {"login": "octo", "name": "octo"},
        "head_commit": {
            "id": SHA,
            "message": message,
            "author": {"name": "Ann", "email": "ann@example.com", "username": "ann"},
            "committer": {"name": "Ann", "email": "ann@example.com", "username": "ann"},
        },
    }


def _hub_pull(head_repo: str = "acme/app", action: str = "opened") -> dict[str, Any]:
    return {
        "action": action,
        "number": 7,
        "repository": {"full_name": "acme/app"},
        "pull_request": {
            "number": 7,
            "title": "Add a feature",
            "user": {"login": "bob"},
            "head": {"ref": "feature", "sha": SHA2, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "repo": {"full_name": "acme/app"}},
        },
    }


GITLAB_PUSH = {
    "object_kind": "push",
    "ref": "refs/heads/main",
    "before": "0" * 40,
    "after": SHA,
    "checkout_sha": SHA,
    "user_name": "Ann",
    "user_username": "ann",
    "user_email": "ann@example.com",
    "project": {"path_with_namespace": "acme/app", "git_http_url": "https://gl/acme/app.git"},
    "commits": [
        {"id": "1" * 40, "message": "older", "author": {"name": "X", "email": "x@e"}},
        {"id": SHA, "message": "Fix the build", "author": {"name": "Ann", "email": "ann@e"}},
    ],
}
GITLAB_MR = {
    "object_kind": "merge_request",
    "user": {"username": "bob"},
    "project": {"path_with_namespace": "acme/app"},
    "object_attributes": {
        "iid": 12,
        "action": "update",
        "title": "Add a feature",
        "source_branch": "feature",
        "target_branch": "main",
        "source": {"path_with_namespace": "bob/app"},
        "target": {"path_with_namespace": "acme/app"},
        "last_commit": {"id": SHA2, "message": "wip", "author": {"name": "Bob", "email": "b@e"}},
    },
}
BITBUCKET_PUSH = {
    "actor": {"nickname": "ann"},
    "repository": {"full_name": "acme/app"},
    "push": {
        "changes": [
            {
                "old": {"type": "branch", "name": "main", "target": {"hash": "1" * 40}},
                "new": {
                    "type": "branch",
                    "name": "main",
                    "target": {
                        "hash": SHA,
                        "message": "Fix the build\n",
                        "author": {"raw": "Ann <ann@example.com>", "user": {"nickname": "ann"}},
                    },
                },
            }
        ]
    },
}
BITBUCKET_PR = {
    "repository": {"full_name": "acme/app"},
    "pullrequest": {
        "id": 3,
        "title": "Add a feature",
        "author": {"nickname": "bob"},
        "source": {
            "branch": {"name": "feature"},
            "commit": {"hash": SHA2},
            "repository": {"full_name": "bob/app"},
        },
        "destination": {"branch": {"name": "main"}, "repository": {"full_name": "acme/app"}},
    },
}


def test_github_push() -> None:
    got = events.parse(
        "github", {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}, _body(_hub_push())
    )
    assert got == Event(
        kind="push", repository="acme/app", ref="main", commit=SHA, delivery="d-1",
        message="Fix the build", committer_name="Ann", committer_email="ann@example.com",
        committer_username="ann",
    )  # fmt: skip


def test_gitea_tag_push_and_deleted_branch() -> None:
    got = events.parse("gitea", {"X-Gitea-Event": "push"}, _body(_hub_push("refs/tags/v1.2")))
    assert isinstance(got, Event)
    assert (got.kind, got.ref) == ("tag", "v1.2")
    deleted = {**_hub_push(), "deleted": True, "after": "0" * 40}
    got = events.parse("gitea", {"X-Gitea-Event": "push"}, _body(deleted))
    assert got == Unhandled("main was deleted")


def test_github_fork_pull_request() -> None:
    got = events.parse("github", {"X-GitHub-Event": "pull_request"}, _body(_hub_pull("bob/app")))
    assert isinstance(got, Event)
    assert (got.kind, got.ref, got.commit, got.pr_number, got.fork) == (
        "pull_request", "feature", SHA2, "7", True,
    )  # fmt: skip
    same = events.parse("github", {"X-GitHub-Event": "pull_request"}, _body(_hub_pull()))
    assert isinstance(same, Event)
    assert not same.fork
    closed = events.parse(
        "github", {"X-GitHub-Event": "pull_request"}, _body(_hub_pull(action="closed"))
    )
    assert isinstance(closed, Unhandled)
    assert "closed" in closed.reason


def test_gitea_pull_request_action_names() -> None:
    doc = _hub_pull(action="synchronized")
    got = events.parse("gitea", {"X-Gitea-Event": "pull_request"}, _body(doc))
    assert isinstance(got, Event)
    assert got.pr_number == "7"


def test_gitlab_push_picks_the_head_commit() -> None:
    got = events.parse("gitlab", {"X-Gitlab-Event": "Push Hook"}, _body(GITLAB_PUSH))
    assert isinstance(got, Event)
    assert (got.commit, got.message, got.committer_name, got.committer_username) == (
        SHA, "Fix the build", "Ann", "ann",
    )  # fmt: skip


def test_gitlab_merge_request_from_a_fork() -> None:
    got = events.parse("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}, _body(GITLAB_MR))
    assert isinstance(got, Event)
    assert (got.kind, got.pr_number, got.commit, got.fork) == ("pull_request", "12", SHA2, True)


def test_bitbucket_push_and_pull_request() -> None:
    got = events.parse("bitbucket", {"X-Event-Key": "repo:push"}, _body(BITBUCKET_PUSH))
    assert isinstance(got, Event)
    assert (got.ref, got.commit, got.committer_name, got.committer_email) == (
        "main", SHA, "Ann", "ann@example.com",
    )  # fmt: skip
    pr = events.parse("bitbucket", {"X-Event-Key": "pullrequest:created"}, _body(BITBUCKET_PR))
    assert isinstance(pr, Event)
    assert pr.fork
    assert pr.pr_number == "3"


@pytest.mark.parametrize(
    ("provider", "headers"),
    [
        ("github", {"X-GitHub-Event": "ping"}),
        ("gitea", {"X-Gitea-Event": "issues"}),
        ("gitlab", {"X-Gitlab-Event": "Issue Hook"}),
        ("bitbucket", {"X-Event-Key": "repo:fork"}),
    ],
)
def test_unhandled_events_say_why(provider: Any, headers: dict[str, str]) -> None:
    got = events.parse(provider, headers, b"{}")
    assert isinstance(got, Unhandled)
    assert "runs nothing" in got.reason


def test_not_json() -> None:
    assert events.parse("github", {"X-GitHub-Event": "push"}, b"\xff") == Unhandled(
        "the body is not JSON"
    )


@pytest.mark.parametrize("provider", ["github", "gitlab", "bitbucket", "gitea"])
def test_signatures(provider: Any) -> None:
    body, secret = b'{"a": 1}', b"s3cret"
    headers = signatures.sign(provider, body, secret)
    assert signatures.verify(provider, headers, body, secret)
    lower = {k.lower(): v for k, v in headers.items()}
    assert signatures.verify(provider, lower, body, secret)
    assert not signatures.verify(provider, headers, body, b"other")
    assert not signatures.verify(provider, {}, body, secret)
    assert not signatures.verify(provider, headers, body, b"")
    if provider != "gitlab":  # GitLab's token does not cover the body
        assert not signatures.verify(provider, headers, body + b" ", secret)


def test_github_signature_from_its_documentation() -> None:
    # GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    headers = {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    }
    assert signatures.verify("github", headers, b"Hello, World!", b"It's a Secret to Everybody")


def _spec(**kw: Any) -> RepositorySpec:
    doc = {
        "url": "http://gitea.example/acme/app.git",
        "provider": "gitea",
        "webhookSecret": {"name": "hook", "key": "secret"},
        **kw,
    }
    return RepositorySpec.model_validate(doc, strict=False)


def _push(**kw: Any) -> Event:
    base: dict[str, Any] = {"kind": "push", "repository": "acme/app", "ref": "main", "commit": SHA}
    return Event(**{**base, **kw})


def test_decide_runs_with_ci_values_and_a_stable_name() -> None:
    run = decide.decide(_spec(), "app", "uid-1", _push(message="hello", committer_name="Ann"))
    assert isinstance(run, decide.Run)
    assert run.ci["branch"] == "main"
    assert run.ci["commitId"] == SHA
    assert run.ci["commitMessage"] == "hello"
    assert run.ci["committerName"] == "Ann"
    again = decide.decide(_spec(), "app", "uid-1", _push(delivery="redelivered"))
    assert isinstance(again, decide.Run)
    assert again.name == run.name
    other = decide.decide(_spec(), "app", "uid-1", _push(commit=SHA2))
    assert isinstance(other, decide.Run)
    assert other.name != run.name
    assert len(run.name) <= 63
    assert run.name.startswith("app-")


@pytest.mark.parametrize("message", ["fix [skip ci]", "[CI SKIP] docs", "x\n\n[skip ci]"])
def test_skip_ci(message: str) -> None:
    got = decide.decide(_spec(), "app", "u", _push(message=message))
    assert isinstance(got, decide.Skip)
    assert "commit message" in got.reason


def test_branch_and_tag_globs() -> None:
    spec = _spec(branches=["main", "release/*", "!release/old*"], tags=["v*"])
    assert isinstance(decide.decide(spec, "a", "u", _push(ref="release/2")), decide.Run)
    skipped = decide.decide(spec, "a", "u", _push(ref="release/old-1"))
    assert isinstance(skipped, decide.Skip)
    assert "spec.branches" in skipped.reason
    assert isinstance(decide.decide(spec, "a", "u", _push(ref="feature")), decide.Skip)
    tag = decide.decide(spec, "a", "u", _push(kind="tag", ref="v1"))
    assert isinstance(tag, decide.Run)
    assert tag.ci["tag"] == "v1"
    assert "branch" not in tag.ci
    assert isinstance(decide.decide(_spec(), "a", "u", _push(kind="tag", ref="v1")), decide.Skip)


def test_pull_requests_and_forks() -> None:
    pr = _push(kind="pull_request", ref="feature", pr_number="7", head_repository="bob/app")
    run = decide.decide(_spec(), "a", "u", pr)
    assert isinstance(run, decide.Run)
    assert run.fork
    assert run.ci["prNumber"] == "7"
    assert run.branch_key == "pr:7"
    off = decide.decide(_spec(pullRequests=False), "a", "u", pr)
    assert isinstance(off, decide.Skip)
    assert "pullRequests" in off.reason


def test_a_delivery_for_another_repository_runs_nothing() -> None:
    got = decide.decide(_spec(), "a", "u", _push(repository="evil/app"))
    assert isinstance(got, decide.Skip)
    assert "evil/app" in got.reason
