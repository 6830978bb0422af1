"""The Pipeline status: what happened, written by the operator only.

It is also the operator's memory of finished steps, so that a pod deleted after its step ended
cannot change the result. Kept compact and bounded: every text that comes from outside the spec
(a kubelet's message, a reason) is clipped to a byte budget here, so the largest status a
Pipeline can ever have follows from its spec (:mod:`shipway.compiler.limits` refuses a spec whose
worst case would not fit in etcd beside it).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

MESSAGE_BYTES = 512
"""Most JSON bytes a step's or an attempt's ``message`` takes (the step's Event has more)."""
REASON_BYTES = 128
PIPELINE_MESSAGE_BYTES = 2048


def json_size(text: str) -> int:
    """An upper bound of the bytes ``text`` takes as a JSON string, quotes included.

    The API server's encoder writes ``<``, ``>`` and ``&`` as ``\\u003c`` (6 bytes); Python's
    ``ensure_ascii`` form already counts every other escape and non-ASCII character at least
    at its stored size.
    """
    return len(json.dumps(text)) + 5 * (text.count("<") + text.count(">") + text.count("&"))


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut (marked with …) so that :func:`json_size` is at most ``limit``."""
    if text is None or len(text) * 12 + 2 <= limit:  # no character takes more than 12
        return text
    size = json_size(text)
    if size <= limit:
        return text
    cut = text
    while size > limit:
        cut = cut[: max(0, len(cut) - max(1, (size - limit) // 12))]
        size = json_size(cut + "\u2026")
    return cut + "\u2026"


def _clipped(limit: int) -> AfterValidator:
    return AfterValidator(lambda text: clip(text, limit))


Message = Annotated[str | None, _clipped(MESSAGE_BYTES)]
Reason = Annotated[str | None, _clipped(REASON_BYTES)]
PipelineMessage = Annotated[str | None, _clipped(PIPELINE_MESSAGE_BYTES)]


class PipelinePhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    AWAITING_APPROVAL = "AwaitingApproval"
    """Paused at a manual gate: every earlier step is over, nothing runs."""
    REJECTED = "Rejected"
    """A manual gate was rejected: its steps and every later one were skipped."""

    @property
    def terminal(self) -> bool:
        """Succeeded, Failed, Cancelled or Rejected: the pipeline is over for good."""
        return self in (
            PipelinePhase.SUCCEEDED,
            PipelinePhase.FAILED,
            PipelinePhase.CANCELLED,
            PipelinePhase.REJECTED,
        )


class StepPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (StepPhase.PENDING, StepPhase.RUNNING)


class _Status(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class StepAttempt(_Status):
    """An earlier attempt of a retried step."""

    attempt: int = Field(description="0 for the first run, then 1, 2, ...")
    pod: str = Field(description="Pod of this attempt.")
    pod_uid: Reason = Field(None, description="Its UID, from the operator's create.")
    phase: StepPhase = Field(description="How the attempt ended.")
    exit_code: int | None = Field(None, description="Exit code of the step's container.")
    reason: Reason = Field(None, description="Why it ended, e.g. Error, DeadlineExceeded.")
    message: Message = Field(None, description="Details.")
    created_at: str | None = Field(None, description="When its pod was created.")
    started_at: str | None = Field(None, description="When the container started.")
    finished_at: str | None = Field(None, description="When it ended.")


class StepStatus(_Status):
    """One run step (groups are visible through ``group``)."""

    id: str = Field(description="Stable step number, also the pod label shipway.dev/step.")
    name: str = Field(description="The step's name (generated from the command when unset).")
    group: str | None = Field(None, description="Path of enclosing group names, joined by '/'.")
    service: str = Field(description="Service the command runs in.")
    on_fail_of: str | None = Field(
        None, description="Set on on_fail steps: the id or group path whose failure runs them."
    )
    phase: StepPhase = Field(StepPhase.PENDING, description="Pending, Running, Succeeded, ...")
    pod: str | None = Field(None, description="Pod of the current attempt.")
    pod_uid: Reason = Field(
        None,
        description="Its UID, recorded from the operator's create: no other pod of the name "
        "is the step's.",
    )
    attempt: int = Field(0, description="Current attempt number.")
    exit_code: int | None = Field(None, description="Exit code of the step's container.")
    reason: Reason = Field(None, description="Why the step is in its phase.")
    message: Message = Field(None, description="Details, e.g. the kubelet's message.")
    created_at: str | None = Field(
        None, description="When the current attempt's pod was created (the step was started)."
    )
    started_at: str | None = Field(
        None,
        description="When the step's container started, once known (from then on it ran; "
        "before, it waited for its claim, node, image and linked services).",
    )
    finished_at: str | None = Field(None, description="When the step ended.")
    image: Message = Field(
        None, description="Push steps: the reference pushed to (name:tag), from its start."
    )
    digest: Reason = Field(
        None, description="Push steps: the digest the registry holds under that tag."
    )
    attempts: list[StepAttempt] = Field(
        default_factory=list, description="Earlier attempts of a retried step."
    )


class PrepStatus(_Status):
    """Work done in a pod before the steps that need it: the checkout (later, image builds)."""

    phase: StepPhase = Field(StepPhase.PENDING, description="Pending, Running, Succeeded, ...")
    pod: str | None = Field(None, description="The pod doing the work.")
    pod_uid: Reason = Field(None, description="Its UID, recorded from the operator's create.")
    reason: Reason = Field(None, description="Why it is in its phase.")
    message: Message = Field(None, description="Details, e.g. git's own error message.")
    created_at: str | None = Field(None, description="When its pod was created.")
    started_at: str | None = Field(None, description="When its container started, once known.")
    finished_at: str | None = Field(None, description="When it ended.")


class SourceStatus(PrepStatus):
    """The checkout (or upload) that fills the workspace before the first step."""

    kind: str = Field(description="git or upload.")
    commit: Reason = Field(None, description="The commit checked out.")
    branch: Message = Field(None, description="The branch checked out, if any.")
    tag: Message = Field(None, description="The tag checked out, if any.")
    commit_message: Message = Field(None, description="The commit's message (shortened).")
    committer_name: Message = Field(None, description="The commit's committer.")
    committer_email: Message = Field(None, description="The committer's email address.")
    repo_name: Message = Field(None, description="The repository's name, from its URL.")
    files: int | None = Field(None, description="Files received (uploads).")
    bytes: int | None = Field(None, description="Bytes received (uploads).")


HEALTHCHECK_TEST_BYTES = 1024
"""Most JSON bytes of a built image's HEALTHCHECK command kept in the status."""


def _bounded_test(test: list[str]) -> list[str]:
    size = len(json.dumps(test)) + 5 * sum(t.count("<") + t.count(">") + t.count("&") for t in test)
    if size > HEALTHCHECK_TEST_BYTES:
        raise ValueError(f"the command takes {size} bytes; at most {HEALTHCHECK_TEST_BYTES}")
    return test


class ImageHealthcheck(_Status):
    """A built image's ``HEALTHCHECK``, read from its configuration after the build.

    Kept so that every later pod linking the service gates on it (a startupProbe) without
    asking the registry again; durations in seconds, None where the image leaves Docker's
    default (Shipway's healthcheck defaults apply then).
    """

    test: Annotated[list[str], AfterValidator(_bounded_test)] = Field(
        description='The check: ["CMD", ...] or ["CMD-SHELL", "..."], as the image has it.'
    )
    interval: float | None = Field(None, description="Seconds between checks.")
    timeout: float | None = Field(None, description="Seconds one check may take.")
    start_period: float | None = Field(None, description="Seconds before failures count.")
    retries: int | None = Field(None, description="Failed checks before giving up.")


class BuildStatus(PrepStatus):
    """One service's image build: its result and the digest every pod of the service runs.

    On failure ``message`` holds BuildKit's own error lines.
    """

    service: str = Field(description="The service whose image is built.")
    image: Message = Field(None, description="Repository the image is pushed to.")
    digest: Reason = Field(None, description="The pushed image's digest (sha256:...).")
    cached_steps: int | None = Field(None, description="Build steps served from the cache.")
    total_steps: int | None = Field(None, description="Build steps in all.")
    healthcheck: ImageHealthcheck | None = Field(
        None,
        description="The image's HEALTHCHECK (read when a step links the service): it gates "
        "the steps of services that link or depend on this one.",
    )


class Condition(_Status):
    """A Kubernetes-style condition (``kubectl wait --for=condition=Succeeded``)."""

    type: str
    status: str = Field(description="True, False or Unknown.")
    reason: Reason = None
    message: PipelineMessage = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class GatePhase(StrEnum):
    WAITING = "Waiting"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    TIMED_OUT = "TimedOut"


class GateStatus(_Status):
    """A manual gate the pipeline reached: since when it waited, and who decided when."""

    gate: str = Field(description="Its place in the spec (what spec.approvals[].gate names).")
    name: str = Field(description="The manual group's name.")
    phase: GatePhase = Field(description="Waiting, Approved, Rejected or TimedOut.")
    waiting_since: str | None = Field(None, description="When the pipeline reached it.")
    user: Message = Field(None, description="Who decided (the API server's name for them).")
    decided_at: str | None = Field(
        None, description="When the decision was written (the API server's time of the write)."
    )
    message: Reason = Field(None, description="Details, e.g. the timeout that ran out.")


class PipelineStatus(_Status):
    """What the operator observed and did."""

    phase: PipelinePhase = Field(PipelinePhase.PENDING, description="Overall phase.")
    progress: str | None = Field(None, description="Finished steps out of all, e.g. 3/5.")
    current_step: Annotated[str | None, _clipped(PIPELINE_MESSAGE_BYTES)] = Field(
        None, description="Names of the running steps."
    )
    message: PipelineMessage = Field(None, description="Why the pipeline is in its phase.")
    started_at: str | None = Field(None, description="When the first step was started.")
    finished_at: str | None = Field(None, description="When the pipeline ended.")
    node_name: str | None = Field(
        None, description="Node all step pods run on (ReadWriteOnce workspaces)."
    )
    observed_generation: int | None = Field(None, description="Spec generation last acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="Succeeded condition.")
    source: SourceStatus | None = Field(
        None, description="The checkout or upload done before the first step."
    )
    steps: list[StepStatus] = Field(default_factory=list, description="Every run step.")
    builds: list[BuildStatus] = Field(
        default_factory=list, description="Image builds of services with build."
    )
    approvals: list[GateStatus] = Field(
        default_factory=list, description="Manual gates reached: waiting, or who decided when."
    )
