"""Specs that would break the operator rather than run: too deep, or a status too large.

Each is refused by the compiler every path shares (``shipway validate``, the admission webhook,
the operator) with a field error, never a RecursionError or a status etcd cannot store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.limits import (
    BUILD_BYTES,
    ETCD_OBJECT_BYTES,
    MAX_DEPTH,
    MAX_NESTING,
    PUSH_BYTES,
    TooDeepToReadError,
    read_deep,
    worst_status_bytes,
)
from shipway.compiler.pipeline import compile_pipeline
from shipway.models import PipelinePhase, PipelineStatus, StepAttempt, StepPhase, StepStatus
from shipway.models.status import (
    MESSAGE_BYTES,
    BuildStatus,
    GateStatus,
    ImageHealthcheck,
    clip,
    json_size,
)
from tests.unit.builders import spec


def _nested(levels: int) -> dict[str, Any]:
    step: dict[str, Any] = {"service": "a", "command": "true"}
    for _ in range(levels):
        step = {"type": "serial", "steps": [step]}
    return step


def _errors(raw: Any) -> list[str]:
    with pytest.raises(InvalidSpecError) as info:
        compile_pipeline(raw)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize("levels", [MAX_DEPTH, 300, 5000])
def test_groups_nested_too_deep_are_one_clean_error_however_deep(levels: int) -> None:
    (error,) = _errors(spec([_nested(levels)]))
    where = "spec.steps[0]" + ".steps[0]" * (MAX_DEPTH - 1) + ".steps"
    assert error == f"{where}: steps nest deeper than {MAX_DEPTH} levels"


def test_the_deepest_allowed_nesting_compiles() -> None:
    compiled = compile_pipeline(spec([_nested(MAX_DEPTH - 1)]))
    (run,) = compiled.runs
    assert run.group is not None
    assert run.group.count("/") == MAX_DEPTH - 2


def test_on_fail_counts_as_a_level() -> None:
    deep = _nested(MAX_DEPTH - 1)
    node = deep
    while "steps" in node:
        node = node["steps"][0]
    node["on_fail"] = [{"service": "b", "command": "echo failed"}]
    (error,) = _errors(spec([deep]))
    assert error.endswith(f".on_fail: steps nest deeper than {MAX_DEPTH} levels")


def test_deep_data_outside_steps_is_refused_too() -> None:
    value: Any = "x"
    for _ in range(1000):
        value = [value]
    raw = spec([{"service": "a"}])
    raw["services"]["a"]["environment"] = {"DEEP": value}
    (error,) = _errors(raw)
    assert error.startswith("spec.services.a.environment.DEEP")
    assert error.endswith(f"nests deeper than {MAX_NESTING} levels")


def test_a_yaml_file_nested_thousands_deep_is_a_clean_error() -> None:
    import yaml

    # "- - - x": nested block sequences, one level per "- " (PyYAML: two frames per level).
    assert read_deep(lambda: yaml.safe_load("- " * 600 + "x")) is not None  # past the default
    with pytest.raises(TooDeepToReadError, match="nests too deeply to read"):
        read_deep(lambda: yaml.safe_load("- " * 4000 + "x"))


def _steps(count: int, retries: int) -> list[dict[str, Any]]:
    groups = []
    for start in range(0, count, 200):
        steps = [
            {"service": "a", "command": f"echo {i}", "retries": retries}
            for i in range(start, min(count, start + 200))
        ]
        groups.append({"type": "parallel", "steps": steps})
    return groups


def test_a_thousand_steps_fit_but_not_with_ten_retries_each() -> None:
    compiled = compile_pipeline(spec(_steps(1000, 0)))
    assert worst_status_bytes(compiled.runs) < ETCD_OBJECT_BYTES
    (error,) = _errors(spec(_steps(1000, 10)))
    assert error.startswith("spec.steps: the status of 1000 run steps (11000 attempts")
    assert "MiB fit beside this spec in etcd's 1.5 MiB object limit" in error


def test_a_large_spec_leaves_less_room_for_its_status() -> None:
    compile_pipeline(spec(_steps(100, 10)))
    big = spec(_steps(100, 10))
    big["services"]["a"]["environment"] = {f"K{i}": "v" * 4000 for i in range(100)}
    (error,) = _errors(big)
    assert "the status of 100 run steps" in error


def _hostile(size: int) -> str:
    """Text whose JSON form is as large as possible per character."""
    return ('<\u2028\x00\U0001f600"\\é' * size)[:size]


def test_no_real_status_exceeds_the_estimate() -> None:
    """The largest status the model lets the operator write for a step stays within the
    estimate, whatever the kubelet's messages hold."""
    raw = spec([{"name": "é<" * 60, "service": "a", "command": "true", "retries": 3}])
    (run,) = compile_pipeline(raw).runs
    attempt = {
        "pod": "p" * 63,
        "phase": StepPhase.FAILED,
        "exit_code": -(2**31),
        "reason": _hostile(5000),
        "message": _hostile(100_000),
        "started_at": "2026-11-27T12:00:00Z",
        "finished_at": "2026-11-27T12:00:00Z",
    }
    step = StepStatus(
        id=run.id,
        name=run.name,
        group=run.group,
        service=run.service,
        on_fail_of=run.on_fail_of,
        attempt=3,
        attempts=[StepAttempt(attempt=n, **attempt) for n in range(3)],
        **attempt,
    )
    status = PipelineStatus(
        phase=PipelinePhase.FAILED,
        message=_hostile(100_000),
        current_step=_hostile(100_000),
        steps=[step],
    )
    written = json.dumps(status.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert len(written.encode()) <= worst_status_bytes([run])


@pytest.mark.parametrize("text", [_hostile(10_000), "x" * 10_000, "é" * 10_000, "ok"])
def test_clipped_texts_fit_their_budget(text: str) -> None:
    clipped = clip(text, MESSAGE_BYTES)
    assert clipped is not None
    assert json_size(clipped) <= MESSAGE_BYTES
    assert len(json.dumps(clipped, ensure_ascii=False).encode()) <= MESSAGE_BYTES
    assert clipped == text or (clipped.endswith("\u2026") and text.startswith(clipped[:-1]))


def test_every_status_field_is_bounded() -> None:
    """A new status field must be bounded (clipped, or derived from the spec) and counted by
    shipway.compiler.limits: extend this list only after doing so."""
    assert set(StepStatus.model_fields) == {
        *("id", "name", "group", "service", "on_fail_of"),  # from the spec
        *("phase", "pod", "attempt", "exit_code", "created_at", "started_at", "finished_at"),
        *("reason", "message", "pod_uid"),  # clipped
        *("image", "digest"),  # clipped, counted for push steps (PUSH_BYTES)
        "attempts",  # at most retries
    }
    assert set(StepAttempt.model_fields) == {
        *("attempt", "pod", "phase", "exit_code", "reason", "message"),
        *("created_at", "started_at", "finished_at", "pod_uid"),
    }
    assert set(BuildStatus.model_fields) == {
        "service",  # from the spec
        *("phase", "pod", "created_at", "started_at", "finished_at"),
        *("cached_steps", "total_steps"),  # numbers
        "pod_uid",  # clipped
        *("reason", "message", "image", "digest"),  # clipped
        "healthcheck",  # its command refused over HEALTHCHECK_TEST_BYTES, numbers
    }
    assert set(PipelineStatus.model_fields) == {
        *("phase", "progress", "current_step", "message", "started_at", "finished_at"),
        *("node_name", "observed_generation", "conditions", "steps", "source"),
        "builds",  # one per service with build (BUILD_BYTES each)
        "approvals",  # one per manual group (GATE_BYTES each)
    }
    assert set(GateStatus.model_fields) == {
        *("gate", "name"),  # from the spec
        *("phase", "waiting_since", "decided_at"),
        *("user", "message"),  # clipped
    }


def test_push_and_build_entries_stay_within_the_estimate() -> None:
    """A push step's image and digest and a build's entry, however long what the pods
    report, fit what limits counts for them; a run step is not charged for them."""
    raw = {
        "services": {"app" * 20: {"build": "."}},
        "steps": [
            {"name": "test", "service": "app" * 20, "command": "true"},
            {
                "name": "push",
                "type": "push",
                "service": "app" * 20,
                "image_name": "registry.example/team/app",
                "dockercfgSecret": "creds",
            },
        ],
        "source": {"upload": {}},
    }
    test_run, push_run = compile_pipeline(raw).runs
    hostile = {"reason": _hostile(5000), "message": _hostile(100_000)}
    times = {"started_at": "2026-11-27T12:00:00Z", "finished_at": "2026-11-27T12:00:00Z"}
    push = StepStatus(
        id=push_run.id,
        name=push_run.name,
        service=push_run.service,
        phase=StepPhase.FAILED,
        pod="p" * 63,
        exit_code=-(2**31),
        image=_hostile(100_000),
        digest=_hostile(10_000),
        **hostile,
        **times,
    )
    build = BuildStatus(
        service=push_run.service,
        phase=StepPhase.FAILED,
        pod="p" * 63,
        image=_hostile(100_000),
        digest=_hostile(10_000),
        cached_steps=2**40,
        total_steps=2**40,
        healthcheck=ImageHealthcheck(
            test=["CMD-SHELL", "<&>" * 30, "x" * 400],
            interval=1e300,
            timeout=-1.5e-300,
            start_period=123456789.123456789,
            retries=2**62,
        ),
        **hostile,
        **times,
    )
    status = PipelineStatus(phase=PipelinePhase.FAILED, steps=[push], builds=[build])
    written = json.dumps(status.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert len(written.encode()) <= worst_status_bytes([push_run], [push_run.service])
    assert worst_status_bytes([push_run]) - worst_status_bytes([test_run]) >= PUSH_BYTES
    without = worst_status_bytes([test_run, push_run])
    assert worst_status_bytes([test_run, push_run], ["app"]) == without + BUILD_BYTES + 3


def test_the_size_error_counts_the_builds() -> None:
    raw = spec(_steps(1000, 9))
    raw["services"]["a"] = {"build": "."}
    raw["source"] = {"upload": {}}
    (error,) = _errors(raw)
    assert error.startswith("spec.steps: the status of 1000 run steps (10000 attempts")
    assert "with the retries of 1000) and 1 builds could reach" in error
