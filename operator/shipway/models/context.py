"""Where a pipeline runs and what it builds: its workspace claim and its CI context."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shipway.models.base import K8S_NAME_PATTERN, QUANTITY_PATTERN, LongText, ShortText, Strict


class Workspace(Strict):
    """The PersistentVolumeClaim shared by every step: volumes are subPaths of it.

    Created when a service mounts a volume or the pipeline has a source; otherwise there is
    no claim.
    """

    size: Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)] = Field(
        "1Gi", description="Requested storage."
    )
    storageClassName: (  # noqa: N815
        Annotated[str, StringConstraints(pattern=r"^$|" + K8S_NAME_PATTERN, max_length=253)] | None
    ) = Field(
        None,
        description='StorageClass of the claim: unset for the cluster default, "" for a '
        "pre-provisioned volume without a class.",
    )
    accessModes: list[Literal["ReadWriteOnce", "ReadWriteMany"]] = Field(  # noqa: N815
        default_factory=lambda: ["ReadWriteOnce"],  # type: ignore[arg-type]
        min_length=1,
        max_length=2,
        description="ReadWriteOnce pins all of a pipeline's pods to one node; ReadWriteMany does not.",
    )
    keep: bool = Field(
        False,
        description="Keep the claim when the Pipeline is deleted (for debugging, or for a "
        "later pipeline to reuse through claimName).",
    )
    claimName: (  # noqa: N815
        Annotated[str, StringConstraints(pattern=K8S_NAME_PATTERN, max_length=253)] | None
    ) = Field(
        None,
        description="Use this existing PersistentVolumeClaim of the namespace (e.g. one kept "
        "by an earlier pipeline) instead of creating one; size, storageClassName and keep then describe nothing "
        "(accessModes still says whether the steps must share a node). The operator never "
        "deletes it.",
    )


class CIContext(Strict):
    """What is being built; becomes Codeship's CI_* variables in every step."""

    branch: ShortText | None = Field(
        None, description="CI_BRANCH; the build tag when tag is unset."
    )
    tag: ShortText | None = Field(None, description="Git tag being built; the build tag when set.")
    commitId: ShortText | None = Field(None, description="CI_COMMIT_ID.")  # noqa: N815
    commitMessage: LongText | None = Field(None, description="CI_COMMIT_MESSAGE.")  # noqa: N815
    commitDescription: LongText | None = Field(  # noqa: N815
        None, description="CI_COMMIT_DESCRIPTION."
    )
    committerName: ShortText | None = Field(None, description="CI_COMMITTER_NAME.")  # noqa: N815
    committerEmail: ShortText | None = Field(None, description="CI_COMMITTER_EMAIL.")  # noqa: N815
    committerUsername: ShortText | None = Field(  # noqa: N815
        None, description="CI_COMMITTER_USERNAME."
    )
    repoName: ShortText | None = Field(None, description="CI_REPO_NAME.")  # noqa: N815
    projectId: ShortText | None = Field(None, description="CI_PROJECT_ID.")  # noqa: N815
    buildId: ShortText | None = Field(  # noqa: N815
        None, description="CI_BUILD_ID (the Pipeline's UID when unset)."
    )
    prNumber: ShortText | None = Field(None, description="CI_PR_NUMBER.")  # noqa: N815
    pullRequest: ShortText | None = Field(None, description="CI_PULL_REQUEST.")  # noqa: N815
