"""Where a pipeline's files come from: ``spec.source`` (a git checkout or an upload).

The source is cloned or streamed into the root of the workspace claim before the first step,
so ``./`` in a service's ``volumes`` is the checkout, as on Codeship. Credentials are never
part of the spec: a git source names a Secret, mounted as files into the checkout pod only.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from shipway.models.base import QUANTITY_PATTERN, Duration, K8sName, Strict

GIT_URL_PATTERN = (
    r"^((https?|ssh|git)://[^\s@/]+(@[^\s@/]+)?(/[^\s]*)?"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$"
)
"""https://, http://, ssh://, git:// or scp-like ``user@host:path``; no whitespace."""
GIT_REVISION_PATTERN = r"^[^\s~^:?*\[\\]+$"
"""What git accepts in a ref name or an object name, loosely (no spaces or ref metacharacters)."""


class GitSource(Strict):
    """A git repository cloned into the workspace by a checkout pod."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!self.url.matches('^https?://[^/@]*@')",
                    "message": "credentials in an http(s) URL would be shown in status and "
                    "logs: put them in a Secret and set secretName",
                },
                {
                    "rule": "!self.url.matches('^[a-z]+://[^/@]*:[^/@]*@')",
                    "message": "a password in the URL would be shown in status and logs: "
                    "put it in a Secret and set secretName",
                },
            ]
        },
    )

    url: Annotated[str, StringConstraints(pattern=GIT_URL_PATTERN, max_length=2048)] = Field(
        description="Repository URL: https://, http://, ssh://, git:// or user@host:path. "
        "Credentials go in the Secret named by secretName, never in the URL."
    )
    revision: (
        Annotated[str, StringConstraints(pattern=GIT_REVISION_PATTERN, max_length=255)] | None
    ) = Field(
        None,
        description="Branch, tag or full commit id to check out (default: the remote's "
        "default branch).",
    )
    depth: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Commits of history to fetch (default 1; 0 fetches the whole history).",
    )
    submodules: bool = Field(False, description="Also check out submodules, recursively.")
    secretName: K8sName | None = Field(  # noqa: N815
        None,
        description="Secret of the Pipeline's namespace with the credentials: ssh-privatekey "
        "(and optional known_hosts) for ssh, or username and password for http(s).",
    )
    maxSize: (  # noqa: N815
        Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=32)] | None
    ) = Field(
        None,
        description="Fail the checkout when a file it writes (the fetched pack above all) "
        "grows beyond this (default and ceiling: the operator's limit, 2Gi unless configured).",
    )


class UploadSource(Strict):
    """Files streamed into the workspace by ``shipway run --dir`` (or ``--source DIR``)."""

    timeout: Duration | None = Field(
        None,
        description="Fail the pipeline when the upload has not completed after this long "
        "(default 30m).",
    )


class Source(Strict):
    """The pipeline's files, placed at the root of the workspace before the first step."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.git) != has(self.upload)",
                    "message": "set exactly one of git and upload",
                }
            ]
        },
    )

    git: GitSource | None = Field(None, description="Clone a git repository.")
    upload: UploadSource | None = Field(
        None, description="Receive the files from `shipway run --dir`."
    )
