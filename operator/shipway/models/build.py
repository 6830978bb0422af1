"""A service's ``build``: Codeship's keys, built by BuildKit from the pipeline's checkout.

Kept apart from :mod:`shipway.models.spec.services` (a service is long enough already). Codeship's
old spellings (``path``, ``dockerfile_path``) are accepted as they are; the compiler merges
them with the new ones and refuses the two spellings disagreeing.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from shipway.models.base import UNION_SCHEMA_NOTE, K8sName, Strict

RelativePath = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class SecretName(Strict):
    """A Secret of the Pipeline's namespace."""

    name: K8sName = Field(description="Name of the Secret in the Pipeline's namespace.")


class BuildSecretSource(Strict):
    """A Secret whose keys the build reads as BuildKit secrets."""

    secretRef: SecretName = Field(  # noqa: N815
        description="Every key becomes a BuildKit secret of that id (never a build arg)."
    )


class Build(Strict):
    """How to build the service's image (codeship-services.yml ``build``).

    The image is built by BuildKit from the pipeline's checkout (``spec.source``) and pushed
    to the cluster's registry; every pod that runs the service runs it by digest.
    """

    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None,
        description="Codeship's name for the built image (shown in status; the image itself "
        "goes to the cluster's registry under a name unique to the pipeline).",
    )
    context: RelativePath | None = Field(
        None, description="Build context: a folder of the checkout (default: its root)."
    )
    path: RelativePath | None = Field(None, description="Old spelling of context.")
    dockerfile: RelativePath | None = Field(
        None, description="The Dockerfile, relative to the context (default: Dockerfile)."
    )
    dockerfile_path: RelativePath | None = Field(None, description="Old spelling of dockerfile.")
    args: dict[str, Any] | list[str] | None = Field(
        None,
        json_schema_extra={
            UNION_SCHEMA_NOTE: True,
            "description": "Build arguments (Dockerfile ARG): a map {KEY: value} or a list of "
            "KEY=VALUE strings. Values are Codeship templates ({{ .Branch }}), rendered when "
            "the build runs (an unknown value renders empty). Visible in the image's history: "
            "keep secrets in argsFrom.",
        },
    )
    argsFrom: list[BuildSecretSource] = Field(  # noqa: N815
        default_factory=list,
        max_length=10,
        description="Secrets whose keys the build reads as BuildKit secrets "
        "(RUN --mount=type=secret,id=KEY,env=KEY): never in the image, its history or logs.",
    )
    target: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="Shipway extension: the Dockerfile stage to build (FROM ... AS name)."
    )
