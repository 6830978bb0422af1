"""The ``Repository`` resource: a forge's repository whose pushes run pipelines (issue 26).

The spec says where the code lives, which forge sends its webhooks, which Secrets hold the
webhook secret, the clone credentials, the status token and ``codeship.aes``, and which
events run. The status is bounded: the last :data:`MAX_DELIVERIES` deliveries and the last
run of at most :data:`MAX_BRANCHES` branches, every text clipped by its type.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shipway.models.base import K8sName, Strict
from shipway.models.source import GIT_URL_PATTERN

Provider = Literal["github", "gitlab", "bitbucket", "gitea"]
ConcurrencyPolicy = Literal["supersede", "queue", "none"]
Glob = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Text = Annotated[str, StringConstraints(max_length=253)]
Message = Annotated[str, StringConstraints(max_length=1024)]
MAX_DELIVERIES = 10
MAX_BRANCHES = 20
MAX_GLOBS = 50
MAX_WARM = 10


class SecretKeyRef(Strict):
    """One key of a Secret of the Repository's namespace."""

    name: K8sName = Field(description="The Secret's name.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = Field(
        description="The key in the Secret's data."
    )


class RepositorySpec(Strict):
    """Where the code is, who may call, what runs."""

    url: Annotated[str, StringConstraints(pattern=GIT_URL_PATTERN, max_length=2048)] = Field(
        description="Clone URL (https:// or ssh); the Pipelines' spec.source.git.url."
    )
    provider: Provider = Field(description="The forge: github, gitlab, bitbucket or gitea.")
    apiURL: (  # noqa: N815
        Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)] | None
    ) = Field(
        None,
        description="The forge's API root (default: the public service's, e.g. "
        "https://api.github.com; for gitea: the clone URL's origin + /api/v1).",
    )
    fullName: (  # noqa: N815
        Annotated[str, StringConstraints(pattern=r"^[^\s/]+(/[^\s/]+)+$", max_length=512)] | None
    ) = Field(
        None,
        description="owner/name on the forge (default: the clone URL's path without .git): "
        "what the webhook's payload must name.",
    )
    webhookSecret: SecretKeyRef = Field(  # noqa: N815
        description="The webhook secret (HMAC key, or GitLab's token): a delivery it does "
        "not verify is refused with 401."
    )
    cloneSecretName: K8sName | None = Field(  # noqa: N815
        None,
        description="Secret with the clone credentials (username and password, or "
        "ssh-privatekey): spec.source.git.secretName of every Pipeline, and how the Codeship "
        "files are read at the pushed commit.",
    )
    statusToken: SecretKeyRef | None = Field(  # noqa: N815
        None, description="API token that may set commit statuses (none: no status is sent)."
    )
    aesKey: SecretKeyRef | None = Field(  # noqa: N815
        None, description="The project's codeship.aes, decrypting its encrypted files."
    )
    branches: list[Glob] = Field(
        default_factory=lambda: ["*"],
        max_length=MAX_GLOBS,
        description="Branches whose pushes run (shell globs; '!' first excludes).",
    )
    tags: list[Glob] = Field(
        default_factory=list,
        max_length=MAX_GLOBS,
        description="Tags whose pushes run (shell globs; none by default).",
    )
    pullRequests: bool = Field(  # noqa: N815
        True, description="Run opened and updated pull requests (forks without Secrets)."
    )
    concurrency: ConcurrencyPolicy = Field(
        "supersede",
        description="A newer push of a branch: supersede (cancel the running pipeline), "
        "queue (start when it ends) or none (run both).",
    )
    serviceAccountName: K8sName | None = Field(  # noqa: N815
        None, description="spec.serviceAccountName of the Pipelines created."
    )
    warmWorkspaces: int = Field(  # noqa: N815
        1,
        ge=0,
        le=MAX_WARM,
        description="Workspace claims kept provisioned ahead of pushes: a push's pipeline "
        "takes one (each is used once, then deleted with its Pipeline) instead of waiting "
        "for a new volume. 0: none.",
    )


class Delivery(Strict):
    """One webhook delivery as the receiver handled it."""

    id: Text
    event: Text
    at: Text
    result: Literal["created", "exists", "skipped", "ignored", "failed", "queued"]
    message: Message = ""
    pipeline: Text = ""


class BranchRun(Strict):
    """The last pipeline of one branch (or tag, or pull request) and its commit status."""

    branch: Text
    commit: Text
    pipeline: Text
    phase: Text = ""
    status: Text = Field("", description="What the forge was last told (or why it refused).")


class QueuedRun(Strict):
    """A push that waits for the running pipeline of its branch (concurrency: queue): the
    event, kept here so that any receiver replica, or one restarted, creates its Pipeline
    when that one ends."""

    branch: Text = Field(description="The branch key: the branch, tag:<name> or pr:<number>.")
    pipeline: Text = Field(description="The Pipeline it will be (the name is deterministic).")
    kind: Literal["push", "tag", "pull_request"]
    ref: Text
    commit: Text
    delivery: Text = ""
    message: Message = ""
    committerName: Text = ""  # noqa: N815
    committerEmail: Text = ""  # noqa: N815
    committerUsername: Text = ""  # noqa: N815
    prNumber: Text = ""  # noqa: N815
    baseRef: Text = ""  # noqa: N815
    headRepository: Text = ""  # noqa: N815
    repository: Text = Field("", description="owner/name the delivery named.")


class RepositoryStatus(Strict):
    """What the receiver and the status reporter did (written by the operator only)."""

    deliveries: list[Delivery] = Field(default_factory=list, max_length=MAX_DELIVERIES)
    branches: list[BranchRun] = Field(default_factory=list, max_length=MAX_BRANCHES)
    queued: list[QueuedRun] = Field(
        default_factory=list,
        max_length=MAX_BRANCHES,
        description="Pushes waiting for their branch's running pipeline (the newest per branch).",
    )
    lastDelivery: Text = ""  # noqa: N815
    lastResult: Text = ""  # noqa: N815
    statusError: Message = Field(  # noqa: N815
        "", description="The forge's last refusal of a commit status, retried with backoff."
    )
