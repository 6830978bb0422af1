"""Issue 30, item 1: a pod is input. Nothing in one may make the observer raise.

Property-based: hypothesis writes pods with Shipway's step labels whose labels, annotations,
owner references, spec and status hold any JSON value of any type; the pod watch's summary
(``summarise``), the store and the planner's reading of an attempt (``outcome``) take them all.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipway.controller.podwatch import decode, summarise
from shipway.engine.observe import pod_view, safe_pod_view
from shipway.engine.outcome import outcome
from shipway.engine.podstore import PodStore, pod_entry
from shipway.engine.untrusted import MalformedObjectError, attempt_label

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
times = st.one_of(
    st.none(),
    json_values,
    st.sampled_from(
        ["2026-12-06T11:59:00Z", "0001-01-01T00:00:00Z", "not a time", "", "9999-12-31T23:59:59Z"]
    ),
)
label_values = st.one_of(
    json_values, st.sampled_from(["0", "1", "x", "", "-1", "99999999999999999999", "\u0661", "1e3"])
)
owner_refs = (
    st.lists(
        st.fixed_dictionaries(
            {
                "apiVersion": st.one_of(st.just("shipway.dev/v1alpha1"), json_values),
                "kind": st.one_of(st.just("Pipeline"), json_values),
                "name": st.one_of(st.just("demo"), json_values),
                "uid": st.one_of(st.just("uid-demo"), json_values),
                "controller": st.one_of(st.just(True), json_values),
            }
        ),
        max_size=2,
    )
    | json_values
)
states = st.dictionaries(
    st.sampled_from(["waiting", "running", "terminated"]),
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "reason": json_values,
                "message": json_values,
                "exitCode": json_values,
                "startedAt": times,
                "finishedAt": times,
            }
        ),
    ),
    max_size=3,
)
container_statuses = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"name": st.one_of(st.just("main"), json_values), "state": states}),
    ),
    max_size=3,
)
conditions = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["DisruptionTarget", "PodScheduled", "Ready"]),
            "status": st.sampled_from(["True", "False"]),
            "reason": st.one_of(st.just("Unschedulable"), json_values),
            "message": json_values,
        }
    ),
    max_size=2,
)
pods = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {
                "name": st.one_of(st.just("demo-1-x"), json_values),
                "namespace": st.one_of(st.just("ns"), json_values),
                "uid": json_values,
                "labels": st.one_of(
                    st.fixed_dictionaries(
                        {
                            "shipway.dev/pipeline": label_values,
                            "shipway.dev/step": label_values,
                            "shipway.dev/attempt": label_values,
                        }
                    ),
                    json_values,
                ),
                "annotations": st.one_of(
                    st.fixed_dictionaries({"kubectl.kubernetes.io/default-container": json_values}),
                    json_values,
                ),
                "ownerReferences": owner_refs,
                "creationTimestamp": times,
                "deletionTimestamp": times,
                "deletionGracePeriodSeconds": json_values,
            }
        ),
        "spec": st.one_of(
            json_values,
            st.fixed_dictionaries({"nodeName": json_values, "activeDeadlineSeconds": json_values}),
        ),
        "status": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {
                    "phase": st.one_of(
                        st.sampled_from(["Pending", "Running", "Succeeded", "Failed"]), json_values
                    ),
                    "reason": json_values,
                    "message": json_values,
                    "startTime": times,
                    "conditions": st.one_of(conditions, json_values),
                    "containerStatuses": st.one_of(container_statuses, json_values),
                    "initContainerStatuses": st.one_of(container_statuses, json_values),
                }
            ),
        ),
    }
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods)
def test_no_pod_makes_the_observer_raise(pod: dict[str, Any]) -> None:
    entry = summarise(pod)  # the pod watch's own reading: never raises
    view = safe_pod_view(pod)
    if entry is not None:
        assert view is not None
        assert entry[1] == view
        assert isinstance(view.attempt, int)
        assert isinstance(view.step_id, str)
        for grace in (0.0, 60.0):
            result = outcome(view, NOW, grace, grace)
            assert result.phase.value in ("Running", "Succeeded", "Failed")
    store = PodStore()
    store.put("ns", "demo-1-x", entry)
    store.replace("ns", [])
    assert len(store) == 0


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods)
def test_the_store_reads_every_pod_without_the_watchs_safety_net(pod: dict[str, Any]) -> None:
    """pod_entry itself raises nothing but MalformedObjectError (the watch's catch-all is a
    net, not the design)."""
    with contextlib.suppress(MalformedObjectError):
        pod_entry(pod)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_object_or_line_is_skipped_not_raised(value: Any) -> None:
    assert summarise(value) is None or isinstance(value, dict)
    assert decode(str(value)) is None or isinstance(decode(str(value)), dict)


def issue_pod(attempt: Any) -> dict[str, Any]:
    """The pod of the issue: step labels, a Pipeline controller (any UID), attempt "x"."""
    return {
        "metadata": {
            "name": "bad",
            "namespace": "ns",
            "uid": "u-bad",
            "labels": {
                "shipway.dev/pipeline": "demo",
                "shipway.dev/step": "1",
                "shipway.dev/attempt": attempt,
            },
            "ownerReferences": [
                {
                    "apiVersion": "shipway.dev/v1alpha1",
                    "kind": "Pipeline",
                    "name": "demo",
                    "uid": "anything",
                    "controller": True,
                }
            ],
        },
        "status": {"phase": "Running"},
    }


@pytest.mark.parametrize("attempt", ["x", "-1", "1.5", "\u0661", "99999999", 3, None, ["1"]])
def test_the_issue_pod_is_skipped_and_named(attempt: Any, caplog: Any) -> None:
    if attempt is None:
        assert summarise(issue_pod(attempt)) is not None, "absent: the first attempt"
        return
    with pytest.raises(MalformedObjectError):
        pod_entry(issue_pod(attempt))
    assert summarise(issue_pod(attempt)) is None
    assert "ns/bad" in caplog.text


def test_a_good_attempt_label_still_reads() -> None:
    assert attempt_label("0") == 0
    assert attempt_label("12") == 12
    view = pod_view(issue_pod("2"))
    assert view is not None
    assert view.attempt == 2


def test_a_deep_watch_line_is_skipped() -> None:
    assert decode("[" * 100_000 + "]" * 100_000) is None
    assert decode("not json") is None
    assert decode('{"type": "ADDED", "object": {}}') == {"type": "ADDED", "object": {}}
