"""The command line's pure formatting: status trees, progress, step results, the list."""

from __future__ import annotations

import pytest

from shipway.cli.format import (
    Style,
    format_age,
    format_duration,
    log_line,
    pipeline_status,
    pipeline_table,
    progress_line,
    result_line,
    summary_line,
)
from shipway.cli.statustree import status_tree
from shipway.cli.tree import build_tree, group_phase

from .client_builders import NOW, SPEC, failed_run, pipeline, step


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (59, "59s"),
        (60, "1m00s"),
        (65, "1m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (7322, "2h02m"),
        (-5, "0s"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (59, "59s"),
        (60, "1m"),
        (119, "1m"),
        (7199, "119m"),
        (7200, "2h"),
        (172799, "47h"),
        (172800, "2d"),
    ],
)
def test_ages_like_kubectl(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_the_status_tree_of_a_failed_run() -> None:
    assert status_tree(failed_run(), NOW) == [
        "Pipeline ci/demo-x1: Failed (4/4) in 42s",
        "  failed: lint",
        "├─ ✔ build              Succeeded  exit 0   5s",
        "├─ ✗ checks (parallel)  Failed             36s",
        "│  ├─ ✔ unit            Succeeded  exit 0  34s",
        "│  ├─ ✗ lint            Failed     exit 1   3s  container exited with a 1 code",
        "│  └─ ✔ on_fail         Succeeded           1s",
        "│     └─ ✔ notify       Succeeded  exit 0   1s",
        "└─ - deploy             Skipped                 PreviousStepFailed",
    ]


def test_a_running_tree_counts_time_up_to_now_and_shows_pending_steps() -> None:
    running = pipeline(
        "Running",
        [
            step("1", "build", "Succeeded", pod="p-1", exit_code=0, started=0, finished=5),
            step("2", "unit", "Running", group="checks", pod="p-2", started=6),
            step(
                "3",
                "lint",
                "Running",
                group="checks",
                pod="p-3",
                started=6,
                reason="ImagePullBackOff",
            ),
        ],
        progress="1/4",
    )
    lines = status_tree(running, NOW)
    assert lines[0] == "Pipeline ci/demo-x1: Running (1/4), 1m00s"
    assert lines[2:] == [
        "├─ ● checks (parallel)  Running            54s",
        "│  ├─ ● unit            Running            54s",
        "│  ├─ ● lint            Running            54s  ImagePullBackOff",
        # steps the operator has not reached yet are in the tree, from the spec
        "│  └─ ○ on_fail         Pending",
        "│     └─ ○ notify       Pending",
        "└─ ○ deploy             Pending",
    ]


def test_without_a_readable_spec_the_tree_comes_from_group_paths() -> None:
    body = failed_run()
    body["spec"] = {"steps": "not a list"}
    tree = build_tree(body["spec"], pipeline_status(body))
    assert [(n.name, n.kind) for n in tree] == [
        ("build", "step"),
        ("checks", "group"),
        ("deploy", "step"),
    ]
    assert [c.name for c in tree[1].children] == ["unit", "lint", "notify"]


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        (["Succeeded", "Succeeded"], "Succeeded"),
        (["Succeeded", "Pending"], "Running"),
        (["Pending", "Pending"], "Pending"),
        (["Failed", "Running"], "Running"),
        (["Failed", "Succeeded"], "Failed"),
        (["Skipped", "Skipped"], "Skipped"),
        (["Skipped", "Succeeded"], "Succeeded"),
        (["Cancelled", "Skipped"], "Cancelled"),
    ],
)
def test_a_group_phase_follows_its_steps(phases: list[str], expected: str) -> None:
    body = pipeline(
        "Running",
        [step("1", "build", "Succeeded")]
        + [
            step(str(i + 2), n, p, group="checks")
            for i, (n, p) in enumerate(zip(("unit", "lint"), phases, strict=True))
        ]
        + [step("4", "notify", "Failed", group="checks", onFailOf="checks")],
    )
    checks = build_tree(SPEC, pipeline_status(body))[1]
    assert group_phase(checks) == expected  # its failed on_fail step does not count


def test_colours_only_when_asked() -> None:
    plain = status_tree(failed_run(), NOW)
    coloured = status_tree(failed_run(), NOW, Style(colour=True))
    assert all("\x1b[" not in line for line in plain)
    assert "\x1b[31m✗\x1b[0m lint" in coloured[5]
    assert [_strip(line) for line in coloured] == plain


def _strip(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_progress_lines() -> None:
    body = pipeline(
        "Running",
        [
            step("1", "build", "Succeeded", pod="p-1"),
            step("2", "unit", "Running", group="checks", pod="p-2"),
            step("3", "lint", "Running", group="checks", pod="p-3", reason="ContainerCreating"),
        ],
        progress="1/4",
        started=30,
    )
    assert progress_line(body, NOW) == (
        "[1/4] Running: checks/unit, checks/lint (ContainerCreating) (30s)"
    )
    assert progress_line(body, NOW, timed=False).endswith("(ContainerCreating)")
    waiting = pipeline("Pending", [], started=None)
    del waiting["status"]
    assert progress_line(waiting, NOW) == "Pending: waiting for the operator"


@pytest.mark.parametrize(
    ("phase", "reason", "message", "retrying", "line"),
    [
        ("Succeeded", "Completed", None, False, "(step: test) success ✔"),
        (
            "Failed",
            "Error",
            "container exited with a 1 code",
            False,
            "(step: test) error ✗ container exited with a 1 code",
        ),
        (
            "Failed",
            "DeadlineExceeded",
            None,
            True,
            "(step: test) error ✗ DeadlineExceeded (retrying)",
        ),
        (
            "Cancelled",
            "Cancelled",
            "the pipeline was cancelled",
            False,
            "(step: test) cancelled ■ the pipeline was cancelled",
        ),
    ],
)
def test_result_lines_as_jet_prints_them(
    phase: str, reason: str, message: str | None, retrying: bool, line: str
) -> None:
    assert result_line("test", phase, reason, message, retrying=retrying) == line


def test_log_lines_carry_the_step() -> None:
    assert log_line("unit tests", "ok 1 - adds") == "(step: unit tests) ok 1 - adds"


def test_summary_lines() -> None:
    assert summary_line(failed_run(), NOW) == "Pipeline ci/demo-x1 failed in 42s (failed: lint)"
    done = pipeline("Succeeded", [], finished=12)
    assert summary_line(done, NOW) == "Pipeline ci/demo-x1 succeeded in 12s"


def test_the_list_table() -> None:
    items = [
        failed_run(),
        pipeline("Running", [], name="demo-x2", progress="1/3")
        | {
            "metadata": {
                "name": "demo-x2",
                "namespace": "other",
                "creationTimestamp": "2026-11-27T11:59:30Z",
            }
        },
    ]
    items[1]["status"]["currentStep"] = "unit, lint"
    assert pipeline_table(items, NOW) == [
        "NAME      PHASE     PROGRESS   STEP         AGE",
        "demo-x1   Failed    4/4                     1m",
        "demo-x2   Running   1/3        unit, lint   30s",
    ]
    assert pipeline_table(items, NOW, namespaces=True)[2].startswith("other       demo-x2")
