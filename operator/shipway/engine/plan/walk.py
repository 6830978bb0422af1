"""The walk of the step tree: which steps may start now, which will never run (pure).

Serial groups run their children in order, parallel groups all at once; a failure halts
every regular step not started yet, and runs the ``on_fail`` steps of the nodes it failed.
The walk only marks steps (``start``) and collects why others will not run; it never
decides a pod's fate, which is :mod:`shipway.engine.plan.steps`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum

from shipway.compiler.tree import GroupNode, Node, RunNode
from shipway.engine.plan.steps import StepState
from shipway.engine.reasons import StepReason
from shipway.models import StepPhase


class Result(Enum):
    WAITING = "waiting"
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


Gate = Callable[[StepState], "Result"]
"""Asked before a step starts: ACTIVE lets it start, WAITING holds it (its images are being
built), FAILED means the gate failed it (an image it runs could not be built)."""
Approval = Callable[[GroupNode, bool], bool]
"""Asked at a manual group (with whether it is reached: all before it over, nothing stopping
the pipeline): True once it is approved, so its steps may run as a serial group's."""


class Walk:
    """One walk of the tree over the steps' current state."""

    def __init__(
        self,
        steps: Mapping[str, StepState],
        halted: bool,
        stopping: bool,
        *,
        gate: Gate | None = None,
        pushes: bool = True,
        approval: Approval | None = None,
    ) -> None:
        self.steps = steps
        self.gate = gate
        self.approval = approval
        self.pushes = pushes
        """``spec.push``: false skips every push step (reason PushDisabled)."""
        self.halted = halted
        """A regular step failed: regular steps not started yet never start."""
        self.stopping = stopping
        """Cancelled or timed out: nothing starts, not even on_fail steps."""
        self.skip: dict[str, str] = {}
        """Steps that will not run, by id, and why."""

    def run(self, nodes: Sequence[Node]) -> Result:
        return self._sequence(nodes, not self.stopping, False)

    def _not_needed(self, nodes: Iterable[Node], reason: str) -> None:
        for node in nodes:
            if isinstance(node, RunNode):
                self.skip.setdefault(node.id, reason)
                self._not_needed(node.on_fail, reason)
            else:
                self._not_needed(node.children, reason)
                self._not_needed(node.on_fail, reason)

    def _with_on_fail(self, node: Node, result: Result) -> Result:
        if not node.on_fail:
            return result
        if result == Result.FAILED and not self.stopping:
            handled = self._sequence(node.on_fail, allow=True, is_on_fail=True)
            return Result.ACTIVE if handled in (Result.ACTIVE, Result.WAITING) else result
        if result in (Result.SUCCEEDED, Result.SKIPPED):
            self._not_needed(node.on_fail, StepReason.NOT_NEEDED)
        return result

    def _visit(self, node: Node, allow: bool, is_on_fail: bool) -> Result:
        if not node.enabled:
            self._not_needed([node], StepReason.FILTERED_OUT)
            return Result.SKIPPED
        if isinstance(node, RunNode) and node.push is not None and not self.pushes:
            self._not_needed([node], StepReason.PUSH_DISABLED)
            return Result.SKIPPED
        if isinstance(node, GroupNode):
            if node.kind == "manual" and not self._approved(node, allow, is_on_fail):
                self._sequence(node.children, False, is_on_fail)
                return self._with_on_fail(node, Result.WAITING)
            if node.kind in ("serial", "manual"):
                result = self._sequence(node.children, allow, is_on_fail)
            else:
                results = [self._visit(child, allow, is_on_fail) for child in node.children]
                if Result.ACTIVE in results:
                    result = Result.ACTIVE
                elif Result.FAILED in results:
                    result = Result.FAILED
                elif Result.WAITING in results:
                    result = Result.WAITING
                else:
                    result = Result.SUCCEEDED
            return self._with_on_fail(node, result)
        step = self.steps[node.id]
        if step.phase == StepPhase.SUCCEEDED:
            result = Result.SUCCEEDED
        elif step.phase in (StepPhase.FAILED, StepPhase.CANCELLED):
            result = Result.FAILED
        elif step.phase == StepPhase.SKIPPED:
            result = Result.SKIPPED
        elif step.phase == StepPhase.RUNNING:
            result = Result.ACTIVE
        elif allow and (is_on_fail or not self.halted):
            verdict = self.gate(step) if self.gate is not None else Result.ACTIVE
            step.start = verdict == Result.ACTIVE
            # A step held by its builds is under way as far as its group is concerned.
            result = Result.FAILED if verdict == Result.FAILED else Result.ACTIVE
        else:
            result = Result.WAITING
        return self._with_on_fail(node, result)

    def _approved(self, node: GroupNode, allow: bool, is_on_fail: bool) -> bool:
        reached = allow and not is_on_fail and not self.halted and not self.stopping
        return self.approval is None or self.approval(node, reached)

    def _sequence(self, nodes: Sequence[Node], allow: bool, is_on_fail: bool) -> Result:
        for index, node in enumerate(nodes):
            result = self._visit(node, allow, is_on_fail)
            if result in (Result.SUCCEEDED, Result.SKIPPED):
                continue
            for later in nodes[index + 1 :]:
                self._visit(later, False, is_on_fail)
            return result
        return Result.SUCCEEDED
