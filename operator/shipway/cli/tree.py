"""The pipeline as a tree of groups and steps, each step with its status (pure).

From the compiled spec when it is readable (groups keep their kind and order), else from
each step's group path in the status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import compile_pipeline
from shipway.compiler.tree import Node, RunNode
from shipway.engine.observe import parse_time
from shipway.models import BuildStatus, PipelineStatus, StepPhase, StepStatus

TreeKind = Literal["serial", "parallel", "manual", "group", "on_fail", "step"]
BUILD_ID_PREFIX = "build-"
"""A build's id among steps (theirs are numbers): ``build-<service>``, its pod's step label."""


@dataclass
class TreeNode:
    """A group or a run step of the pipeline, with the status of the run steps attached."""

    name: str
    kind: TreeKind
    step: StepStatus | None = None
    children: list[TreeNode] = field(default_factory=list)

    def leaves(self, *, regular_only: bool = False) -> Iterable[StepStatus]:
        if self.step is not None:
            yield self.step
        for child in self.children:
            if regular_only and child.kind == "on_fail":
                continue
            yield from child.leaves(regular_only=regular_only)


def _from_compiled(nodes: Sequence[Node], steps: Mapping[str, StepStatus]) -> list[TreeNode]:
    result: list[TreeNode] = []
    for node in nodes:
        if isinstance(node, RunNode):
            item = TreeNode(node.name, "step", steps.get(node.id))
            if item.step is None:
                item.step = StepStatus(
                    id=node.id, name=node.name, group=node.group, service=node.service
                )
        else:
            item = TreeNode(node.name, node.kind, None, _from_compiled(node.children, steps))
        if node.on_fail:
            item.children.append(
                TreeNode("on_fail", "on_fail", None, _from_compiled(node.on_fail, steps))
            )
        result.append(item)
    return result


def _from_status(steps: Sequence[StepStatus]) -> list[TreeNode]:
    """Without a readable spec: groups from each step's group path."""
    root = TreeNode("", "group")
    for step in steps:
        parent = root
        for part in (step.group or "").split("/"):
            if not part:
                continue
            found = next((c for c in parent.children if c.kind == "group" and c.name == part), None)
            if found is None:
                found = TreeNode(part, "group")
                parent.children.append(found)
            parent = found
        parent.children.append(TreeNode(step.name, "step", step))
    return root.children


def is_build(step: StepStatus) -> bool:
    return step.id.startswith(BUILD_ID_PREFIX)


def build_step(build: BuildStatus) -> StepStatus:
    """A build shown and followed like a step: ``build demo``, its pod, its result.

    A successful build's message is its digest and cache hits; a failed one's, BuildKit's
    error lines.
    """
    message = build.message
    if build.phase == StepPhase.SUCCEEDED and build.digest:
        cached = (
            f"{build.cached_steps}/{build.total_steps} cached, "
            if build.cached_steps is not None and build.total_steps
            else ""
        )
        message = f"{cached}{build.digest[:19]}"
    return StepStatus(
        id=f"{BUILD_ID_PREFIX}{build.service}",
        name=build.service,
        service=build.service,
        phase=build.phase,
        pod=build.pod,
        reason=build.reason,
        message=message,
        created_at=build.created_at,
        started_at=build.started_at,
        finished_at=build.finished_at,
    )


def build_steps(status: PipelineStatus) -> list[StepStatus]:
    return [build_step(b) for b in status.builds]


def build_tree(spec: Mapping[str, Any] | None, status: PipelineStatus) -> list[TreeNode]:
    """The pipeline's groups and steps in order, each run step with its status; the image
    builds first, as a parallel group (they run together, before the steps that need them)."""
    by_id = {step.id: step for step in status.steps}
    builds = [TreeNode(f"build {s.name}", "step", s) for s in build_steps(status)]
    head = [TreeNode("builds", "parallel", None, builds)] if builds else []
    if spec is not None:
        try:
            compiled = compile_pipeline(spec)
        except InvalidSpecError:
            compiled = None
        if compiled is not None:
            return head + _from_compiled(compiled.root.children, by_id)
    return head + _from_status(status.steps)


def group_phase(node: TreeNode) -> str:
    """A group's phase from its steps (its on_fail steps do not count)."""
    phases = {step.phase for step in node.leaves(regular_only=True)}
    if not phases:
        return "Pending"
    if StepPhase.RUNNING in phases:
        return "Running"
    if StepPhase.FAILED in phases:
        return "Failed"
    if StepPhase.CANCELLED in phases:
        return "Cancelled"
    if StepPhase.PENDING in phases:
        return "Running" if phases & {StepPhase.SUCCEEDED} else "Pending"
    if phases == {StepPhase.SKIPPED}:
        return "Skipped"
    return "Succeeded"


def group_duration(node: TreeNode, now: datetime) -> float | None:
    steps = [s for s in node.leaves() if s.started_at]
    if not steps:
        return None
    start = min(parse_time(s.started_at) or now for s in steps)
    running = any(not s.phase.terminal for s in steps)
    ends = [parse_time(s.finished_at) for s in steps if s.finished_at]
    end = now if running or not ends else max(e for e in ends if e is not None)
    return (end - start).total_seconds()
