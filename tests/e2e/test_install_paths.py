"""`make demo` (kubectl apply of crds/) and `helm install` of the chart on one cluster.

The demo path applies the CRD and the ValidatingAdmissionPolicy from crds/ with kubectl; the
chart ships the same policy. Helm refuses to take over an object another tool created ("exists
and cannot be imported into the current release"), so the chart leaves a policy that no
release of its name owns alone. A server-side dry run goes through Helm's ownership check and
the API server's admission without creating anything, so it proves the order "demo, then
helm" on the shared cluster without disturbing the sessions that rely on the policy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .kube import Cluster

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localkube.config import Paths  # noqa: E402
from localkube.toolchain import build  # noqa: E402

pytestmark = pytest.mark.e2e
POLICY = "ValidatingAdmissionPolicy"


def _helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    helm = str(build.build(build.HELM, Paths.default(), log=False) / "helm")
    return subprocess.run(
        [helm, "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_helm_installs_after_the_demo_applied_crds(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    existing = cluster.json("get", "validatingadmissionpolicy", "pipelines.shipway.dev")
    assert "meta.helm.sh/release-name" not in existing["metadata"].get("annotations", {})

    installed = _helm(
        cluster, "install", "shipway", str(ROOT / "charts" / "shipway"),
        "--namespace", namespace, "--dry-run=server",
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert "cannot be imported" not in installed.stderr
    manifest = installed.stdout.split("MANIFEST:", 1)[-1].split("NOTES:", 1)[0]
    kinds = [d["kind"] for d in yaml.safe_load_all(manifest) if d]
    assert "Deployment" in kinds
    assert POLICY not in kinds  # the demo's policy stays the demo's

    # Without a cluster to look at (helm template), the chart renders the policy itself.
    rendered = _helm(cluster, "template", "shipway", str(ROOT / "charts" / "shipway"))
    assert rendered.returncode == 0, rendered.stderr
    assert POLICY in [d["kind"] for d in yaml.safe_load_all(rendered.stdout) if d]
