"""Manual approval (Codeship's ``type: manual``): who may decide, the decisions, their record.

A decision is written by the approver into ``spec.approvals`` (``shipway approve``, or
``kubectl patch``) under their own user name; a ValidatingAdmissionPolicy shipped with the
CRD (:data:`APPROVAL_RULES`) admits the write only when that name is the one the API server
authenticated (``request.userInfo.username``), the caller holds the RBAC verb ``approve`` on
the Pipeline, is one of ``spec.approvers`` when that is set, and the gate named is the one
waiting. So what the operator reads there was checked by the API server itself, also while
the operator is down, and nothing a caller writes can name someone else.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shipway import GROUP, PLURAL
from shipway.models.base import Strict

GATE_PATTERN = r"^spec\.steps(\[[0-9]{1,3}\](\.steps)?)+$"
UserName = Annotated[str, StringConstraints(min_length=1, max_length=512)]
MAX_APPROVERS = 50
MAX_GATES = 20
"""Manual groups in one Pipeline at most (and so entries of ``spec.approvals``)."""
APPROVE_VERB = "approve"
"""The RBAC verb on ``pipelines`` that lets a user decide a manual gate (with ``patch``)."""


class Approvers(Strict):
    """Who may decide, besides what RBAC allows: a user named here, or a member of a group."""

    users: list[UserName] = Field(
        default_factory=list,
        max_length=MAX_APPROVERS,
        description="User names as the API server knows them (kubectl auth whoami).",
    )
    groups: list[UserName] = Field(
        default_factory=list, max_length=MAX_APPROVERS, description="Group names."
    )


class Approval(Strict):
    """One decision on a manual gate, written by the approver (checked by the API server)."""

    gate: Annotated[str, StringConstraints(pattern=GATE_PATTERN, max_length=256)] = Field(
        description="The manual group decided: its place in the spec, e.g. spec.steps[2] "
        "(status.approvals[].gate of the waiting gate)."
    )
    decision: Literal["Approved", "Rejected"] = Field(description="Approved or Rejected.")
    user: UserName = Field(
        description="Who decided: must be the caller's own user name, as the API server "
        "authenticated it (the admission policy refuses anything else)."
    )


def _pipeline_check() -> str:
    return (
        f"authorizer.group('{GROUP}').resource('{PLURAL}')"
        ".namespace(object.metadata.namespace).name(object.metadata.name)"
        f".check('{APPROVE_VERB}').allowed()"
    )


APPROVAL_VARIABLES = [
    {"name": "old", "expression": "has(oldObject.spec.approvals) ? oldObject.spec.approvals : []"},
    {"name": "new", "expression": "has(object.spec.approvals) ? object.spec.approvals : []"},
    {"name": "changed", "expression": "variables.new != variables.old"},
    {"name": "last", "expression": "variables.new[size(variables.new) - 1]"},
]
"""CEL variables of the approval policy (UPDATE only; on CREATE approvals must be empty).

Variables are evaluated lazily, so ``last`` is read only where ``new`` is not empty."""

APPROVAL_RULES = [
    {
        "expression": "!variables.changed || (size(variables.new) == size(variables.old) + 1"
        " && variables.old.all(a, a in variables.new) && !(variables.last in variables.old))",
        "message": "spec.approvals: add one decision at a time; earlier ones cannot change",
    },
    {
        "expression": "!variables.changed || size(variables.new) == 0 || variables.last.user == request.userInfo.username",
        "messageExpression": "'spec.approvals: a decision is recorded under your own user name, '"
        " + request.userInfo.username + ', not ' + string(variables.last.user)",
        "reason": "Forbidden",
    },
    {
        "expression": "!variables.changed || " + _pipeline_check(),
        "messageExpression": "request.userInfo.username + ' may not approve or reject "
        'Pipelines here: that needs the RBAC verb "' + APPROVE_VERB + '" on '
        f"{PLURAL}.{GROUP}'",
        "reason": "Forbidden",
    },
    {
        "expression": "!variables.changed || !has(oldObject.spec.approvers)"
        " || (has(oldObject.spec.approvers.users)"
        " && request.userInfo.username in oldObject.spec.approvers.users)"
        " || (has(oldObject.spec.approvers.groups) && has(request.userInfo.groups)"
        " && oldObject.spec.approvers.groups.exists(g, g in request.userInfo.groups))",
        "messageExpression": "request.userInfo.username + ' is not in spec.approvers (its "
        "users or groups) of this Pipeline'",
        "reason": "Forbidden",
    },
    {
        "expression": "!variables.changed || size(variables.new) == 0 || (has(oldObject.status)"
        " && has(oldObject.status.approvals) && oldObject.status.approvals.exists(g,"
        " g.gate == variables.last.gate && g.phase == 'Waiting') && (!has(oldObject.status.phase)"
        " || !(oldObject.status.phase in ['Succeeded', 'Failed', 'Cancelled', 'Rejected'])))",
        "messageExpression": "'spec.approvals: ' + string(variables.last.gate) + ' is not "
        "waiting for approval' + (has(oldObject.status) && has(oldObject.status.phase) ? "
        "' (the pipeline is ' + oldObject.status.phase + ')' : '')",
    },
]
"""Rules of the ValidatingAdmissionPolicy that admits a decision only from its own author."""

CREATE_RULE = {
    "expression": "request.operation != 'CREATE' || !has(object.spec.approvals)"
    " || size(object.spec.approvals) == 0",
    "message": "spec.approvals must be empty when a Pipeline is created: decisions are added "
    "once a manual gate waits (shipway approve)",
}
