"""A Codeship step as the spec holds it (codeship-steps.yml's keys, verbatim): a run step, a push
step or a serial, parallel or manual group, with the CEL rules that tell them apart."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from shipway.models.base import Duration, K8sName, Strict
from shipway.models.spec.fields import MAX_STEPS_PER_LIST, ServiceName, StringOrList, union


class Step(Strict):
    """A run step (service + command), a push step (type push: the service's built image to
    image_name) or a group of steps (type serial or parallel)."""

    model_config = ConfigDict(  # merged with Strict's
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.type) && self.type != 'push') == has(self.steps)",
                    "message": "a group needs both type and steps; a run or push step has no steps",
                },
                {
                    "rule": "!has(self.type) || self.type == 'push' || !has(self.retries)",
                    "message": "retries is set on run steps (and push steps), not on groups",
                },
                {
                    "rule": "!has(self.type) || self.type != 'push' || has(self.image_name)",
                    "message": "a push step needs image_name",
                },
            ]
        },
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="Shown in status and logs; generated from the command when missing."
    )
    type: Literal["serial", "parallel", "manual", "push"] | None = Field(
        None,
        description="serial or parallel makes this a group: its steps run one after another "
        "or all together; manual: a serial group that waits for approval (spec.approvals); "
        "push pushes the image built for the step's service.",
    )
    service: ServiceName | None = Field(
        None, description="Service the command runs in; on a group, the default for its steps."
    )
    command: StringOrList | None = Field(
        None,
        json_schema_extra=union(
            "Command to run; a string is split like a shell would (quotes respected) but not "
            "run through a shell. Omit it to run the service's default command.",
        ),
    )
    steps: list[Step] | None = Field(
        None, min_length=1, max_length=MAX_STEPS_PER_LIST, description="The group's steps."
    )
    tag: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None,
        description="Run only when the build tag (ci.tag, else ci.branch) matches: the whole name, "
        "or a regular expression when it contains ^ or $.",
    )
    exclude: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None, description="Skip when the build tag matches (same form as tag); wins over tag."
    )
    on_fail: list[Step] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="Steps run, in this step's service, when this step or group fails.",
    )
    timeout: Duration | None = Field(
        None, description="Stop the step's pod after this long (e.g. 10m); the step fails."
    )
    retries: int | None = Field(
        None, ge=0, le=10, description="Start a new attempt this many times when the step fails."
    )
    image_name: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None,
        description="Push steps: the repository to push to, [registry/][owner/]name (no tag).",
    )
    image_tag: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        None,
        description='Push steps: the tag, a Codeship template such as "{{ .Branch }}-'
        '{{ .ShortCommitID }}" (default latest); characters a tag cannot hold are stripped.',
    )
    registry: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None,
        description="Push steps: the registry (host or URL) when image_name does not start "
        "with one; Docker Hub when neither names one.",
    )
    dockercfgSecret: K8sName | None = Field(  # noqa: N815
        None,
        description="A kubernetes.io/dockerconfigjson Secret: a push step's credentials; on a "
        "run step an imagePullSecret of its pod; on a group, the default of its steps.",
    )
    dockercfg_service: ServiceName | None = Field(
        None,
        description="Push steps (or a group, for its push steps): a service run before the "
        "push with a file path as its argument, writing the registry credentials there "
        "(Codeship's generator services).",
    )


Step.model_rebuild()
