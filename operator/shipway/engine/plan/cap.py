"""The namespace cap inside one plan: may one more step pod start? (:mod:`shipway.engine.slots`
counts the namespace's slots across pipelines; this asks it for one pipeline's steps.)"""

from __future__ import annotations

from shipway.engine.objects import PipelineRef
from shipway.engine.plan.steps import Steps
from shipway.engine.slots import occupies_slot
from shipway.models import StepPhase


class NamespaceCap:
    """The namespace cap in one plan: may one more step pod start?"""

    def __init__(self, limit: int | None, others: int, steps: Steps) -> None:
        self.limit = limit
        self.others = others
        # The pipeline's own slots as the pod store counts them: live pods, not yet ended.
        self.own = sum(
            1
            for s in steps.values()
            if s.phase == StepPhase.RUNNING and s.live_pod is not None and occupies_slot(s.live_pod)
        )

    def allows(self) -> bool:
        return self.limit is None or self.others + self.own < self.limit

    def took(self) -> None:
        self.own += 1

    def why(self, ref: PipelineRef) -> str:
        return (
            f"waiting: {self.limit} step pods of namespace {ref.namespace!r} run at once, "
            "the most the operator allows"
        )
