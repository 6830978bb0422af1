"""What the operator keeps of a Pipeline object between events, and the status as written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shipway.engine.objects import Manifest, PipelineRef
from shipway.history.records import kept
from shipway.models import PipelineStatus


@dataclass(frozen=True, slots=True)
class PipelineSnapshot:
    """The parts of a Pipeline object the operator keeps in memory.

    Spec and status are kept as compact JSON: a few hundred bytes instead of kilobytes of
    dicts per pipeline. They are decoded only to compile a new generation of the spec and
    to read the status once after a (re)start; from then on the operator's own last write
    is the status it plans from.
    """

    name: str
    namespace: str
    uid: str
    generation: int
    created_at: str | None
    spec_json: str
    status_json: str
    deleting: bool
    generate_name: str | None = None
    """metadata.generateName: a generated pipeline's project (its build cache's key)."""
    keep: bool = False
    """The ``shipway.dev/keep`` annotation: retention never prunes it."""
    approvals_at: str | None = None
    """When spec.approvals was last written (see :func:`approvals_written_at`)."""

    @classmethod
    def from_body(
        cls, body: Mapping[str, Any], previous: PipelineSnapshot | None = None
    ) -> PipelineSnapshot:
        """The snapshot of ``body``; the spec's JSON is ``previous``'s when its generation is
        the same (a 1000-step spec is not serialised again for every status write's event)."""
        meta = body.get("metadata") or {}
        uid, generation = meta.get("uid", ""), int(meta.get("generation") or 1)
        same = previous is not None and (previous.uid, previous.generation) == (uid, generation)
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            uid=uid,
            generation=generation,
            created_at=meta.get("creationTimestamp"),
            spec_json=previous.spec_json if same and previous else _compact(body.get("spec")),
            status_json=_compact(body.get("status")),
            deleting=bool(meta.get("deletionTimestamp")),
            generate_name=meta.get("generateName") or None,
            keep=kept(meta.get("annotations") or {}),
            approvals_at=approvals_written_at(meta.get("managedFields")),
        )

    def only_status_changed(self, previous: PipelineSnapshot | None) -> bool:
        """Nothing but the status differs from ``previous``: the echo of the operator's own
        status write (or a status edit, which the operator ignores: it plans from its own)."""
        return previous is not None and replace(previous, status_json=self.status_json) == self

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = json.loads(self.spec_json)
        return spec

    @property
    def ref(self) -> PipelineRef:
        return PipelineRef(
            self.name,
            self.namespace,
            self.uid,
            self.generation,
            self.created_at,
            self.generate_name,
            self.approvals_at,
        )


def approvals_written_at(managed: Any) -> str | None:
    """The time the API server stamped on the last write of ``spec.approvals``: the
    managedFields entry of whoever owns that field (a decision is one write of it)."""
    times: list[str] = [
        str(entry["time"])
        for entry in managed or ()
        if isinstance(entry, Mapping)
        and "f:approvals" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
        and entry.get("time")
    ]
    return max(times) if times else None


def _compact(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), separators=(",", ":"))


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``old`` into ``new``: a field that is gone is
    sent as null (else the API server keeps it: a finished pipeline would still show its last
    ``currentStep``); lists are replaced whole."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = merge_patch(before, value)
        else:
            patch[key] = value
    return patch


def dump_status(
    status: PipelineStatus, reuse: tuple[PipelineStatus, Manifest] | None = None
) -> Manifest:
    """The status as written: compact, since a 500-step pipeline has 500 entries.

    ``reuse`` is an earlier status and its dump: a step entry that is the very same object
    there (the planner reuses unchanged entries) keeps its dumped form, so a 1000-step
    status is not dumped again whole for each change of a few steps.
    """
    if reuse is None or not status.steps:
        dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        for step in dumped.get("steps", ()):
            _compact_step(step)
        return dumped
    before, before_dumped = reuse
    old_steps = before.steps
    old_dumped = before_dumped.get("steps") or ()
    same_shape = len(old_dumped) == len(old_steps)
    dumped = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"steps"})
    steps: list[Manifest] = []
    for index, step in enumerate(status.steps):
        if same_shape and index < len(old_steps) and old_steps[index] is step:
            steps.append(old_dumped[index])
        else:
            steps.append(
                _compact_step(step.model_dump(mode="json", by_alias=True, exclude_none=True))
            )
    dumped["steps"] = steps
    return dumped


def _compact_step(step: dict[str, Any]) -> dict[str, Any]:
    if not step.get("attempts"):
        step.pop("attempts", None)
    if step.get("attempt") == 0:
        step.pop("attempt")
    return step
