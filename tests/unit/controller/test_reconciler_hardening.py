"""Issue 18 in the shell: names taken by others, refusals, quotas, sizes, bugs, accounts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shipway.controller.kube import KubeError
from shipway.controller.reconciler import Reconciler
from shipway.engine.plan.planner import Plan
from shipway.engine.settings import PodOptions
from tests.unit.builders import NOW, WALKTHROUGH
from tests.unit.fakekube import KEY, FakeKube, snapshot

WRITE = "demo-4a49a-1-write-artifact"
CLAIM = "demo-4a49a-workspace"
QUOTA = 'persistentvolumeclaims "x" is forbidden: exceeded quota: q, used: persistentvolumeclaims=0'


def foreign_pod(name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": "uid-foreign",
        "labels": {"shipway.dev/pipeline": "demo", "shipway.dev/step": "1"},
    }
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "x"}]},
        "status": {"phase": "Running"},
    }


def once(kube: FakeKube, spec: dict[str, Any] = WALKTHROUGH, **kw: Any) -> Plan | None:
    reconciler = Reconciler(kube, clock=lambda: NOW, **kw)

    async def go() -> Plan | None:
        result = await reconciler.reconcile(snapshot(kube, spec), kube.views(), KEY)
        await asyncio.gather(*reconciler.background)
        return result

    return asyncio.run(go())


def step_of(kube: FakeKube, index: int = 0) -> dict[str, Any]:
    step: dict[str, Any] = kube.status["steps"][index]
    return step


@pytest.mark.parametrize(
    "owner",
    [
        None,
        {
            "apiVersion": "shipway.dev/v1alpha1",
            "kind": "Pipeline",
            "name": "demo",
            "uid": "uid-of-an-earlier-demo",
            "controller": True,
        },
    ],
)
def test_a_foreign_pod_with_the_steps_name_fails_the_step_and_is_left_alone(
    owner: dict[str, Any] | None,
) -> None:
    kube = FakeKube()
    kube.pods[WRITE] = foreign_pod(WRITE, owner)
    once(kube)
    write = step_of(kube)
    assert (write["phase"], write["reason"]) == ("Failed", "PodNameConflict")
    assert f"a pod named {WRITE!r} already exists" in write["message"]
    assert kube.status["phase"] == "Failed"
    assert not [w for w in kube.writes if w.startswith(("stop", "delete"))], "never touched"
    assert kube.pods[WRITE]["metadata"]["uid"] == "uid-foreign"


def test_its_own_pod_found_on_a_repeated_create_is_simply_its_own() -> None:
    kube = FakeKube()
    once(kube)
    kube.status = {}  # the status write was lost: the next reconcile creates again
    once(kube)
    assert step_of(kube)["phase"] == "Running"
    assert step_of(kube)["pod"] == WRITE


def test_a_claim_of_the_same_name_that_is_not_the_pipelines_fails_it() -> None:
    kube = FakeKube()
    kube.claim_bodies[CLAIM] = {"metadata": {"name": CLAIM, "annotations": {}}}
    once(kube)
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "ClaimNameConflict"
    assert "spec.workspace.claimName" in kube.status["message"]
    assert kube.pods == {}
    assert ("PipelineFailed", kube.status["message"]) in kube.events


def test_its_own_kept_claim_is_its_own() -> None:
    kube = FakeKube()
    kube.claim_bodies[CLAIM] = {
        "metadata": {"name": CLAIM, "annotations": {"shipway.dev/pipeline-uid": "uid-1"}}
    }
    once(kube, {**WALKTHROUGH, "workspace": {"keep": True}})
    assert kube.status["phase"] == "Running"
    assert list(kube.pods) == [WRITE]


def test_a_named_claim_is_reused_and_never_created() -> None:
    kube = FakeKube()
    kube.claim_bodies["kept-before"] = {"metadata": {"name": "kept-before"}}
    once(kube, {**WALKTHROUGH, "workspace": {"claimName": "kept-before"}})
    assert kube.claims == []
    volume = kube.pods[WRITE]["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == "kept-before"


def test_a_named_claim_that_does_not_exist_fails_the_pipeline() -> None:
    kube = FakeKube()
    once(kube, {**WALKTHROUGH, "workspace": {"claimName": "nowhere"}})
    assert kube.status["conditions"][0]["reason"] == "ClaimNotFound"
    assert "no PersistentVolumeClaim 'nowhere'" in kube.status["message"]


def test_a_claim_refused_for_good_fails_the_pipeline_with_the_api_message() -> None:
    kube = FakeKube()
    kube.reject[CLAIM] = KubeError(422, "Invalid", "spec.resources: storage too small")
    once(kube)
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "ClaimRejected"
    assert "storage too small" in kube.status["message"]


def test_a_claim_refused_by_a_quota_waits_saying_so_then_goes_on() -> None:
    kube = FakeKube()
    kube.reject[CLAIM] = KubeError(403, "Forbidden", QUOTA)
    result = once(kube)
    assert result is not None
    assert kube.pods == {}
    assert kube.status["phase"] == "Pending"
    condition = kube.status["conditions"][0]
    assert (condition["status"], condition["reason"]) == ("Unknown", "ExceededResourceQuota")
    assert "exceeded quota" in condition["message"]
    assert step_of(kube)["reason"] == "ExceededResourceQuota"
    assert result.requeue_after == 10
    del kube.reject[CLAIM]
    once(kube)
    assert kube.status["phase"] == "Running"
    assert list(kube.pods) == [WRITE]


def test_a_pod_refused_by_a_quota_waits_instead_of_failing() -> None:
    kube = FakeKube()
    kube.reject[WRITE] = KubeError(
        403, "Forbidden", QUOTA.replace("persistentvolumeclaims", "pods")
    )
    once(kube)
    assert kube.status["phase"] == "Pending"
    assert step_of(kube)["reason"] == "ExceededResourceQuota"
    del kube.reject[WRITE]
    once(kube)
    assert step_of(kube)["phase"] == "Running"


def test_a_status_too_large_to_store_fails_the_pipeline_in_a_small_status() -> None:
    kube = FakeKube()
    patch = kube.patch_status
    calls: list[dict[str, Any]] = []

    async def picky(namespace: str, name: str, status: dict[str, Any]) -> None:
        calls.append(status)
        if status.get("steps"):
            raise KubeError(500, "InternalError", "etcdserver: request is too large")
        await patch(namespace, name, status)

    kube.patch_status = picky  # type: ignore[method-assign]
    once(kube)
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "StatusTooLarge"
    assert "request is too large" in kube.status["message"]
    assert not kube.status.get("steps"), "the small status drops the steps"
    assert f"stop {WRITE}" in kube.writes or f"delete {WRITE}" in kube.writes


@pytest.mark.parametrize(
    "error", [RecursionError("maximum recursion depth exceeded"), KeyError("x")]
)
def test_a_bug_while_handling_one_pipeline_fails_that_pipeline_with_a_message(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipway.controller.reconciler import carry as module

    def broken(*args: Any, **kwargs: Any) -> Plan:
        raise error

    monkeypatch.setattr(module, "plan", broken)
    kube = FakeKube()
    once(kube)
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "InternalError"
    assert type(error).__name__ in kube.status["message"]
    assert [r for r, _ in kube.events] == ["PipelineFailed"]


def test_a_spec_that_breaks_the_compiler_fails_as_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipway.controller.reconciler import carry as module

    def deep(raw: Any, *rest: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded while calling a Python object")

    monkeypatch.setattr(module, "compile_pipeline", deep)
    kube = FakeKube()
    once(kube)
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "InvalidSpec"
    assert "RecursionError" in kube.status["message"]


@pytest.mark.parametrize(
    ("options", "account", "refused"),
    [
        (PodOptions(operator_service_account="shipway"), "shipway", "the operator's own"),
        (
            PodOptions(operator_service_account="shipway", operator_namespace="ci"),
            "shipway",
            "the operator's own",
        ),
        (PodOptions(operator_service_account="shipway", operator_namespace="ops"), "shipway", None),
        (PodOptions(allowed_service_accounts=("builder",)), "deployer", "not allowed"),
        (PodOptions(allowed_service_accounts=("builder",)), "builder", None),
        (PodOptions(allowed_service_accounts=("builder",)), None, "'default' is not allowed"),
        (
            PodOptions(allowed_service_accounts=("builder",), default_service_account="step"),
            None,
            None,
        ),
    ],
)
def test_step_pods_run_only_as_allowed_service_accounts(
    options: PodOptions, account: str | None, refused: str | None
) -> None:
    kube = FakeKube()
    spec = {**WALKTHROUGH, **({"serviceAccountName": account} if account else {})}
    once(kube, spec, options=options)
    if refused is None:
        assert kube.status["phase"] == "Running"
        return
    assert kube.pods == {}
    assert kube.status["phase"] == "Failed"
    assert kube.status["conditions"][0]["reason"] == "ServiceAccountNotAllowed"
    assert refused in kube.status["message"]


def test_api_errors_are_told_apart() -> None:
    quota = KubeError(403, "Forbidden", QUOTA)
    assert quota.quota
    assert quota.permanent
    forbidden = KubeError(403, "Forbidden", 'pods "x" is forbidden: violates PodSecurity')
    assert not forbidden.quota
    assert KubeError(413, "RequestEntityTooLarge", "limit is 3145728").too_large
    assert KubeError(500, "InternalError", "etcdserver: request is too large").too_large
    assert not KubeError(500, "InternalError", "etcd leader changed").too_large


def test_an_api_server_that_does_not_answer_is_a_passing_failure() -> None:
    from kubernetes import client
    from urllib3.exceptions import MaxRetryError

    from shipway.controller.kube import Kube

    kube = Kube(client.ApiClient(client.Configuration()), threads=1, event_threads=1)

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise MaxRetryError(None, "/api/v1/pods", "Connection refused")  # type: ignore[arg-type]

    kube.api.rest_client.pool_manager.request = unreachable  # type: ignore[method-assign]
    try:
        with pytest.raises(KubeError) as caught:
            asyncio.run(kube._call("GET", "/api/v1/pods"))
    finally:
        kube.close()
    assert caught.value.status == 0
    assert not caught.value.permanent
    assert "did not answer" in str(caught.value)
