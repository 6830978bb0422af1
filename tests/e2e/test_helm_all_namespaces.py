"""The Helm chart's all-namespaces mode on the real cluster, live: one release with
``allNamespaces=true`` goes through install → every bad Pipeline refused in a namespace it
does not own, with ``shipway validate``'s lines → a valid one run by its operator → its pod
deleted while Pipelines are applied (refused loudly, nothing lost) → uninstall removes the
webhook configuration and the cluster-wide objects.

Such an operator acts on every namespace, the session's ``e2e-<session>-*`` ones included,
and kopf peering cannot keep it apart from the session's operator (that one runs standalone;
the release peers through a ClusterKopfPeering, a namespaced operator through a KopfPeering:
different objects). So the session's operator is stopped first (a clean stop also deletes its
webhook configuration) and started again only once the release's operator pod is gone, in the
fixtures' teardown, so a failing test still gives it back: two operators never see one
Pipeline at the same time. The Pipelines go to a namespace neither the release nor the
session's operator was set up for (``shipway-elsewhere-*``), so the refusals can only be the
release's webhook, which reviews every namespace. Run under the e2e lock: for its minute or
two, this release's webhook (failurePolicy Fail) reviews every Pipeline created in the cluster.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.compiler.test_bad_corpus import FILES, expectation

from .conftest import IN_CLUSTER_NAMESPACES, Image, OperatorProcess
from .kube import Cluster
from .pipelines import Kubectl
from .test_admission import refused_like_validate
from .test_helm import (
    CHART,
    FULLNAME,
    RELEASE,
    STEP_ACCOUNT,
    WAIT,
    WEBHOOK,
    WEBHOOK_CONFIG,
    Release,
    _names,
    _wait_until,
    _webhook_answers,
    outage_loses_nothing,
)

pytestmark = pytest.mark.e2e
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
CLUSTER_KINDS = (
    "clusterroles,clusterrolebindings,clusterkopfpeerings,validatingwebhookconfigurations"
)


@pytest.fixture(scope="module")
def session_operator_stopped(
    cluster: Cluster, shipway_operator: OperatorProcess | None
) -> Iterator[None]:
    """The session's operator stopped for this module, started again after it (also on failure)."""
    if shipway_operator is None:
        pytest.skip("SHIPWAY_E2E_OPERATOR=external: an operator for every namespace would share")
    shipway_operator.stop()
    try:
        assert not shipway_operator.running
        if shipway_operator.webhook:  # a clean stop deletes the operator's own configuration
            gone = cluster.run(
                "get", "validatingwebhookconfiguration", shipway_operator.webhook, check=False
            )
            assert "NotFound" in gone.stderr, gone.stdout
        yield
    finally:
        shipway_operator.start()  # waits until its webhook listens
    if shipway_operator.webhook:  # and it made its configuration again
        cluster.kubectl("get", "validatingwebhookconfiguration", shipway_operator.webhook)


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, helm_binary: str, operator_image: Image, session_operator_stopped: None
) -> Iterator[Release]:
    namespace = f"{IN_CLUSTER_NAMESPACES.rstrip('*')}{secrets.token_hex(3)}"
    elsewhere = f"shipway-elsewhere-{secrets.token_hex(3)}"
    made = Release(cluster, helm_binary, operator_image.ref, namespace, elsewhere)
    made.digest, made.all_namespaces = operator_image.digest, True
    for ns in (made.namespace, made.other):
        cluster.kubectl("create", "namespace", ns)
    try:
        yield made
    finally:
        made.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
        # Never leave a webhook for every namespace behind (it would refuse everyone's
        # Pipelines), nor an operator pod that could still act when the session's restarts.
        cluster.run("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIG(made),
                    "--ignore-not-found", check=False)  # fmt: skip
        _wait_until("the release's operator pods are gone", lambda: not made.operator_pods(), 90)
        for ns in (made.namespace, made.other):
            cluster.run("delete", "namespace", ns, "--wait=false", check=False)
        if made.timings:
            print(
                "\nhelm -A timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in made.timings.items())
            )


def test_install_in_all_namespaces_mode(release: Release) -> None:
    started = time.monotonic()
    release.helm(
        "install", RELEASE, str(CHART), "-n", release.namespace, *release.values(),
        "--wait", f"--timeout={WAIT}s",
    )  # fmt: skip
    release.timings["install to Ready"] = time.monotonic() - started
    (pod,) = release.operator_pods()
    container = pod["spec"]["containers"][0]
    assert "--all-namespaces" in container["args"]
    assert not any(a.startswith("--namespace") for a in container["args"])
    if release.digest:
        assert pod["status"]["containerStatuses"][0]["imageID"].endswith(release.digest)
    names = {
        k: _names(release.json("get", k, "-l", SELECTOR)["items"]) for k in CLUSTER_KINDS.split(",")
    }
    # Besides the release's own role, the history read API's: authenticated users pass the API
    # server's gate on runs (the operator decides), and the operator may ask who is asking.
    reader = f"{FULLNAME}.{release.namespace}.history-reader"
    delegator = f"{FULLNAME}.{release.namespace}.history-auth-delegator"
    assert names == {
        "clusterroles": {RELEASE, reader},
        "clusterrolebindings": {RELEASE, reader, delegator},
        "clusterkopfpeerings": {RELEASE},
        "validatingwebhookconfigurations": {WEBHOOK_CONFIG(release)},
    }
    (hook,) = release.json("get", "validatingwebhookconfiguration", WEBHOOK_CONFIG(release))[
        "webhooks"
    ]
    assert not _scoped(hook)
    assert hook["failurePolicy"] == "Fail"
    # Nobody else reviews Pipelines in the other namespace: no namespaced release, no session's
    # operator (stopped, its configuration deleted) and no one else's unscoped configuration.
    reviewers = [
        c["metadata"]["name"]
        for c in release.json("get", "validatingwebhookconfigurations")["items"]
        if any(w["name"] == WEBHOOK and not _scoped(w) for w in c.get("webhooks") or [])
    ]
    assert reviewers == [WEBHOOK_CONFIG(release)]


def test_every_bad_pipeline_is_refused_in_a_namespace_the_release_does_not_own(
    release: Release,
) -> None:
    _wait_until("the webhook answers", lambda: _webhook_answers(release, release.other), 120)
    by_webhook = refused_like_validate(Kubectl(release.other))
    assert by_webhook == sum(expectation(p)[0] == "operator" for p in FILES) >= 20


def test_a_valid_pipeline_runs_under_the_all_namespaces_operator(release: Release) -> None:
    body = release.run_walkthrough("volumes-demo", release.other)
    assert body["status"]["phase"] == "Succeeded"
    assert body["status"]["progress"] == "2/2"
    (operator,) = release.operator_pods()
    assert release.reporters("volumes-demo", release.other) == {operator["metadata"]["name"]}
    pods = release.json(
        "get", "pods", "-n", release.other, "-l", "shipway.dev/pipeline=volumes-demo"
    )["items"]
    assert [p["spec"]["serviceAccountName"] for p in pods] == [STEP_ACCOUNT] * 2
    log = release.k("logs", "-n", release.namespace, operator["metadata"]["name"])
    assert f"{release.other}/volumes-demo: Succeeded 2/2" in log
    # Its ClusterRole covers what it does; in a whole suite it may also meet an earlier test's
    # Pipeline in a namespace being deleted, where nothing new can be created: not a denial.
    denied = [line for line in log.splitlines() if "Forbidden" in line]
    assert all("being terminated" in line for line in denied), denied[-5:]


def test_deleting_the_operator_pod_refuses_loudly_and_loses_nothing(release: Release) -> None:
    admitted, refused = outage_loses_nothing(release, release.other)
    print(f"\n-A operator pod deleted: {admitted} admitted, {refused} refused meanwhile")


def test_uninstall_removes_the_webhook_configuration(release: Release) -> None:
    release.helm("uninstall", RELEASE, "-n", release.namespace, "--wait")
    _wait_until("the operator pods are gone", lambda: not release.operator_pods(), 90)
    left = release.json("get", CLUSTER_KINDS, "-l", SELECTOR)["items"]
    assert left == [], [f"{o['kind']}/{o['metadata']['name']}" for o in left]
    gone = release.cluster.run(
        "get", "validatingwebhookconfiguration", WEBHOOK_CONFIG(release), check=False
    )
    assert "NotFound" in gone.stderr, gone.stdout
    # Nothing reviews the other namespace's Pipelines any more: a compiler-layer fault is
    # admitted (dry run), not refused by a webhook left behind nor failing to call one.
    bad = next(p for p in FILES if p.name.startswith("33-"))
    admitted = release.cluster.run(
        "create", "--dry-run=server", "-n", release.other, "-f", str(bad), check=False
    )
    assert admitted.returncode == 0, admitted.stderr


def _scoped(webhook: dict[str, Any]) -> bool:
    """Limited to some namespaces (a selector or a condition), so it may pass ours by."""
    return bool(webhook.get("namespaceSelector") or webhook.get("matchConditions"))
