"""The demo's background operator refuses a bad Pipeline at ``kubectl apply`` (issue #28).

``make demo`` starts the operator with :func:`demo_operator.start`; this runs that start path on
the cluster, without ``make demo`` (which would start or reuse a cluster and take the demo's
fixed namespace): the same command line and webhook, in a namespace and under a webhook
configuration name of the test's own, so a shared cluster's other users are untouched.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import demo_operator

from .conftest import OperatorProcess
from .kube import Cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(
    cluster: Cluster, namespace: str, tmp_path: Path, shipway_operator: OperatorProcess | None
) -> Iterator[tuple[str, str]]:
    """The demo's operator for ``namespace``: (namespace, its webhook configuration's name).

    The session's own operator reviews every namespace of the session through its webhook; it
    is set aside meanwhile, so that a refusal can only come from the demo's webhook."""
    if shipway_operator is None:
        yield from _demo(cluster, namespace, tmp_path)
        return
    with shipway_operator.webhook_removed():
        yield from _demo(cluster, namespace, tmp_path)


def _demo(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    config = f"shipway-demo-test-{secrets.token_hex(3)}"
    env = dict(os.environ)
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")])
    pid = demo_operator.start(env, tmp_path, namespace, config)
    try:
        yield namespace, config
    finally:
        assert demo_operator.stop("the test is over", tmp_path, say=lambda _: None) == pid
        cluster.run("delete", "validatingwebhookconfiguration", config, check=False)


def test_kubectl_apply_of_an_unknown_step_service_is_refused_with_validates_line(
    cluster: Cluster, demo: tuple[str, str], tmp_path: Path
) -> None:
    namespace, config = demo
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    refused = demo_operator.wait_for_webhook(
        cluster.kubectl_binary, env, timeout=90, namespace=namespace, state=tmp_path
    )
    assert demo_operator.PROBE_LINE in refused
    # What a user types, not a dry run: refused, and nothing is stored.
    applied = subprocess.run(
        [cluster.kubectl_binary, "apply", "-f", "-"],
        input=demo_operator.probe(namespace),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode != 0
    assert demo_operator.PROBE_LINE in applied.stderr, applied.stderr
    assert "admission webhook" in applied.stderr, applied.stderr
    left = cluster.kubectl("get", "pipelines", "-n", namespace, "-o", "name")
    assert left.strip() == ""
    # The webhook reviews this namespace only: other tenants are never judged by the demo's.
    made = cluster.json("get", "validatingwebhookconfiguration", config)
    (webhook,) = made["webhooks"]
    assert webhook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
    ]
