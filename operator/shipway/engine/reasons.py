"""Every reason Shipway writes into a step's or a pipeline's status, and its Events' reasons.

Typed constants in one place (as Tekton keeps its reasons): the status, the Events, the
command line and the tests name the same strings. ``StrEnum`` members are plain strings, so
they compare equal to what a status read back from the cluster holds.
"""

from __future__ import annotations

from enum import StrEnum


class StepReason(StrEnum):
    """Why a step (or one attempt of it) is in its phase."""

    COMPLETED = "Completed"
    ERROR = "Error"
    POD_FAILED = "PodFailed"
    POD_DELETED = "PodDeleted"
    POD_EVICTED = "PodEvicted"
    POD_REJECTED = "PodRejected"
    RETRYING = "Retrying"
    WAITING_FOR_RETRY = "WaitingForRetry"
    """The next attempt waits for the previous attempt's pod (named in the message) to go."""
    RETRY_BLOCKED = "RetryBlocked"
    """The previous attempt's pod did not go within the operator's retry grace: the step fails."""
    FILTERED_OUT = "FilteredOut"
    NOT_NEEDED = "NotNeeded"
    PREVIOUS_STEP_FAILED = "PreviousStepFailed"
    NOT_RUN = "NotRun"
    CANCELLED = "Cancelled"
    PIPELINE_TIMEOUT = "PipelineTimeout"
    BUILD_FAILED = "BuildFailed"
    """A build's own failure (BuildKit's lines in the message), or a step's whose image it was."""
    BUILD_TIMEOUT = "BuildTimeout"
    BUILDER_NOT_CONFIGURED = "BuilderNotConfigured"
    PUSH_DISABLED = "PushDisabled"
    """A push step of a pipeline with ``spec.push: false`` (``shipway run`` without --push)."""
    PUSH_FAILED = "PushFailed"
    """The registry refused the push (its answer in the message), or its credentials failed."""
    INVALID_IMAGE_TAG = "InvalidImageTag"
    """A push step's image_tag rendered to nothing usable in this build."""
    SOURCE_FAILED = "SourceFailed"
    """The checkout or upload failed: no step ran."""
    UNSCHEDULABLE = "Unschedulable"
    POD_NAME_CONFLICT = "PodNameConflict"
    """A pod of the step's name exists and belongs to someone else."""
    EXCEEDED_QUOTA = "ExceededResourceQuota"
    """The pod waits: a ResourceQuota refused it; tried again until the quota allows."""
    THROTTLED = "Throttled"
    """The step waits: the pipeline already runs as many pods as the operator allows."""
    WAITING_FOR_SERVICE = "WaitingForService"
    """The step's pod runs, its container waits for a linked service's health check to pass."""
    NAMESPACE_THROTTLED = "NamespaceThrottled"
    """The step waits: its namespace already runs as many step pods as the operator allows
    (all its pipelines together); it starts when a slot frees, pipelines taking turns."""
    REJECTED = "Rejected"
    """Not run: a manual gate before it (or holding it) was rejected."""
    APPROVAL_TIMEOUT = "ApprovalTimeout"
    """Not run: a manual gate before it waited longer than its approval timeout."""


class SourceReason(StrEnum):
    """Why a checkout or upload failed: the preparation scripts (engine/pods/scripts.py) write
    these words into their report, and the planner names the timeouts."""

    CHECKOUT_FAILED = "CheckoutFailed"
    REVISION_NOT_FOUND = "RevisionNotFound"
    SUBMODULE_FAILED = "SubmoduleFailed"
    SOURCE_TOO_LARGE = "SourceTooLarge"
    UPLOAD_FAILED = "UploadFailed"
    UPLOAD_INTERRUPTED = "UploadInterrupted"
    SCRIPT_FAILED = "ScriptFailed"
    """The script stopped without writing a report of its own."""
    CHECKOUT_TIMEOUT = "CheckoutTimeout"
    UPLOAD_TIMEOUT = "UploadTimeout"


class PodReason(StrEnum):
    """Reasons Kubernetes writes on a pod (the kubelet, the scheduler) that the operator reads
    and passes on into a step's status."""

    EVICTED = "Evicted"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    DISRUPTION_TARGET = "DisruptionTarget"
    UNSCHEDULABLE = "Unschedulable"


class PipelineReason(StrEnum):
    """The reason of a pipeline's ``Succeeded`` condition."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
    EXCEEDED_QUOTA = "ExceededResourceQuota"
    """Still running, but waiting: a ResourceQuota refused its claim or a pod."""
    CLAIM_REJECTED = "ClaimRejected"
    CLAIM_NAME_CONFLICT = "ClaimNameConflict"
    CLAIM_NOT_FOUND = "ClaimNotFound"
    CLAIM_LOST = "ClaimLost"
    """The workspace claim was deleted (or is being deleted, or lost its volume) while the
    pipeline ran: it fails at once, naming the claim."""
    SERVICE_ACCOUNT_NOT_ALLOWED = "ServiceAccountNotAllowed"
    DOCKER_NOT_ALLOWED = "DockerNotAllowed"
    """``add_docker`` where the operator's configuration runs no daemon (engine/docker.py)."""
    STATUS_TOO_LARGE = "StatusTooLarge"
    STATUS_REJECTED = "StatusRejected"
    INTERNAL_ERROR = "InternalError"
    """The operator failed on this pipeline (a bug): it is failed rather than left waiting."""
    AWAITING_APPROVAL = "AwaitingApproval"
    REJECTED = "Rejected"
    APPROVAL_TIMEOUT = "ApprovalTimeout"
    """A manual gate waited longer than its approval timeout: the pipeline failed."""


class EventReason(StrEnum):
    """The reason of an Event recorded on a Pipeline."""

    STEP_STARTED = "StepStarted"
    STEP_SUCCEEDED = "StepSucceeded"
    STEP_FAILED = "StepFailed"
    STEP_CANCELLED = "StepCancelled"
    SOURCE_READY = "SourceReady"
    SOURCE_FAILED = "SourceFailed"
    INVALID_SPEC = "InvalidSpec"
    BUILD_SUCCEEDED = "BuildSucceeded"
    BUILD_FAILED = "BuildFailed"
    PIPELINE_SUCCEEDED = "PipelineSucceeded"
    PIPELINE_FAILED = "PipelineFailed"
    PIPELINE_CANCELLED = "PipelineCancelled"
    FOREIGN_POD = "ForeignPod"
    """A pod names the pipeline as its owner but the operator did not create it: ignored."""
    PIPELINE_REJECTED = "PipelineRejected"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    APPROVAL_TIMEOUT = "ApprovalTimeout"
