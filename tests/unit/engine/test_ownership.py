"""Issue 30, item 2: a pod that only claims to be a step's never gives the step's result.

Name, labels and a controller reference with the Pipeline's UID are all readable with
``kubectl get``; the UID the operator recorded from its create, and the seal only it can
make, are not forgeable. Pure rule first, then the reconciler against the fake API server.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from shipway.controller.reconciler import Reconciler
from shipway.engine.observe import pod_view
from shipway.engine.ownership import record_uids, seal, sealed, sort_pods
from shipway.engine.settings import PodOptions
from shipway.models import PipelineStatus, StepAttempt, StepPhase, StepStatus
from tests.unit.builders import NOW
from tests.unit.fakekube import KEY, FakeKube, snapshot

PIPELINE_UID = "uid-1"
KEY_BYTES = b"k" * 32
GATE_SPEC: dict[str, Any] = {
    "services": {"app": {"image": "busybox:1.36"}},
    "steps": [
        {"name": "gate", "service": "app", "command": "false"},
        {"name": "deploy", "service": "app", "command": "echo deployed"},
    ],
}


def pod(name: str, uid: str, *, owner: str = PIPELINE_UID, sealed_with: bytes | None = None) -> Any:
    annotations = {}
    if sealed_with is not None:
        annotations["shipway.dev/seal"] = seal(sealed_with, PIPELINE_UID, name)
    view = pod_view(
        {
            "metadata": {
                "name": name,
                "uid": uid,
                "labels": {"shipway.dev/step": "1", "shipway.dev/attempt": "0"},
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "shipway.dev/v1alpha1",
                        "kind": "Pipeline",
                        "name": "demo",
                        "uid": owner,
                        "controller": True,
                    }
                ],
            },
            "status": {"phase": "Succeeded"},
        }
    )
    assert view is not None
    return view


def status_naming(name: str | None, uid: str | None) -> PipelineStatus:
    step = StepStatus(
        id="1", name="gate", service="app", phase=StepPhase.RUNNING, pod=name, pod_uid=uid
    )
    return PipelineStatus(steps=[step] if name else [])


def test_the_seal_is_bound_to_the_key_the_pipeline_and_the_name() -> None:
    mine = pod("p", "u1", sealed_with=KEY_BYTES)
    assert sealed(KEY_BYTES, PIPELINE_UID, mine)
    assert not sealed(b"other key" * 4, PIPELINE_UID, mine)
    assert not sealed(KEY_BYTES, "uid-2", mine)
    copied = pod("q", "u2")
    copied = type(copied)(
        **{**{f: getattr(copied, f) for f in copied.__slots__}, "seal": mine.seal}
    )
    assert not sealed(KEY_BYTES, PIPELINE_UID, copied), "a seal read off one pod fits no other name"
    assert not sealed(KEY_BYTES, PIPELINE_UID, pod("p", "u1")), "unsealed"


def test_an_unrecorded_pod_counts_only_with_the_seal() -> None:
    forged, mine = pod("p", "u-forged"), pod("p", "u-mine", sealed_with=KEY_BYTES)
    empty = status_naming(None, None)
    assert sort_pods(PIPELINE_UID, empty, [forged], KEY_BYTES).strangers == [forged]
    assert sort_pods(PIPELINE_UID, empty, [mine], KEY_BYTES).trusted == [mine]


def test_a_recorded_pod_counts_only_with_its_uid_seal_or_not() -> None:
    recorded = status_naming("p", "u-mine")
    replaced = pod("p", "u-replacement", sealed_with=KEY_BYTES)  # the seal copied too
    assert sort_pods(PIPELINE_UID, recorded, [replaced], KEY_BYTES).strangers == [replaced]
    mine = pod("p", "u-mine", sealed_with=KEY_BYTES)
    assert sort_pods(PIPELINE_UID, recorded, [mine], KEY_BYTES).trusted == [mine]


def test_another_pipelines_pod_is_neither() -> None:
    other = pod("p", "u", owner="uid-2")
    found = sort_pods(PIPELINE_UID, status_naming(None, None), [other], KEY_BYTES)
    assert (found.trusted, found.strangers) == ([], [])


def test_uids_are_recorded_once_and_kept() -> None:
    step = StepStatus(
        id="1",
        name="gate",
        service="app",
        pod="p-r1",
        attempts=[StepAttempt(attempt=0, pod="p", phase=StepPhase.FAILED)],
    )
    status = PipelineStatus(steps=[step])
    done = record_uids(status, PipelineStatus(), {"p": "u0", "p-r1": "u1"})
    assert done.steps[0].pod_uid == "u1"
    assert done.steps[0].attempts[0].pod_uid == "u0"
    again = record_uids(status, done, {"p-r1": "u-other"})
    assert again.steps[0].pod_uid == "u1", "the first UID recorded stays"


def reconcile(
    kube: FakeKube, spec: dict[str, Any], options: PodOptions, again: Reconciler | None = None
) -> Reconciler:
    """One reconcile, by ``again`` or by a new operator process (a restart)."""
    reconciler = again or Reconciler(kube, clock=lambda: NOW, options=options)

    async def go() -> None:
        await reconciler.reconcile(snapshot(kube, spec), kube.views(), KEY)
        await asyncio.gather(*reconciler.background)

    asyncio.run(go())
    return reconciler


GATE = "demo-4a49a-1-gate"


def forged_gate() -> dict[str, Any]:
    """The pod of the issue: the gate's name, labels and owner, running ``true``."""
    return {
        "metadata": {
            "name": GATE,
            "uid": "uid-forged",
            "labels": {
                "shipway.dev/pipeline": "demo",
                "shipway.dev/step": "1",
                "shipway.dev/attempt": "0",
            },
            "annotations": {"kubectl.kubernetes.io/default-container": "app"},
            "ownerReferences": [
                {
                    "apiVersion": "shipway.dev/v1alpha1",
                    "kind": "Pipeline",
                    "name": "demo",
                    "uid": PIPELINE_UID,
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "app"}], "nodeName": "node-1"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
            ],
        },
    }


def test_a_pre_created_pod_does_not_pass_the_gate() -> None:
    kube = FakeKube()
    kube.pods[GATE] = forged_gate()
    options = PodOptions(seal_key=KEY_BYTES)
    operator = reconcile(kube, GATE_SPEC, options)
    reconcile(kube, GATE_SPEC, options, operator)
    gate, deploy = kube.status["steps"]
    assert (gate["phase"], gate["reason"]) == ("Failed", "PodNameConflict")
    assert "the operator did not create it" in gate["message"]
    assert deploy["phase"] == "Skipped"
    assert kube.status["phase"] == "Failed"
    assert [n for n in kube.pods if "deploy" in n] == []
    assert any(reason == "ForeignPod" and GATE in message for reason, message in kube.events)
    assert sum(reason == "ForeignPod" for reason, _ in kube.events) == 1, "named once"
    assert not [w for w in kube.writes if w.startswith(("stop", "delete"))], "never touched"


def test_a_replaced_pod_is_not_the_steps_even_with_the_seal_copied() -> None:
    kube = FakeKube()
    options = PodOptions(seal_key=KEY_BYTES)
    reconcile(kube, GATE_SPEC, options)
    assert kube.status["steps"][0]["podUid"] == f"uid-{GATE}", "recorded from the create"
    original = kube.pods[GATE]
    forged = forged_gate()
    forged["metadata"]["annotations"].update(original["metadata"]["annotations"])
    kube.pods[GATE] = forged  # deleted and replaced, seal copied
    reconcile(kube, GATE_SPEC, options)
    gate, deploy = kube.status["steps"]
    assert (gate["phase"], gate["reason"]) == ("Failed", "PodDeleted")
    assert deploy["phase"] == "Skipped"


def test_its_own_pod_is_known_after_a_lost_status_write() -> None:
    """The crash between create and status write: the sealed pod is adopted, not re-run."""
    kube = FakeKube()
    options = PodOptions(seal_key=KEY_BYTES)
    reconcile(kube, GATE_SPEC, options)
    kube.status = {}
    created = copy.deepcopy(kube.pods)
    kube.finish(GATE, 0)
    reconcile(kube, GATE_SPEC, options)  # a restarted operator: same key, new memory
    gate = kube.status["steps"][0]
    assert (gate["phase"], gate["podUid"]) == ("Succeeded", f"uid-{GATE}")
    assert set(created) <= set(kube.pods)
    assert [w for w in kube.writes if w == f"create pod {GATE}"] == [f"create pod {GATE}"]
