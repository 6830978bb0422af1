"""Limits a spec must respect: how deep it nests, and how large its status can grow.

The nesting check walks the raw document iteratively, before the models' recursive validation
and the step compiler see it, so no spec can exhaust Python's recursion (300 nested groups
did): every path that compiles a spec (``shipway validate``, the admission webhook, the
operator) refuses it with the same field error instead.

The status of a Pipeline lives in the same etcd object as its spec, and etcd refuses objects
over 1.5 MiB: a status patch that would cross it fails forever. Every text the operator writes
into a status is either taken from the spec (names, services) or clipped to a byte budget by the
status model, so the largest status a spec can ever produce is known before it runs; a spec
whose worst case does not fit beside it is refused here, naming the numbers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shipway.compiler.errors import FieldError
from shipway.models import (
    Condition,
    PipelinePhase,
    PipelineStatus,
    StepAttempt,
    StepPhase,
    StepStatus,
)
from shipway.models.status import (
    HEALTHCHECK_TEST_BYTES,
    MESSAGE_BYTES,
    PIPELINE_MESSAGE_BYTES,
    REASON_BYTES,
    BuildStatus,
    GatePhase,
    GateStatus,
    ImageHealthcheck,
    SourceStatus,
    json_size,
)

MAX_DEPTH = 12
"""Nesting levels of ``steps``/``on_fail`` lists (Codeship's own files rarely use three)."""
MAX_NESTING = 64
"""JSON nesting anywhere in a spec (environment values, ``build``): far above any real use."""

ETCD_OBJECT_BYTES = 1536 * 1024
"""etcd's default request limit (``--max-request-bytes``): the largest object it stores."""
METADATA_BYTES = 64 * 1024
"""Room kept for metadata: labels, annotations, managed fields."""
SPEC_COPIES = 2
"""The spec is stored twice when applied with client-side ``kubectl apply`` (its
last-applied-configuration annotation)."""
MiB = 1024 * 1024

READ_FRAMES = 6_000
"""Python frames a recursive reader (PyYAML's composer: two per level) may use: room for
thousands of levels, so that the iterative checks here, not a RecursionError, refuse them."""

OPERATOR_RECURSION_LIMIT = 25_000
"""The API server (Go) stores JSON nested up to 10,000 levels; Python's json module takes one
unit of the recursion limit per level (and ~400 bytes of C stack: 4 MB at 10,000, half the main
thread's 8 MB). At the default 1,000, one Pipeline nested 500 groups deep made every list and
watch of its namespace fail in the operator; with this limit it is read, then refused here."""

T = TypeVar("T")


class TooDeepToReadError(ValueError):
    """A document nested beyond what even :data:`READ_FRAMES` can read."""


def read_deep(load: Callable[[], T]) -> T:
    """``load()`` (a pure-Python recursive parser) with room to read deeply nested documents.

    Python 3.11's pure-Python calls use no C stack, so the higher limit is safe for them; it
    is process-wide, so only the command line uses this (never the operator's threads).
    """
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, READ_FRAMES))
    try:
        return load()
    except RecursionError:
        raise TooDeepToReadError(
            f"nests too deeply to read (thousands of levels; at most {MAX_NESTING})"
        ) from None
    finally:
        sys.setrecursionlimit(before)


_TIME = "2006-01-02T15:04:05.999999999+07:00"  # the longest RFC 3339 form
_POD_NAME = "x" * 63
_EXIT_CODE = -(2**31)


def _fill(limit: int) -> str:
    """A text whose JSON form takes exactly ``limit`` bytes: the most a clipped text takes."""
    return "x" * (limit - 2)


def _size(model: StepAttempt | StepStatus | BuildStatus | GateStatus | PipelineStatus) -> int:
    dumped = model.model_dump(mode="json", by_alias=True)  # None values too: conservative
    text = json.dumps(dumped, separators=(",", ":"))
    return len(text) + 5 * (text.count("<") + text.count(">") + text.count("&"))


def _longest_phase() -> StepPhase:
    return max(StepPhase, key=lambda phase: len(phase.value))


def _longest_pod_task() -> dict[str, Any]:
    """The longest values of the fields every pod's entry shares: a step's and each of its
    attempts, a build's, the source's (``PrepStatus``)."""
    return {
        "phase": _longest_phase(),
        "pod": _POD_NAME,
        "pod_uid": _fill(REASON_BYTES),
        "reason": _fill(REASON_BYTES),
        "message": _fill(MESSAGE_BYTES),
        "created_at": _TIME,
        "started_at": _TIME,
        "finished_at": _TIME,
    }


ATTEMPT_BYTES = 1 + _size(
    StepAttempt(
        attempt=99,
        exit_code=_EXIT_CODE,
        **_longest_pod_task(),
    )
)
"""Most bytes one earlier attempt adds to its step's entry (with its comma)."""


def _step(image: str | None = None, digest: str | None = None) -> int:
    return 1 + _size(
        StepStatus(
            id="",
            name="",
            group="",
            service="",
            on_fail_of="",
            attempt=99,
            exit_code=_EXIT_CODE,
            **_longest_pod_task(),
            image=image,
            digest=digest,
        )
    )


STEP_BYTES = _step()
"""Most bytes a step's entry takes besides its id, name, group, service and on_fail_of, which
come from the spec, and its attempts."""

PUSH_BYTES = _step(_fill(MESSAGE_BYTES), _fill(REASON_BYTES)) - STEP_BYTES
"""What a push step's entry adds: the reference it pushes to and the digest pushed."""


BUILD_BYTES = 1 + _size(
    BuildStatus(
        service="",
        **_longest_pod_task(),
        image=_fill(MESSAGE_BYTES),
        digest=_fill(REASON_BYTES),
        cached_steps=2**63 - 1,
        total_steps=2**63 - 1,
        healthcheck=ImageHealthcheck(
            test=[_fill(HEALTHCHECK_TEST_BYTES - 2)],  # ["…"]: the most the status keeps
            interval=-sys.float_info.max,
            timeout=-sys.float_info.max,
            start_period=-sys.float_info.max,
            retries=-(2**63),
        ),
    )
)
"""Most bytes one build's entry takes besides its service's name (from the spec)."""

PIPELINE_BYTES = _size(
    PipelineStatus(
        phase=max(PipelinePhase, key=lambda phase: len(phase.value)),
        progress="9999/9999",
        current_step=_fill(PIPELINE_MESSAGE_BYTES),
        message=_fill(PIPELINE_MESSAGE_BYTES),
        started_at=_TIME,
        finished_at=_TIME,
        node_name="x" * 253,
        observed_generation=2**63 - 1,
        conditions=[
            Condition(
                type="Succeeded",
                status="Unknown",
                reason=_fill(REASON_BYTES),
                message=_fill(PIPELINE_MESSAGE_BYTES),
                last_transition_time=_TIME,
                observed_generation=2**63 - 1,
            )
        ],
        source=SourceStatus(
            kind="upload",
            **_longest_pod_task(),
            commit=_fill(REASON_BYTES),
            **{
                name: _fill(MESSAGE_BYTES)
                for name in (
                    "branch",
                    "tag",
                    "commit_message",
                    "committer_name",
                    "committer_email",
                    "repo_name",
                )
            },
            files=2**63 - 1,
            bytes=2**63 - 1,
        ),
    )
)
"""Most bytes the status takes besides its steps."""


class StepSummary(Protocol):
    """What the status estimate needs of a run step (a :class:`~shipway.compiler.tree.RunNode`)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def group(self) -> str | None: ...
    @property
    def service(self) -> str: ...
    @property
    def on_fail_of(self) -> str | None: ...
    @property
    def retries(self) -> int: ...
    @property
    def push(self) -> object | None: ...


class GateSummary(Protocol):
    """What the estimate needs of a manual gate (a :class:`~shipway.compiler.tree.GroupNode`)."""

    @property
    def field(self) -> str: ...
    @property
    def name(self) -> str: ...


GATE_BYTES = 1 + _size(
    GateStatus(
        gate="",
        name="",
        phase=max(GatePhase, key=lambda phase: len(phase.value)),
        waiting_since=_TIME,
        user=_fill(MESSAGE_BYTES),
        decided_at=_TIME,
        message=_fill(REASON_BYTES),
    )
)
"""Most bytes a manual gate's entry takes besides its place and name (from the spec)."""


def _text(value: str | None) -> int:
    return 0 if value is None else json_size(value) - 2


def worst_status_bytes(
    runs: Sequence[StepSummary], builds: Sequence[str] = (), gates: Sequence[GateSummary] = ()
) -> int:
    """The largest status these run steps, the builds of these services and these manual
    gates can produce, in JSON bytes."""
    total = PIPELINE_BYTES
    for gate in gates:
        total += GATE_BYTES + _text(gate.field) + _text(gate.name)
    for run in runs:
        total += STEP_BYTES + run.retries * ATTEMPT_BYTES
        total += _text(run.id) + _text(run.name) + _text(run.group) + _text(run.service)
        total += _text(run.on_fail_of)
        if run.push is not None:
            total += PUSH_BYTES
    for service in builds:
        total += BUILD_BYTES + _text(service)
    return total


def spec_bytes(raw: Any) -> int:
    """The spec's size as stored (an upper bound)."""
    return len(json.dumps(raw, separators=(",", ":"), default=str))


def status_errors(
    raw: Any,
    runs: Sequence[StepSummary],
    builds: Sequence[str] = (),
    gates: Sequence[GateSummary] = (),
) -> list[FieldError]:
    """A FieldError when the worst-case status would not fit in etcd beside the spec."""
    worst = worst_status_bytes(runs, builds, gates)
    room = ETCD_OBJECT_BYTES - METADATA_BYTES - SPEC_COPIES * spec_bytes(raw)
    if worst <= room:
        return []
    attempts = sum(1 + run.retries for run in runs)
    retried = sum(1 for run in runs if run.retries)
    return [
        FieldError(
            "spec.steps",
            f"the status of {len(runs)} run steps ({attempts} attempts with the retries of "
            f"{retried}){f' and {len(builds)} builds' if builds else ''} could reach {worst / MiB:.2f} MiB, but only {max(room, 0) / MiB:.2f} "
            f"MiB fit beside this spec in etcd's {ETCD_OBJECT_BYTES / MiB:.1f} MiB object "
            "limit: use fewer steps or retries, or split the pipeline",
        )
    ]


def structure_errors(raw: Any) -> list[FieldError]:
    """Nesting beyond the limits, and strings holding U+FFFD, in document order.

    U+FFFD marks bytes that were not UTF-8, replaced on the way in by kubectl. One iterative
    walk; a step list nested too deep is reported and not entered.
    """
    errors: list[FieldError] = []
    stack: list[_Visit] = [_Visit(raw, "spec", 1, 0, "spec")]
    while stack:
        visit = stack.pop()
        node, where = visit.node, visit.where
        if isinstance(node, str):
            if "\ufffd" in node:
                errors.append(FieldError(where, "contains bytes that are not valid UTF-8"))
            continue
        if not isinstance(node, Mapping | list):
            continue
        if visit.depth > MAX_NESTING:
            errors.append(FieldError(where, f"nests deeper than {MAX_NESTING} levels"))
            continue
        children: list[_Visit] = []
        if isinstance(node, list):
            role = "step" if visit.role == "list" else None
            for index, value in enumerate(node):
                children.append(
                    _Visit(value, f"{where}[{index}]", visit.depth + 1, visit.level, role)
                )
        else:
            for key, value in node.items():
                child = _Visit(value, f"{where}.{key}", visit.depth + 1, visit.level, None)
                if isinstance(value, list) and _is_step_list(visit.role, key):
                    child.role, child.level = "list", visit.level + 1
                    if child.level > MAX_DEPTH:
                        message = f"steps nest deeper than {MAX_DEPTH} levels"
                        errors.append(FieldError(child.where, message))
                        continue
                children.append(child)
            children += [
                _Visit(key, where, visit.depth, 0, None)
                for key in node
                if isinstance(key, str) and "\ufffd" in key
            ]
        stack.extend(reversed(children))
    return errors


@dataclass(slots=True)
class _Visit:
    node: Any
    where: str
    depth: int
    """JSON nesting of ``node``."""
    level: int
    """Step nesting: of a step list, or of a step (the level of its list)."""
    role: str | None
    """"spec", "list" (a step list), "step", or None for everything else."""


def _is_step_list(role: str | None, key: Any) -> bool:
    return (role == "spec" and key == "steps") or (role == "step" and key in ("steps", "on_fail"))
