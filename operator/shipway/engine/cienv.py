"""Codeship's ``CI_*`` variables of a pipeline's steps (pure).

Apart from the pods, so that the planner can render a push step's tag from the very values
its steps see, without importing the pod builders.
"""

from __future__ import annotations

from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import parse_time
from shipway.models import SourceStatus


def ci_environment(
    ref: PipelineRef, compiled: CompiledPipeline, source: SourceStatus | None = None
) -> list[tuple[str, str]]:
    """Codeship's CI_* variables, plus CI=true and CI_NAME=shipway.

    What the checkout found (commit, branch, message, committer) fills the variables
    ``spec.ci`` leaves unset.
    """
    ci = compiled.spec.ci
    created = parse_time(ref.created_at)
    got = source or SourceStatus(kind="none")
    repo = getattr(compiled.source, "repo_name", None)
    # Codeship's: set once a manual gate was approved (the steps after it see it).
    approved = any(a.decision == "Approved" for a in compiled.spec.approvals)
    pairs: list[tuple[str, str | None]] = [
        ("CI", "true"),
        ("CI_NAME", "shipway"),
        ("CI_BUILD_ID", ci.buildId or ref.uid),
        ("CI_PROJECT_ID", ci.projectId),
        ("CI_REPO_NAME", ci.repoName or repo),
        ("CI_BRANCH", ci.branch or got.branch or got.tag),
        ("CI_COMMIT_ID", ci.commitId or got.commit),
        ("CI_COMMIT_MESSAGE", ci.commitMessage or got.commit_message),
        ("CI_COMMIT_DESCRIPTION", ci.commitDescription),
        ("CI_COMMITTER_NAME", ci.committerName or got.committer_name),
        ("CI_COMMITTER_EMAIL", ci.committerEmail or got.committer_email),
        ("CI_COMMITTER_USERNAME", ci.committerUsername),
        ("CI_PR_NUMBER", ci.prNumber),
        ("CI_PULL_REQUEST", ci.pullRequest),
        ("CI_TIMESTAMP", str(int(created.timestamp())) if created else None),
        ("CI_STRING_TIME", ref.created_at),
        ("CI_BUILD_APPROVED", "true" if approved else None),
    ]
    return [(k, v) for k, v in pairs if v is not None]
