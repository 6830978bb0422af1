"""The pod store: pods grouped by pipeline, and which pipelines a watch event wakes."""

from __future__ import annotations

from typing import Any

from shipway.engine.podstore import PodStore, pod_entry


def owner(pipeline: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "name": pipeline,
        "uid": f"uid-{pipeline}",
        "controller": True,
        **extra,
    }


def body(name: str, pipeline: str = "demo", namespace: str = "ns", **status: Any) -> Any:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": {"shipway.dev/pipeline": pipeline, "shipway.dev/step": "1"},
            "ownerReferences": [owner(pipeline)],
        },
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Pending", **status},
    }


def put(store: PodStore, pod: Any) -> set[tuple[str, str]]:
    meta = pod["metadata"]
    return store.put(meta["namespace"], meta["name"], pod_entry(pod))


def test_a_pod_without_the_step_label_is_not_a_step() -> None:
    no_step = body("y")
    del no_step["metadata"]["labels"]["shipway.dev/step"]
    assert pod_entry(no_step) is None


def test_a_pod_belongs_to_its_controller_owner_never_to_its_labels() -> None:
    """Issue 18: anyone who may create pods may label one as a step of someone's pipeline."""
    forged = body("x")
    forged["metadata"]["ownerReferences"] = []
    assert pod_entry(forged) is None
    for bad in (
        owner("demo", controller=False),
        owner("demo", kind="Deployment"),
        owner("demo", apiVersion="example.com/v1"),
        owner("demo", uid=""),
    ):
        forged["metadata"]["ownerReferences"] = [bad]
        assert pod_entry(forged) is None, bad
    labelled_other = body("y", pipeline="demo")
    labelled_other["metadata"]["ownerReferences"] = [owner("real")]
    entry = pod_entry(labelled_other)
    assert entry is not None
    assert entry[0] == ("ns", "real")
    assert entry[1].owner_uid == "uid-real"


def test_changes_wake_their_pipeline_and_no_op_updates_wake_nothing() -> None:
    store = PodStore()
    assert put(store, body("a")) == {("ns", "demo")}
    assert put(store, body("a")) == set(), "the same summary: nothing to reconcile"
    assert put(store, body("a", phase="Running")) == {("ns", "demo")}
    assert [p.phase for p in store.pods(("ns", "demo"))] == ["Running"]
    assert store.put("ns", "a", None) == {("ns", "demo")}
    assert store.pods(("ns", "demo")) == []
    assert len(store) == 0
    assert store.put("ns", "a", None) == set(), "deleting twice changes nothing"


def test_pipelines_of_the_same_name_in_two_namespaces_stay_apart() -> None:
    store = PodStore()
    put(store, body("a", namespace="one"))
    put(store, body("a", namespace="two"))
    assert len(store.pods(("one", "demo"))) == 1
    assert len(store.pods(("two", "demo"))) == 1


def test_a_relist_drops_pods_deleted_while_the_watch_was_down_in_that_namespace_only() -> None:
    store = PodStore()
    for name in ("a", "b"):
        put(store, body(name))
    put(store, body("c", namespace="other"))
    fresh = body("b", phase="Succeeded")
    entry = pod_entry(fresh)
    assert entry is not None
    assert store.replace("ns", [("ns", "b", entry)]) == {("ns", "demo")}
    assert [p.name for p in store.pods(("ns", "demo"))] == ["b"]
    assert store.pods(("ns", "demo"))[0].phase == "Succeeded"
    assert len(store.pods(("other", "demo"))) == 1, "another namespace's list is its own"
    assert store.replace("ns", [("ns", "b", entry)]) == set()
    assert store.replace(None, []) == {("ns", "demo"), ("other", "demo")}
    assert len(store) == 0


def test_a_pod_moved_to_another_pipeline_leaves_the_first() -> None:
    store = PodStore()
    put(store, body("a", pipeline="one"))
    assert put(store, body("a", pipeline="two")) == {("ns", "one"), ("ns", "two")}
    assert store.pods(("ns", "one")) == []
