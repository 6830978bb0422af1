"""Issue 30 in the pure core: a retry's wait is named and bounded, a lost workspace claim
fails the run at once, and a namespace's pods are capped across its pipelines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shipway.controller.config import ConfigError, OperatorConfig
from shipway.engine.observe import PodView
from shipway.engine.planner import Plan, Settings, plan
from shipway.models import PipelinePhase, PipelineStatus, StepPhase

from .builders import NOW, REF, compiled, pod, spec

RETRY = spec(
    [
        {"service": "a", "name": "flaky", "command": "x", "retries": 1},
        {"service": "a", "name": "after", "command": "y"},
    ]
)
FIRST = "demo-4a49a-1-flaky"


def run(
    raw: dict[str, Any],
    status: PipelineStatus | None = None,
    pods: list[PodView] | None = None,
    **kw: Any,
) -> Plan:
    return plan(
        REF, compiled(raw), status or PipelineStatus(), pods or [], kw.pop("now", NOW), **kw
    )


def step(status: PipelineStatus, name: str) -> Any:
    return next(s for s in status.steps if s.name == name)


# -- item 5: a retry waiting for an old pod ---------------------------------------------------


def test_a_retry_names_the_pod_it_waits_for_then_gives_up_after_the_grace() -> None:
    settings = Settings(retry_grace=120)
    first = run(RETRY, settings=settings)
    held = pod(FIRST, "1", deleted=True)  # deleted at NOW; a finalizer keeps it
    waiting = run(RETRY, first.status, [held], settings=settings)
    flaky = step(waiting.status, "flaky")
    assert waiting.create == ()
    assert (flaky.phase, flaky.reason) == (StepPhase.RUNNING, "WaitingForRetry")
    assert flaky.message == (
        f"attempt 2 of 2 waits for pod {FIRST!r} of the previous attempt to go "
        "(it is being deleted); gives up after 2m"
    )
    assert [a.reason for a in flaky.attempts] == ["PodDeleted"]
    assert waiting.requeue_after == 120, "looked at again when the grace runs out"
    later = NOW + timedelta(seconds=60)
    still = run(RETRY, waiting.status, [held], settings=settings, now=later)
    assert step(still.status, "flaky").message == flaky.message, "no status write per look"
    assert still.requeue_after == 60
    late = run(RETRY, still.status, [held], settings=settings, now=NOW + timedelta(seconds=121))
    flaky = step(late.status, "flaky")
    assert (flaky.phase, flaky.reason) == (StepPhase.FAILED, "RetryBlocked")
    assert flaky.message.startswith(
        f"attempt 2 of 2 could not start: pod {FIRST!r} of the previous attempt is being "
        "deleted after 2m"
    )
    assert late.status.phase == PipelinePhase.FAILED
    assert step(late.status, "after").phase == StepPhase.SKIPPED
    assert (late.create, late.delete, late.stop) == ((), (), ())
    assert late.requeue_after is None


def test_a_retry_whose_old_pod_goes_in_time_starts_as_before() -> None:
    settings = Settings(retry_grace=120)
    first = run(RETRY, settings=settings)
    waiting = run(RETRY, first.status, [pod(FIRST, "1", deleted=True)], settings=settings)
    gone = run(RETRY, waiting.status, [], settings=settings, now=NOW + timedelta(seconds=100))
    assert [c.name for c in gone.create] == ["demo-4a49a-1-r1-flaky"]
    assert step(gone.status, "flaky").reason == "Retrying"


def test_an_old_pod_that_still_runs_is_waited_for_from_the_end_of_its_attempt() -> None:
    """A pod on a lost node: stopped, but the kubelet that would end it is gone."""
    settings = Settings(retry_grace=30, start_grace=10)
    first = run(RETRY, settings=settings)
    stuck = pod(FIRST, "1", waiting="ImagePullBackOff", created=-60, node="lost")
    failed = run(RETRY, first.status, [stuck], settings=settings)
    flaky = step(failed.status, "flaky")
    assert (flaky.reason, failed.stop) == ("WaitingForRetry", (FIRST,))
    assert "(it still runs)" in flaky.message
    late = run(RETRY, failed.status, [stuck], settings=settings, now=NOW + timedelta(seconds=31))
    assert step(late.status, "flaky").reason == "RetryBlocked"


def test_the_retry_grace_is_an_operator_setting() -> None:
    assert OperatorConfig.from_env({}).settings.retry_grace == 120
    assert OperatorConfig.from_env({"SHIPWAY_RETRY_GRACE": "15s"}).settings.retry_grace == 15
    with pytest.raises(ConfigError, match="SHIPWAY_RETRY_GRACE"):
        OperatorConfig.from_env({"SHIPWAY_RETRY_GRACE": "0"})
    with pytest.raises(ConfigError, match="SHIPWAY_RETRY_GRACE"):
        OperatorConfig.from_env({"SHIPWAY_RETRY_GRACE": "soon"})
