"""Fixtures of the end-to-end tests, which run on a real Kubernetes cluster.

* ``cluster`` (session): the cluster given by ``SHIPWAY_E2E_KUBECONFIG``; otherwise the local
  cluster of ``hack/localkube``, started first if it is not running (that needs Linux and
  root; see docs/local-cluster.md).
* ``namespace`` (function): a fresh namespace for one test, deleted after it.
* ``helm_binary``, ``operator_image`` (session): the project's helm and the operator image
  the cluster's BuildKit builds from the Dockerfile, for the Helm chart's tests.
* ``shipway_operator`` (session): the CRDs applied server-side and the operator running as a
  subprocess against the cluster, watching only this session's ``e2e-<session>-*`` namespaces
  (so never ``shipway-helm-*``, where test_helm.py runs the chart's in-cluster operator);
  ``SHIPWAY_E2E_OPERATOR=external`` when the operator is already deployed in the cluster.
  It serves the admission webhook on a free loopback port (the local API server runs on this
  machine), through its own configuration ``shipway-e2e-<session>-webhook`` scoped to the
  session's namespaces, so sessions never review each other's Pipelines.
  test_helm_all_namespaces.py stops it (stop/start) while a release for every namespace runs.

Everything under tests/e2e is marked ``e2e``, so ``make test-unit`` never needs a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import gitserver
from .gitserver import GitServer, Repo
from .kube import Cluster

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
#: Namespaces of test_helm.py's in-cluster operator (the Helm chart): outside SESSION_PREFIX,
#: so the session's out-of-cluster operator never shares them (two operators must not).
IN_CLUSTER_NAMESPACES = "shipway-helm-*"
#: Namespaces of this test session: its operator watches only these, so test sessions run by
#: several people (or a benchmark) against one cluster never handle each other's Pipelines.
SESSION_PREFIX = f"e2e-{secrets.token_hex(2)}-"
sys.path.insert(0, str(ROOT / "hack"))

from localkube.cluster import lifecycle as localkube_cluster  # noqa: E402
from localkube.config import Paths  # noqa: E402
from localkube.crds import wait_established  # noqa: E402


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
        # The image of checkout and upload pods (`shipway run --dir` uploads): `localkube up`
        # imports it; a cluster started by an older checkout may lack it.
        from localkube.images import git as gitimages

        gitimages.ensure(paths, import_into=paths.containerd_socket, names=("git",))
    with pytest.MonkeyPatch.context() as mp:
        # Helpers and subprocesses (kubectl, the operator) all talk to this cluster.
        mp.setenv("KUBECONFIG", str(found.kubeconfig))
        yield found


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{SESSION_PREFIX}{base}-{secrets.token_hex(3)}"
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
) -> Iterator[OperatorProcess | None]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    wait_established(lambda *a: cluster.run(*a, check=False).stdout, ["pipelines.shipway.dev"])
    if os.environ.get("SHIPWAY_E2E_OPERATOR") == "external":
        yield None
        return
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    env = dict(os.environ)
    env["KUBECONFIG"] = str(cluster.kubeconfig)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "operator"), str(ROOT / "hack"), env.get("PYTHONPATH", "")]
    )
    # A pod that cannot start fails its step sooner than the default 60 s, yet after one of
    # the kubelet's pull retries (10 s back-off): a kubelet whose Secret cache has not synced
    # within its 1 s wait pulls without the pull Secret, denied, and pulls again with it.
    env["SHIPWAY_START_GRACE"] = "30s"
    # test_hardening: an impossible request fails after this; long enough that a node full of
    # other sessions' pods (110 at most) does not fail the steps of unrelated tests
    env["SHIPWAY_UNSCHEDULABLE_GRACE"] = "90s"
    env["SHIPWAY_OPERATOR_SERVICE_ACCOUNT"] = "shipway-e2e-operator"  # refused in steps
    env["SHIPWAY_DOCKER"] = "on"  # add_docker's daemons (test_docker)
    # One key for the session's operator across its restarts: a pod it created just before a
    # SIGKILL is still known as its own (engine.ownership)
    env["SHIPWAY_POD_SEAL_KEY"] = secrets.token_hex(32)
    # The session's own history store, which the command line run by the tests reads too.
    history = f"sqlite:///{log_path.parent / 'history.db'}"
    env["SHIPWAY_HISTORY"] = history
    env["SHIPWAY_RETENTION_INTERVAL"] = "5s"  # test_history waits for pruning
    os.environ["SHIPWAY_HISTORY"] = history
    webhook = f"shipway-{SESSION_PREFIX}webhook"
    argv = [sys.executable, "-m", "shipway", "operator", "-n", f"{SESSION_PREFIX}*"]
    port = None
    if cluster.local:  # a loopback URL reaches only an API server on this machine
        from shipway.controller.certs import self_signed

        # One certificate for the session: a restarted operator serves what the API server
        # already trusts, so its configuration never names a CA it does not serve.
        tls = self_signed(["127.0.0.1"], log_path.parent / "webhook")
        port = _free_port()
        argv += [
            f"--webhook-url=https://127.0.0.1:{port}",
            f"--webhook-config={webhook}",
            f"--webhook-cert={tls.cert}",
            f"--webhook-key={tls.key}",
        ]
    operator = OperatorProcess(
        argv, env, log_path, webhook=webhook if port else None, webhook_port=port, cluster=cluster
    )
    operator.start()
    yield operator
    if operator.running:
        operator.stop()
    else:
        sys.stderr.write(
            f"\nthe operator had exited before the end; log {log_path}:\n"
            + log_path.read_text(errors="replace")[-3000:]
            + "\n"
        )
    # Gone with a clean stop; a killed operator leaves it behind.
    cluster.run(
        "delete", "validatingwebhookconfiguration", webhook, "--ignore-not-found", check=False
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """The operator under test, as a subprocess the tests may kill and start again."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        *,
        webhook: str | None = None,
        webhook_port: int | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.argv, self.env, self.log_path = argv, env, log_path
        self.webhook, self.webhook_port = webhook, webhook_port
        """Name of its ValidatingWebhookConfiguration (None: it serves no webhook), and port."""
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        time.sleep(1)
        if not self.running:
            pytest.fail(
                f"the operator exited at once; log {self.log_path}:\n"
                + self.log_path.read_text(errors="replace")[-3000:],
                pytrace=False,
            )
        if self.webhook_port is not None:
            self.wait_for_webhook()

    @contextlib.contextmanager
    def webhook_removed(self) -> Iterator[None]:
        """Pipelines created meanwhile are not reviewed: as before the webhook existed.

        With failurePolicy Fail a killed operator's webhook refuses every create; a test that
        creates Pipelines while the operator is down (or that tests the operator's own
        validation) removes the configuration for that time. It is put back afterwards.
        """
        if self.webhook is None or self.cluster is None:
            yield
            return
        saved = self.cluster.json("get", "validatingwebhookconfiguration", self.webhook)
        self.cluster.kubectl("delete", "validatingwebhookconfiguration", self.webhook)
        try:
            yield
        finally:
            meta = saved["metadata"]
            saved["metadata"] = {"name": meta["name"], "labels": meta.get("labels", {})}
            self.cluster.kubectl("create", "-f", "-", input=json.dumps(saved))

    def wait_for_webhook(self, timeout: float = 60) -> None:
        """Until the webhook accepts connections and its configuration exists (the operator
        applies it just after it begins to listen), so the next create is reviewed."""
        assert self.webhook_port is not None
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.webhook_port), timeout=1).close()
                if self.webhook is None or self.cluster is None:
                    return
                found = self.cluster.run(
                    "get", "validatingwebhookconfiguration", self.webhook, check=False
                )
                if found.returncode == 0:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or not self.running:
                pytest.fail(f"the operator's webhook never came up; log {self.log_path}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no clean-up, as when a node dies under it."""
        if self.proc is not None and self.running:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


# -- the operator's image and helm (test_helm.py, test_helm_all_namespaces.py) -------------


@dataclass(frozen=True)
class Image:
    ref: str
    #: The manifest digest BuildKit pushed ("" for an image given from outside).
    digest: str


@pytest.fixture(scope="session")
def helm_binary(cluster: Cluster) -> str:
    from localkube.toolchain import build

    return str(build.build(build.HELM, Paths.default(), log=False) / "helm")


@pytest.fixture(scope="session")
def operator_image(cluster: Cluster) -> Image:
    """Built once per session: both Helm modules install the same image."""
    given = os.environ.get("SHIPWAY_E2E_OPERATOR_IMAGE")
    if given:
        return Image(given, "")
    if not cluster.local:
        pytest.skip("set SHIPWAY_E2E_OPERATOR_IMAGE to an image this cluster can pull")
    from localkube.addons.buildkit.build import build_operator_image

    result = build_operator_image()
    print(
        f"\noperator image {result.pinned} built by BuildKit from the Dockerfile in"
        f" {result.seconds:.0f}s ({len(result.cached)}/{len(result.steps)} steps cached)"
    )
    return Image(result.ref, result.digest)


# -- the git server of the source tests (test_source.py, test_security.py) -------------------


@pytest.fixture(scope="session")
def git_server_image(cluster: Cluster) -> None:
    """The git server's image in the local node's containerd (built once, cached by version):
    every test that starts a git server needs it, whatever ran before it."""
    if cluster.local:
        sys.path.insert(0, str(ROOT / "hack"))
        from localkube.config import Paths
        from localkube.images import git as gitimages

        gitimages.ensure(Paths.default(), import_into=Paths.default().containerd_socket)


@pytest.fixture(scope="session")
def git_server(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, git_server_image: None
) -> Iterator[tuple[GitServer, dict[str, Repo]]]:
    keys = tmp_path_factory.mktemp("git-keys")
    namespace = f"{SESSION_PREFIX}git-server"
    server = gitserver.start(cluster, namespace, keys)
    root = tmp_path_factory.mktemp("repos")
    repos = {
        "app": gitserver.make_repo(
            root,
            "app",
            [
                {**gitserver.PROJECT, "VERSION": "1\n", "@tag": "v1", "@message": "Version one"},
                {"VERSION": "2\n", "@message": "Version two\n\nwith a body"},
            ],
        ),
        "big": gitserver.make_repo(
            root, "big", [{**gitserver.PROJECT, "blob.bin": os.urandom(400_000)}]
        ),
        "escape": gitserver.make_repo(
            root, "escape", [{"tmp@link": "/", "up@link": "../../../../../../.."}]
        ),
    }
    for repo in repos.values():
        server.publish(repo)
        server.publish(repo, private=True)
    yield server, repos
    gitserver.stop(cluster, namespace)
