"""Image builds while planning: which to run, their state, and which steps they hold (pure).

A service with ``build`` is built once per pipeline, by one pod, when a remaining step needs
it: a step runs its service and every service it links (``links``/``depends_on``), so it
needs the images of all of those that have a build. Builds start together once the checkout
is in place, so independent builds run in parallel; a step starts when the builds it needs
have all pushed their image, and runs it by digest. A failed build fails each step that
needed it, at the moment that step would have started (Codeship's order: parallel siblings
run on, later steps are skipped). Builds no remaining step needs (filtered by
``tag``/``exclude``) never run.

A build's state follows from its status record and its pod, like a step's: the record
remembers a result, the pod tells what the record lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from shipway.compiler.builds import ResolvedBuild
from shipway.compiler.pipeline import CompiledPipeline
from shipway.compiler.tree import RunNode
from shipway.engine.buildargs import render_args
from shipway.engine.buildnames import (
    build_pod_name,
    build_task_id,
    cache_repository,
    image_repository,
    project_key,
    tag_for,
)
from shipway.engine.buildneeds import gated_by_image, needed_builds, wanted_builds
from shipway.engine.buildpods import CONTAINER, BuildConfig, BuildToCreate
from shipway.engine.buildresult import parse_result, summary
from shipway.engine.imageconfig import INSPECT_CONTAINER, as_healthcheck, parse_inspect
from shipway.engine.objects import PipelineRef
from shipway.engine.observe import PodView, container_named, format_time
from shipway.engine.outcome import UNSCHEDULABLE_GRACE_SECONDS, outcome
from shipway.engine.reasons import StepReason
from shipway.engine.steps import Refusal, halt
from shipway.models import (
    BuildStatus,
    Healthcheck,
    ImageHealthcheck,
    PipelineStatus,
    SourceStatus,
    StepPhase,
)

DEFAULT_CACHE_TAG = "default"
UNREADABLE = "the image was built, but its HEALTHCHECK could not be read"


class Gate(Enum):
    READY = "ready"
    """Every image the step runs is built."""
    WAIT = "wait"
    """A build the step needs has not finished yet."""
    FAILED = "failed"
    """A build the step needs failed: the step fails without a pod."""


@dataclass
class BuildState:
    """One service's build while planning."""

    build: ResolvedBuild
    repository: str
    phase: StepPhase = StepPhase.PENDING
    pod: str | None = None
    digest: str | None = None
    reason: str | None = None
    message: str | None = None
    created_at: str | None = None
    """When its pod was made (the build waits for a node and its image from then)."""
    started_at: str | None = None
    finished_at: str | None = None
    cached_steps: int | None = None
    total_steps: int | None = None
    healthcheck: ImageHealthcheck | None = None
    """The image's HEALTHCHECK, read after the build when a step links the service."""
    live_pod: PodView | None = None
    wanted: bool = False
    """A regular step that may run needs it: built as soon as the checkout is there."""
    requested: bool = False
    """A step about to start needs it (an ``on_fail`` step, or one the build holds)."""
    start: bool = False

    @property
    def service(self) -> str:
        return self.build.service

    @property
    def image(self) -> str | None:
        """The image by digest, once pushed."""
        return f"{self.repository}@{self.digest}" if self.digest else None


class Builds:
    """Every build's state, the pods to stop, and the gate each step passes to start."""

    def __init__(
        self,
        ref: PipelineRef,
        compiled: CompiledPipeline,
        status: PipelineStatus,
        pods_by_step: Mapping[str, Mapping[int, PodView]],
        now: datetime,
        start_grace: float,
        rejected: Mapping[str, Refusal],
        config: BuildConfig,
        git_url: str | None = None,
        branch: str | None = None,
        unschedulable_grace: float = UNSCHEDULABLE_GRACE_SECONDS,
        waiting: Mapping[str, str] | None = None,
    ) -> None:
        self.ref = ref
        self.compiled = compiled
        self.config = config
        self.now = now
        self.stamp = format_time(now)
        self.start_grace = start_grace
        self.unschedulable_grace = unschedulable_grace
        self.rejected = rejected
        self.waiting = waiting or {}
        self.quota: str | None = None
        """A ResourceQuota holds a build's pod up: this says which (tried again later)."""
        self.git_url = git_url
        self.branch = branch
        self.stop: list[str] = []
        self.delete: list[str] = []
        self.recheck: list[float] = []
        self.problem = config.problem()
        known = {record.service: record for record in status.builds}
        registry = config.registry or "registry.invalid"
        self.by_service: dict[str, BuildState] = {}
        for name, service in compiled.services.items():
            if service.build is None:
                continue
            repository = image_repository(registry, ref.namespace, ref.name, ref.uid, name)
            state = BuildState(service.build, repository)
            pod = pods_by_step.get(build_task_id(name), {}).get(0)
            self._derive(state, known.get(name), pod)
            self.by_service[name] = state
        self.inspected = gated_by_image(compiled)
        for name in wanted_builds(compiled):
            self.by_service[name].wanted = True
            self._refuse_if_unbuildable(self.by_service[name])

    # -- state from the record and the pod ------------------------------------------------

    def pod_name(self, service: str) -> str:
        return build_pod_name(self.ref.name, self.ref.uid, service)

    def _stop_if_live(self, pod: PodView | None) -> None:
        action = halt(pod)
        if pod is not None and action == "delete":
            self.delete.append(pod.name)
        elif pod is not None and action == "stop":
            self.stop.append(pod.name)

    def _derive(self, state: BuildState, rec: BuildStatus | None, pod: PodView | None) -> None:
        if rec is not None:
            state.phase, state.pod, state.digest = rec.phase, rec.pod, rec.digest
            state.reason, state.message = rec.reason, rec.message
            state.created_at = rec.created_at
            state.started_at, state.finished_at = rec.started_at, rec.finished_at
            state.cached_steps, state.total_steps = rec.cached_steps, rec.total_steps
            state.repository = rec.image or state.repository
            state.healthcheck = rec.healthcheck
        if state.phase.terminal:
            self._stop_if_live(pod)
            return
        name = self.pod_name(state.service)
        if pod is None:
            if name in self.rejected:
                refusal = self.rejected[name]
                self._end(state, StepPhase.FAILED, refusal.reason, refusal.message)
            elif state.pod == name and state.phase == StepPhase.RUNNING:
                why = "the build's pod disappeared before the build finished"
                self._end(state, StepPhase.FAILED, StepReason.POD_DELETED, why)
            else:
                state.phase, state.pod = StepPhase.PENDING, None
            return
        state.pod = name
        state.created_at = state.created_at or pod.created_at
        result = outcome(pod, self.now, self.start_grace, self.unschedulable_grace)
        if result.recheck_after is not None:
            self.recheck.append(result.recheck_after)
        build = container_named(pod, CONTAINER)  # when it started: not the inspect after it
        state.started_at = (build and build.started_at) or result.started_at or state.started_at
        if result.phase == StepPhase.RUNNING:
            state.phase, state.live_pod = StepPhase.RUNNING, pod
            state.reason, state.message = result.reason, result.message
            return
        if result.stop:
            self._stop_if_live(pod)
        terminated = build is not None and build.state == "terminated"
        report = parse_result(
            build.message if build and terminated else None, result.phase == StepPhase.SUCCEEDED
        )
        if result.phase == StepPhase.SUCCEEDED and report.digest:
            state.digest = report.digest
            state.cached_steps, state.total_steps = report.cached_steps, report.total_steps
            inspect = container_named(pod, INSPECT_CONTAINER)
            if inspect is not None:
                state.healthcheck, problem = parse_inspect(inspect.message)
                if problem is not None:
                    why = f"{UNREADABLE}: {problem}"
                    self._end(state, StepPhase.FAILED, StepReason.BUILD_FAILED, why)
                    return
            self._end(state, StepPhase.SUCCEEDED, StepReason.COMPLETED, None, result.finished_at)
            return
        reason: str = result.reason or StepReason.POD_FAILED
        message: str | None = result.message
        if result.reason == "DeadlineExceeded":
            reason = StepReason.BUILD_TIMEOUT
            message = f"the build did not finish within {pod.active_deadline}s"
        elif (
            terminated
            and build is not None
            and build.exit_code == 0
            and container_named(pod, INSPECT_CONTAINER) is not None
        ):
            # built and pushed; what failed after it is the inspect container (or the pod)
            reason = StepReason.BUILD_FAILED
            message = f"{UNREADABLE}: {result.message or 'the pod failed'}"
        elif terminated:
            reason, message = StepReason.BUILD_FAILED, report.message or result.message
        self._end(state, StepPhase.FAILED, reason, message, result.finished_at)

    def _end(
        self,
        state: BuildState,
        phase: StepPhase,
        reason: str,
        message: str | None,
        finished_at: str | None = None,
    ) -> None:
        state.phase, state.reason, state.message = phase, reason, message
        state.finished_at = finished_at or self.stamp
        state.live_pod = None
        state.start = False

    def _refuse_if_unbuildable(self, state: BuildState) -> None:
        """A cluster that cannot build fails a build at once, naming what its operator lacks."""
        if self.problem is not None and state.phase == StepPhase.PENDING:
            self._end(state, StepPhase.FAILED, StepReason.BUILDER_NOT_CONFIGURED, self.problem)

    # -- what the planner asks ------------------------------------------------------------

    def gate(self, run: RunNode) -> tuple[Gate, str | None]:
        """May ``run`` start? If a build it needs failed, why; a pending build is wanted now."""
        needed = [self.by_service[name] for name in needed_builds(self.compiled, run)]
        for state in needed:
            self._refuse_if_unbuildable(state)
        for state in needed:
            if state.phase in (StepPhase.FAILED, StepPhase.CANCELLED, StepPhase.SKIPPED):
                why = summary(state.message) or state.reason or "it failed"
                return Gate.FAILED, f"the image of {state.service!r} was not built: {why}"[:1024]
        if all(state.phase == StepPhase.SUCCEEDED for state in needed):
            return Gate.READY, None
        for state in needed:
            state.requested = True
        return Gate.WAIT, None

    def healthchecks(self, run: RunNode) -> tuple[tuple[str, Healthcheck], ...]:
        """(service, its image's HEALTHCHECK) for each built service ``run`` links."""
        if run.push is not None:
            return ()  # a push pod starts no linked services
        return tuple(
            (name, as_healthcheck(check))
            for name in needed_builds(self.compiled, run)
            if name != run.service and (check := self.by_service[name].healthcheck) is not None
        )

    def images(self, run: RunNode) -> tuple[tuple[str, str], ...]:
        """(service, image by digest) for each built image ``run`` runs (or pushes)."""
        return tuple(
            (name, image)
            for name in needed_builds(self.compiled, run)
            if (image := self.by_service[name].image) is not None
        )

    def plan_starts(
        self, remaining: float | None, eager: bool, source: SourceStatus | None = None
    ) -> tuple[BuildToCreate, ...]:
        """Pods of the builds to start now, all at once: they run in parallel.

        ``eager``: the pipeline goes on (the checkout is there, no step failed), so every
        build a remaining step needs starts; otherwise only those a starting step asked for.
        ``source``: what the checkout found (its args render from it, as steps' CI_* do).
        """
        creates: list[BuildToCreate] = []
        for state in self.by_service.values():
            if state.phase != StepPhase.PENDING or self.problem is not None:
                continue
            if not (state.requested or (eager and state.wanted)):
                continue
            deadlines = [t for t in (self.config.timeout_seconds, remaining) if t is not None]
            cache_repo, tags = self._cache(state.build)
            name = self.pod_name(state.service)
            if name in self.waiting:
                state.reason, state.message = StepReason.EXCEEDED_QUOTA, self.waiting[name][:1024]
                self.quota = f"waiting for quota: {self.waiting[name]}"[:1024]
                continue
            creates.append(
                BuildToCreate(
                    service=state.service,
                    name=name,
                    repository=state.repository,
                    cache_repository=cache_repo,
                    cache_tags=tags,
                    active_deadline=max(1, int(min(deadlines))),
                    inspect=state.service in self.inspected,
                    args=render_args(self.ref, self.compiled, state.build, source),
                )
            )
            state.phase, state.pod, state.start = StepPhase.RUNNING, name, True
            state.created_at, state.reason, state.message = self.stamp, None, None
        return tuple(creates)

    def _cache(self, build: ResolvedBuild) -> tuple[str | None, tuple[str, ...]]:
        if not build.cached or not self.config.registry:
            return None, ()
        spec = self.compiled.spec
        project = project_key(spec.cacheKey, self.git_url, self.ref.generate_name, self.ref.name)
        repo = cache_repository(self.config.registry, self.ref.namespace, project, build.service)
        tags = [tag_for(self.branch) if self.branch else DEFAULT_CACHE_TAG]
        if build.default_cache_branch:
            tags.append(tag_for(build.default_cache_branch))
        return repo, tuple(dict.fromkeys(tags))

    def busy(self) -> bool:
        """A build runs, starts now, or waits for quota."""
        return self.quota is not None or any(
            s.phase == StepPhase.RUNNING for s in self.by_service.values()
        )

    def end_unneeded(self) -> None:
        """The pipeline is over: builds still running or waiting are not needed any more."""
        why = "the pipeline ended before a step needed this image"
        self.stop_everything(StepPhase.CANCELLED, StepReason.NOT_NEEDED, why)

    def stop_everything(self, phase: StepPhase, reason: str, message: str) -> None:
        """Cancel, time out, or the pipeline ended: running builds stop, pending ones never run."""
        for state in self.by_service.values():
            if state.phase.terminal:
                continue
            if state.phase == StepPhase.RUNNING:
                self._stop_if_live(state.live_pod)
                self._end(state, phase, reason, message)
            elif not (state.wanted or state.requested):
                continue  # no step ever needed it: it stays out of the status
            else:
                self._end(state, StepPhase.SKIPPED, reason, message)
                state.finished_at = None

    def statuses(self) -> list[BuildStatus]:
        return [_record(state) for state in self.by_service.values() if _shown(state)]

    def values(self) -> Iterable[BuildState]:
        return self.by_service.values()


def _shown(state: BuildState) -> bool:
    """Builds no step ever needed are left out (services of filtered-out steps)."""
    return state.wanted or state.requested or state.pod is not None or state.phase.terminal


def _record(state: BuildState) -> BuildStatus:
    return BuildStatus(
        service=state.service,
        phase=state.phase,
        image=state.repository if state.phase != StepPhase.SKIPPED else None,
        digest=state.digest,
        pod=state.pod,
        reason=state.reason,
        message=state.message,
        created_at=state.created_at,
        started_at=state.started_at,
        finished_at=state.finished_at if state.phase.terminal else None,
        cached_steps=state.cached_steps,
        total_steps=state.total_steps,
        healthcheck=state.healthcheck,
    )


def build_secret_wanted(old: PipelineStatus, new: PipelineStatus, starting: bool) -> bool | None:
    """Whether the client certificate must be in the namespace now, or can go."""
    if starting:
        return True
    was_building = any(not b.phase.terminal for b in old.builds)
    if was_building and all(b.phase.terminal for b in new.builds):
        return False
    return None
