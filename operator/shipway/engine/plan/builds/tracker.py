"""Every build of a pipeline while planning: derived from the status and the pods, started
together once the checkout is in place, and asked by each step whether it may start (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from shipway.compiler.builds import ResolvedBuild
from shipway.compiler.source import GitCheckout
from shipway.compiler.tree import RunNode
from shipway.engine.intents import BuildToCreate
from shipway.engine.naming import (
    BUILD_CONTAINER,
    INSPECT_CONTAINER,
    build_pod_name,
    build_task_id,
    cache_repository,
    image_repository,
    project_key,
    tag_for,
)
from shipway.engine.observe import PodView, container_named
from shipway.engine.outcome import Outcome
from shipway.engine.plan.builds.args import render_args
from shipway.engine.plan.builds.needs import gated_by_image, needed_builds, wanted_builds
from shipway.engine.plan.builds.result import parse_result, summary
from shipway.engine.plan.builds.state import BuildState, Gate, record, shown
from shipway.engine.plan.inputs import PlanInput
from shipway.engine.plan.task import Task, Tracker
from shipway.engine.reasons import PodReason, StepReason
from shipway.engine.termination import as_healthcheck, parse_inspect
from shipway.models import BuildStatus, Healthcheck, SourceStatus, StepPhase

DEFAULT_CACHE_TAG = "default"
UNREADABLE = "the image was built, but its HEALTHCHECK could not be read"
VANISHED = "the build's pod disappeared before the build finished"


class Builds(Tracker):
    """Every build's state, the pods to stop, and the gate each step passes to start."""

    def __init__(self, inputs: PlanInput, *, branch: str | None = None) -> None:
        super().__init__(inputs)
        self.ref = ref = inputs.ref
        self.compiled = compiled = inputs.compiled
        self.config = config = inputs.settings.build
        self.branch = branch
        self.problem = config.problem()
        known = {rec.service: rec for rec in inputs.status.builds}
        registry = config.registry or "registry.invalid"
        self.by_service: dict[str, BuildState] = {}
        for name, service in compiled.services.items():
            if service.build is None:
                continue
            repository = image_repository(registry, ref.namespace, ref.name, ref.uid, service=name)
            state = BuildState(service.build, repository)
            pod = inputs.pods_by_step.get(build_task_id(name), {}).get(0)
            self._derive(state, known.get(name), pod)
            self.by_service[name] = state
        self.inspected = gated_by_image(compiled)
        for name in wanted_builds(compiled):
            self.by_service[name].wanted = True
            self._refuse_if_unbuildable(self.by_service[name])

    # -- state from the record and the pod ------------------------------------------------

    def pod_name(self, service: str) -> str:
        return build_pod_name(self.ref.name, self.ref.uid, service)

    def _derive(self, state: BuildState, rec: BuildStatus | None, pod: PodView | None) -> None:
        state.task = Task.recorded(rec)
        if rec is not None:
            state.digest = rec.digest
            state.cached_steps, state.total_steps = rec.cached_steps, rec.total_steps
            state.repository = rec.image or state.repository
            state.healthcheck = rec.healthcheck
        if state.phase.terminal:
            self.stop_if_live(pod)
            return
        name = self.pod_name(state.service)
        state.task, result = self.observe(state.task, name, pod, VANISHED)
        if result is None:
            state.task = state.task.pending()
            return
        if pod is None:  # refused (its whole message), or its pod vanished
            refusal = self.inputs.rejected.get(name)
            if refusal is not None:
                self._end(state, StepPhase.FAILED, refusal.reason, refusal.message)
            else:
                self._end(state, StepPhase.FAILED, StepReason.POD_DELETED, VANISHED)
            return
        build = container_named(pod, BUILD_CONTAINER)  # when it started: not the inspect after it
        started = (build and build.started_at) or result.started_at or state.task.started_at
        state.task = state.task.started(started)
        if result.phase != StepPhase.RUNNING:
            self._read(state, pod, result)

    def _read(self, state: BuildState, pod: PodView, result: Outcome) -> None:
        """An ended build pod's report: the digest and healthcheck, or why it failed."""
        build = container_named(pod, BUILD_CONTAINER)
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
            self._end(
                state,
                StepPhase.SUCCEEDED,
                StepReason.COMPLETED,
                None,
                finished_at=result.finished_at,
            )
            return
        reason: str = result.reason or StepReason.POD_FAILED
        message: str | None = result.message
        if result.reason == PodReason.DEADLINE_EXCEEDED:
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
        self._end(state, StepPhase.FAILED, reason, message, finished_at=result.finished_at)

    def _end(
        self,
        state: BuildState,
        phase: StepPhase,
        reason: str,
        message: str | None,
        *,
        finished_at: str | None = None,
    ) -> None:
        state.task = state.task.ended(phase, reason, message, finished_at or self.stamp)
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
                why = summary(state.task.message) or state.task.reason or "it failed"
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
            waiting = self.quota_wait(name)
            if waiting is not None:
                state.task = state.task.noted(StepReason.EXCEEDED_QUOTA, waiting)
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
            state.task, state.start = state.task.created(name, self.stamp), True
        return tuple(creates)

    def _cache(self, build: ResolvedBuild) -> tuple[str | None, tuple[str, ...]]:
        if not build.cached or not self.config.registry:
            return None, ()
        spec = self.compiled.spec
        project = project_key(spec.cacheKey, self._git_url(), self.ref.generate_name, self.ref.name)
        repo = cache_repository(self.config.registry, self.ref.namespace, project, build.service)
        tags = [tag_for(self.branch) if self.branch else DEFAULT_CACHE_TAG]
        if build.default_cache_branch:
            tags.append(tag_for(build.default_cache_branch))
        return repo, tuple(dict.fromkeys(tags))

    def _git_url(self) -> str | None:
        source = self.compiled.source
        return source.url if isinstance(source, GitCheckout) else None

    def busy(self) -> bool:
        """A build runs, starts now, or waits for quota."""
        return self.quota is not None or any(
            s.phase == StepPhase.RUNNING for s in self.by_service.values()
        )

    def end_unneeded(self) -> None:
        """The pipeline is over: builds still running or waiting are not needed any more."""
        why = "the pipeline ended before a step needed this image"
        self.stop_everything((StepPhase.CANCELLED, StepReason.NOT_NEEDED, why))

    def stop_everything(self, end: tuple[StepPhase, str, str]) -> None:
        """Cancel, time out, or the pipeline ended: running builds stop, pending ones never run."""
        for state in self.by_service.values():
            if state.phase.terminal:
                continue
            if state.phase == StepPhase.RUNNING or state.wanted or state.requested:
                self.stop_task(state, end)
            # else no step ever needed it: it stays out of the status

    def statuses(self) -> list[BuildStatus]:
        return [record(state) for state in self.by_service.values() if shown(state)]

    def values(self) -> Iterable[BuildState]:
        return self.by_service.values()
