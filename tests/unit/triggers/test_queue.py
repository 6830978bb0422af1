"""The queue policy's record on the Repository's status (triggers/queue.py)."""

from __future__ import annotations

from shipway.models.repository import MAX_BRANCHES, QueuedRun
from shipway.triggers import queue
from shipway.triggers.decide import Run
from shipway.triggers.events import Event

EVENT = Event(
    kind="pull_request", repository="acme/app", ref="feature", commit="c" * 40,
    delivery="d-1", message="Fix it\\n\\nlong " * 200, committer_name="Ann",
    committer_email="ann@example.com", committer_username="ann", pr_number="7",
    base_ref="main", head_repository="fork/app",
)  # fmt: skip
RUN = Run(name="app-0123456789ab", ci={}, fork=True, branch_key="pr:7")


def test_an_entry_is_valid_status_and_gives_the_event_back() -> None:
    written = queue.entry(EVENT, RUN)
    QueuedRun.model_validate(written)  # what the CRD's schema will accept
    back = queue.event(written)
    assert back.message == EVENT.message[:1024]
    assert back == Event(**{**EVENT.__dict__, "message": EVENT.message[:1024]})
    assert back.fork


def test_first_in_first_out_per_branch_and_a_redelivery_is_kept_once() -> None:
    a = {"branch": "main", "pipeline": "p-a"}
    b = {"branch": "dev", "pipeline": "p-b"}
    c = {"branch": "main", "pipeline": "p-c"}
    waiting = queue.add(queue.add(queue.add([], a) or [], b) or [], c) or []
    assert queue.add(waiting, dict(a)) == waiting
    assert queue.first(waiting, "main") == a
    assert queue.branches(waiting) == ["main", "dev"]
    after = queue.remove(waiting, "p-a")
    assert queue.first(after, "main") == c
    assert queue.first(after, "release") is None


def test_a_full_queue_refuses_more() -> None:
    full = [{"branch": f"b{i}", "pipeline": f"p{i}"} for i in range(MAX_BRANCHES)]
    assert queue.add(full, {"branch": "x", "pipeline": "new"}) is None
    assert queue.add(full, {"branch": "b0", "pipeline": "p0"}) == full
