"""Fixtures of the end-to-end tests, which run on a real Kubernetes cluster.

* ``cluster`` (session): the cluster given by ``SHIPWAY_E2E_KUBECONFIG``; otherwise the local
  cluster of ``hack/localkube``, started first if it is not running (that needs Linux and
  root; see the README's "The local cluster").
* ``namespace`` (function): a fresh namespace for one test, deleted after it.
* ``shipway_operator`` (session): the CRDs applied server-side and the operator running as a
  subprocess against the cluster, watching every namespace but ``shipway-helm-*`` (where
  test_helm.py runs the chart's in-cluster operator); ``SHIPWAY_E2E_OPERATOR=external`` when
  the operator is already deployed in the cluster, e.g. by the Helm chart.

Everything under tests/e2e is marked ``e2e``, so ``make test-unit`` never needs a cluster.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .kube import Cluster

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
#: Namespaces the session's out-of-cluster operator leaves alone: test_helm.py installs the
#: operator with the Helm chart into namespaces named so, and two operators must not share one.
IN_CLUSTER_NAMESPACES = "shipway-helm-*"
sys.path.insert(0, str(ROOT / "hack"))

from localkube import cluster as localkube_cluster  # noqa: E402
from localkube.config import Paths  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def _kubectl_binary(paths: Paths) -> str:
    built = paths.bin / "kubectl"
    return str(built) if built.exists() else "kubectl"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    paths = Paths.default()
    external = os.environ.get("SHIPWAY_E2E_KUBECONFIG")
    if external:
        found = Cluster(Path(external), _kubectl_binary(paths), local=False)
    else:
        if not (os.geteuid() == 0 and localkube_cluster.is_up(paths)):
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                [str(ROOT / "hack"), str(ROOT / "operator"), env.get("PYTHONPATH", "")]
            )
            proc = subprocess.run(
                [sys.executable, "-m", "localkube", "up"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                pytest.fail(
                    "could not start the local cluster (`python -m localkube up`); set"
                    " SHIPWAY_E2E_KUBECONFIG to use another cluster.\n"
                    + proc.stdout[-3000:]
                    + proc.stderr[-3000:],
                    pytrace=False,
                )
        found = Cluster(paths.kubeconfig, _kubectl_binary(paths), local=True)
    with pytest.MonkeyPatch.context() as mp:
        # Helpers and subprocesses (kubectl, the operator) all talk to this cluster.
        mp.setenv("KUBECONFIG", str(found.kubeconfig))
        yield found


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{base}-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    deadline = time.monotonic() + 60
    while not cluster.run("get", "serviceaccount", "default", "-n", name, check=False).stdout:
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {name} got no default service account in 60s")
        time.sleep(0.2)
    yield name
    cluster.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def shipway_operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes] | None]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/pipelines.shipway.dev", "--timeout=60s"
    )
    if os.environ.get("SHIPWAY_E2E_OPERATOR") == "external":
        yield None
        return
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    env = dict(os.environ)
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "operator"), str(ROOT / "hack"), env.get("PYTHONPATH", "")]
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            # Every namespace but those of the in-cluster operator (kopf pattern: "!glob").
            [sys.executable, "-m", "shipway", "operator", "-n", f"!{IN_CLUSTER_NAMESPACES}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    time.sleep(2)
    if proc.poll() is not None:
        pytest.fail(
            f"the operator exited at once ({proc.returncode}); log {log_path}:\n"
            + log_path.read_text(errors="replace")[-3000:],
            pytrace=False,
        )
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    else:
        sys.stderr.write(
            f"\nthe operator had exited ({proc.returncode}) before the end; log {log_path}:\n"
            + log_path.read_text(errors="replace")[-3000:]
            + "\n"
        )
