"""Which attempts started and ended between two looks at a Pipeline, each reported once."""

from __future__ import annotations

from typing import Any

from shipway.cli.format import pipeline_status
from shipway.cli.tracker import AttemptEnded, AttemptStarted, Event, Tracker

from .client_builders import pipeline, step


def events(tracker: Tracker, steps: list[dict[str, Any]]) -> list[str]:
    return [_describe(e) for e in tracker.update(pipeline_status(pipeline("Running", steps)))]


def _describe(event: Event) -> str:
    if isinstance(event, AttemptStarted):
        return f"start {event.step.name} {event.pod}"
    assert isinstance(event, AttemptEnded)
    final = "" if event.final else " (again)"
    return f"end {event.step.name} {event.pod} {event.phase}{final}"


def test_a_serial_run_reports_each_start_and_end_once_in_order() -> None:
    tracker = Tracker()
    assert events(tracker, [step("1", "a"), step("2", "b")]) == []
    assert events(tracker, [step("1", "a", "Running", pod="p1"), step("2", "b")]) == ["start a p1"]
    assert events(tracker, [step("1", "a", "Running", pod="p1"), step("2", "b")]) == []
    # a's end and b's start in one update: the end comes first
    assert events(
        tracker,
        [step("1", "a", "Succeeded", pod="p1"), step("2", "b", "Running", pod="p2")],
    ) == ["end a p1 Succeeded", "start b p2"]
    assert events(
        tracker,
        [step("1", "a", "Succeeded", pod="p1"), step("2", "b", "Failed", pod="p2")],
    ) == ["end b p2 Failed"]


def test_attaching_late_reports_everything_that_already_happened() -> None:
    tracker = Tracker()
    assert events(
        tracker,
        [
            step("1", "a", "Succeeded", pod="p1"),
            step("2", "b", "Running", pod="p2"),
            step("3", "c", "Running", pod="p3"),
        ],
    ) == ["start a p1", "end a p1 Succeeded", "start b p2", "start c p3"]


def test_a_retried_step_reports_every_attempt() -> None:
    tracker = Tracker()
    assert events(tracker, [step("1", "flaky", "Running", pod="p1-r0")]) == ["start flaky p1-r0"]
    first = {"attempt": 0, "pod": "p1-r0", "phase": "Failed", "reason": "Error"}
    assert events(
        tracker, [step("1", "flaky", "Running", pod="p1-r1", attempt=1, attempts=[first])]
    ) == ["end flaky p1-r0 Failed (again)", "start flaky p1-r1"]
    assert events(
        tracker, [step("1", "flaky", "Succeeded", pod="p1-r1", attempt=1, attempts=[first])]
    ) == ["end flaky p1-r1 Succeeded"]


def test_steps_that_end_without_a_pod() -> None:
    tracker = Tracker()
    assert events(
        tracker,
        [
            step("1", "a", "Cancelled", reason="Cancelled"),
            step("2", "b", "Skipped", reason="FilteredOut"),
            step("3", "c", "Failed", reason="PodRejected"),
        ],
    ) == ["end a None Cancelled", "end c None Failed"]
    assert events(tracker, [step("1", "a", "Cancelled"), step("3", "c", "Failed")]) == []


def test_only_the_chosen_steps() -> None:
    tracker = Tracker(include=lambda s: s.name == "b")
    assert events(
        tracker,
        [step("1", "a", "Succeeded", pod="p1"), step("2", "b", "Running", pod="p2")],
    ) == ["start b p2"]
