"""The triggers phase's reading of what it measured: the receiver's log line (as a real run
wrote it) and the stages a pipeline's claim and pods show."""

from __future__ import annotations

from types import SimpleNamespace as Obj
from typing import Any

from bench import triggers

LINE = (
    "2026-12-06 20:08:07,301 shipway.triggers INFO pipeline bench-491577-581fe17acd1c created"
    " 0.063s after receipt (checked 0.004s, queued 0.002s, read 0.044s, converted 0.002s,"
    " created 0.010s; 1 forge calls)\n"
)


def test_the_receivers_line_is_read_whole() -> None:
    parts = triggers.PARTS.search(LINE)
    assert parts is not None
    assert parts.groups() == ("0.004", "0.002", "0.044", "0.002", "0.010", "1")
    at = triggers.CREATED_AT.search(LINE)
    assert at is not None
    assert at.group(2) == "bench-491577-581fe17acd1c"
    assert abs(triggers._wall(at.group(1)) % 60 - 7.301) < 1e-6


def _pod(step: str, node: str = "", state: dict[str, Any] | None = None) -> Any:
    statuses = [Obj(state=Obj(**{"running": None, "terminated": None, **state}))] if state else []
    return Obj(
        metadata=Obj(labels={"shipway.dev/step": step}),
        spec=Obj(node_name=node or None),
        status=Obj(container_statuses=statuses),
    )


def test_stages_of_the_checkout_and_the_first_step() -> None:
    assert triggers._pod_stages(_pod("source")) == ["checkout"]
    assert triggers._pod_stages(_pod("source", "n1")) == ["checkout", "checkout_scheduled"]
    running = _pod("source", "n1", {"running": Obj()})
    assert triggers._pod_stages(running)[-1] == "checkout_running"
    ended = triggers._pod_stages(_pod("source", "n1", {"terminated": Obj()}))
    assert ended[-2:] == ["checkout_running", "checkout_ended"]
    assert triggers._pod_stages(_pod("1")) == ["first_step"]
    assert triggers._claim_stages(Obj(status=Obj(phase="Pending"))) == ["claim"]
    assert triggers._claim_stages(Obj(status=Obj(phase="Bound"))) == ["claim", "claim_bound"]


def test_parts_are_between_stages_in_order() -> None:
    seen = triggers.PodSeen.__new__(triggers.PodSeen)
    seen.seen = {
        "a": {"claim": 0.0, "checkout": 0.1, "claim_bound": 3.0, "first_step": 5.0},
        "b": {"claim": 0.0, "checkout": 0.2},
    }
    parts = seen.parts()
    assert parts["claim_to_checkout"] == [0.1, 0.2]
    assert parts["checkout_to_claim_bound"] == [3.0 - 0.1]
    assert parts["checkout_ended_to_first_step"] == []
    assert seen.first_step == {"a": 5.0}
