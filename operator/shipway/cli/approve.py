"""``shipway approve | reject NAME``: decide a Pipeline's waiting manual gate.

The decision is one merge patch of ``spec.approvals`` (the whole list, guarded by the
object's resourceVersion, so two approvers at once cannot both write), naming the caller as
the API server knows them (a SelfSubjectReview). The API server's admission policy checks
that name against the caller, the RBAC verb ``approve`` and ``spec.approvers``, so this
command decides nothing the policy would not: a refusal is printed in the API server's words.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Literal, TextIO

from shipway.cli import common
from shipway.cli.common import OK, CommandError, get_pipeline, guarded
from shipway.cli.format import is_finished, phase_of

Decision = Literal["Approved", "Rejected"]


def waiting_gate(pipeline: dict[str, Any], gate: str | None = None) -> dict[str, Any]:
    """The status entry of the gate waiting for a decision (``gate``: that one)."""
    name = (pipeline.get("metadata") or {}).get("name", "")
    entries = (pipeline.get("status") or {}).get("approvals") or []
    waiting = [e for e in entries if e.get("phase") == "Waiting"]
    if gate is not None:
        waiting = [e for e in waiting if gate in (e.get("gate"), e.get("name"))]
    if not waiting:
        which = f" at {gate!r}" if gate else ""
        phase = phase_of(pipeline) or "Pending"
        raise CommandError(f"pipeline {name} is not waiting for approval{which} (it is {phase})")
    found: dict[str, Any] = waiting[0]
    return found


def decision_patch(
    pipeline: dict[str, Any], user: str, decision: Decision, gate: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The merge patch that adds the decision, and the gate's status entry."""
    entry = waiting_gate(pipeline, gate)
    meta = pipeline.get("metadata") or {}
    approvals = list((pipeline.get("spec") or {}).get("approvals") or [])
    approvals.append({"gate": entry["gate"], "decision": decision, "user": user})
    patch = {
        "metadata": {"resourceVersion": meta.get("resourceVersion")},
        "spec": {"approvals": approvals},
    }
    return patch, entry


def whoami(api: Any) -> str:
    """The caller's user name as the API server authenticates it (kubectl auth whoami)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from shipway.cli.cluster import error_from

    auth = client.AuthenticationV1Api(api.custom.api_client)
    try:
        review = auth.create_self_subject_review(
            client.V1SelfSubjectReview(
                api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
            )
        )
    except ApiException as exc:
        raise error_from(exc) from None
    info = review.status.user_info if review.status is not None else None
    if info is None or not info.username:
        raise CommandError("the API server did not say who you are (SelfSubjectReview)")
    return str(info.username)


def patch_pipeline(api: Any, name: str, patch: dict[str, Any]) -> None:
    from kubernetes.client.exceptions import ApiException

    from shipway import GROUP, PLURAL, VERSION
    from shipway.cli.cluster import error_from

    try:
        api.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            api.namespace,
            PLURAL,
            name,
            patch,
            field_validation="Strict",  # a CRD without spec.approvals refuses, never prunes
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
    except ApiException as exc:
        raise error_from(exc) from None


def _decide(args: argparse.Namespace, out: TextIO, decision: Decision) -> int:
    api = common.connect_api(args)
    pipeline = get_pipeline(api, args.name)
    user = whoami(api)
    patch, entry = decision_patch(pipeline, user, decision, args.gate)
    patch_pipeline(api, args.name, patch)
    verb = "approved" if decision == "Approved" else "rejected"
    out.write(f"pipeline {args.name}: {entry['name']!r} ({entry['gate']}) {verb} by {user}\n")
    if args.wait:
        while not is_finished(pipeline) and (
            _gate_phase(pipeline, entry["gate"]) == "Waiting"
            or phase_of(pipeline) != "AwaitingApproval"
        ):
            time.sleep(0.5)
            pipeline = get_pipeline(api, args.name)
        out.write(f"pipeline {args.name} {phase_of(pipeline)}\n")
    return OK


def _gate_phase(pipeline: dict[str, Any], gate: str) -> str | None:
    entries = (pipeline.get("status") or {}).get("approvals") or []
    return next((e.get("phase") for e in entries if e.get("gate") == gate), None)


@guarded
def cmd_approve(args: argparse.Namespace, out: TextIO) -> int:
    return _decide(args, out, "Approved")


@guarded
def cmd_reject(args: argparse.Namespace, out: TextIO) -> int:
    return _decide(args, out, "Rejected")


def register(sub: Any, conn: argparse.ArgumentParser) -> None:
    for name, func, what in (
        ("approve", cmd_approve, "run the steps of a Pipeline's waiting manual group"),
        ("reject", cmd_reject, "end a Pipeline waiting for approval (phase Rejected)"),
    ):
        parser = sub.add_parser(name, parents=[conn], help=what)
        parser.add_argument("name")
        parser.add_argument("--gate", help="the waiting gate (its name or spec place) to decide")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="wait until the pipeline has ended or waits at its next gate",
        )
        parser.set_defaults(func=func)
