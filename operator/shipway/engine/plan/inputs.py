"""What one plan is made from: the planners' one input bundle (pure).

The planner and each kind of pod task (steps, the preparation, builds) read the same facts:
the pipeline, its compiled spec, its last status, its pods, the clock, the operator's settings,
and what the API server refused or a ResourceQuota holds. One frozen bundle carries them, so a
planner takes one argument, not ten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from shipway.compiler.pipeline import CompiledPipeline
from shipway.engine.intents import Refusal
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, format_time
from shipway.engine.settings import Settings
from shipway.models import PipelineStatus


@dataclass(frozen=True)
class PlanInput:
    """Everything :func:`~shipway.engine.plan.planner.plan` decides from."""

    ref: PipelineRef
    compiled: CompiledPipeline
    status: PipelineStatus
    pods: Sequence[PodView]
    now: datetime
    settings: Settings = field(default_factory=Settings)
    rejected: Mapping[str, Refusal] = field(default_factory=dict)
    """Pod names that could not be created, and why (the API server refused it, or a foreign
    pod has the name): those attempts fail instead of being tried forever."""
    waiting: Mapping[str, str] = field(default_factory=dict)
    """Pod names a ResourceQuota refused, and its message: their tasks wait, saying so."""
    namespace_busy: int = 0
    """Slots of the namespace cap that are not this pipeline's to take
    (:meth:`~shipway.engine.slots.NamespaceSlots.others`)."""

    @cached_property
    def stamp(self) -> str:
        """``now`` as the status writes it."""
        return format_time(self.now)

    @cached_property
    def pods_by_step(self) -> dict[str, dict[int, PodView]]:
        """The pipeline's own pods (its controller owner UID says so), by task id and attempt."""
        by_step: dict[str, dict[int, PodView]] = {}
        for pod in self.pods:
            if pod.owner_uid == self.ref.uid:
                by_step.setdefault(pod.step_id, {})[pod.attempt] = pod
        return by_step
