"""The Helm chart on the real cluster: the operator in-cluster, from its image, under the chart's RBAC.

One release goes through its life in order: install → the operator pod Ready → the walkthrough
Succeeded → the operator's account can do what it needs and nothing else → an upgrade to two
replicas rolls out, one replica acts and the other stands by → uninstall leaves only the CRDs.

The release watches one ``shipway-helm-*`` namespace (conftest.IN_CLUSTER_NAMESPACES): the
session's out-of-cluster operator watches only its own ``e2e-<session>-*`` namespaces, so the
in-cluster operator is the only one that can act there, and the Events it writes name its pod.
On the local cluster the image is built by the cluster's BuildKit from the repository's
``Dockerfile`` and pushed to the in-cluster registry (hack/localkube/addons/buildkit/build.py); the
operator pod must run that very digest. Elsewhere set SHIPWAY_E2E_OPERATOR_IMAGE to a pullable
``repository:tag``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import IN_CLUSTER_NAMESPACES, Image
from .kube import Cluster

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "shipway"
WALKTHROUGH = ROOT / "examples" / "walkthrough-volumes.yaml"
RELEASE = "shipway"
#: The chart's full name for release "shipway": the operator's Deployment, account and Role.
FULLNAME = "shipway"
STEP_ACCOUNT = "shipway-step"
OPERATOR_PODS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
WAIT = 300
BAD_PIPELINES = ROOT / "tests" / "bad_pipelines"
WEBHOOK = "validate.pipelines.shipway.dev"


def WEBHOOK_CONFIG(release: Release) -> str:  # noqa: N802 - a name, computed
    return f"{FULLNAME}.{release.namespace}.pipelines.shipway.dev"


@dataclass
class Release:
    cluster: Cluster
    helm_binary: str
    image: str
    namespace: str
    other: str
    timings: dict[str, float] = field(default_factory=dict)
    digest: str = ""
    #: allNamespaces=true (test_helm_all_namespaces.py): ``other`` then gets the step account.
    all_namespaces: bool = False

    @property
    def account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{FULLNAME}"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self.helm_binary, "--kubeconfig", str(self.cluster.kubeconfig), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`helm {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    def values(self, *extra: str) -> list[str]:
        repository, tag = self.image.rsplit(":", 1)
        scope = (
            ["allNamespaces=true", f"stepServiceAccount.namespaces={{{self.other}}}"]
            if self.all_namespaces
            else [f"watchNamespaces={{{self.namespace}}}"]
        )
        sets = [
            *scope,
            # Cluster-scoped: the session's CRD fixture applies the same policy unowned by Helm.
            "admissionPolicy.create=false",
            f"image.repository={repository}",
            f"image.tag={tag}",
            # The tag is rebuilt in place: always pull what BuildKit pushed last.
            "image.pullPolicy=Always",
            *extra,
        ]
        return [arg for value in sets for arg in ("--set", value)]

    def k(self, *args: str, input: str | None = None) -> str:
        return self.cluster.kubectl(*args, input=input)

    def json(self, *args: str) -> Any:
        return self.cluster.json(*args)

    def operator_pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json(
            "get", "pods", "-n", self.namespace, "-l", OPERATOR_PODS
        )["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def can(self, verb: str, resource: str, *, namespace: str | None, who: str = "") -> bool:
        resource, _, subresource = resource.partition("/")
        args = ["auth", "can-i", verb, resource, "--as", who or self.account]
        args += [f"--subresource={subresource}"] if subresource else []
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        proc = self.cluster.run(*args, check=False)
        answer = proc.stdout.strip()
        if answer not in ("yes", "no"):
            raise AssertionError(f"kubectl auth can-i {verb} {resource}: {proc.stderr}{answer}")
        return answer == "yes"

    def run_walkthrough(self, name: str, namespace: str = "") -> dict[str, Any]:
        namespace = namespace or self.namespace
        doc = yaml.safe_load(WALKTHROUGH.read_text())
        doc["metadata"]["name"] = name
        self.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))
        self.cluster.kubectl(
            "wait", "-n", namespace, "--for=condition=Succeeded",
            f"pipeline/{name}", f"--timeout={WAIT}s",
        )  # fmt: skip
        body: dict[str, Any] = self.json("get", "pipeline", name, "-n", namespace)
        return body

    def reporters(self, pipeline: str, namespace: str = "") -> set[str]:
        """The operator instances (pod names in-cluster) that wrote the Pipeline's Events."""
        events = self.json(
            "get", "events", "-n", namespace or self.namespace,
            "--field-selector", f"involvedObject.kind=Pipeline,involvedObject.name={pipeline}",
        )["items"]  # fmt: skip
        return {e.get("reportingInstance", "") for e in events}


def _wait_until(what: str, probe: Any, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting until {what}")
        time.sleep(1)


@pytest.fixture(scope="module")
def release(cluster: Cluster, helm_binary: str, operator_image: Image) -> Iterator[Release]:
    prefix = IN_CLUSTER_NAMESPACES.rstrip("*")
    namespace = f"{prefix}{secrets.token_hex(3)}"
    made = Release(cluster, helm_binary, operator_image.ref, namespace, f"{namespace}-other")
    made.digest = operator_image.digest
    for ns in (made.namespace, made.other):
        cluster.kubectl("create", "namespace", ns)
    yield made
    made.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
    for ns in (made.namespace, made.other):
        cluster.run("delete", "namespace", ns, "--wait=false", check=False)
    if made.timings:
        print("\nhelm timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in made.timings.items()))


def test_install_brings_the_operator_pod_to_ready(release: Release) -> None:
    started = time.monotonic()
    release.helm(
        "install", RELEASE, str(CHART), "-n", release.namespace, *release.values(),
        "--wait", f"--timeout={WAIT}s",
    )  # fmt: skip
    release.timings["install to Ready"] = time.monotonic() - started
    (pod,) = release.operator_pods()
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"] == release.image
    if release.digest:  # the very image BuildKit built from the Dockerfile and pushed
        assert pod["status"]["containerStatuses"][0]["imageID"].endswith(release.digest)
    assert spec["serviceAccountName"] == FULLNAME
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    hardened = container["securityContext"]
    assert hardened["readOnlyRootFilesystem"] is True
    assert hardened["allowPrivilegeEscalation"] is False
    assert hardened["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # ready once the webhook listens; a stopping pod serves reviews a few seconds more
    assert container["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == 5
    assert container["resources"]["limits"]
    assert container["resources"]["requests"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0
    assert f"--namespace={release.namespace}" in container["args"]


def test_walkthrough_succeeds_under_the_in_cluster_operator(release: Release) -> None:
    body = release.run_walkthrough("volumes-demo")
    assert body["status"]["phase"] == "Succeeded"
    assert body["status"]["progress"] == "2/2"
    (operator,) = release.operator_pods()
    # The Events name the operator instance that wrote them: the in-cluster pod, nobody else.
    assert release.reporters("volumes-demo") == {operator["metadata"]["name"]}
    pods = release.json(
        "get", "pods", "-n", release.namespace, "-l", "shipway.dev/pipeline=volumes-demo"
    )["items"]
    assert len(pods) == 2
    # Pipelines without spec.serviceAccountName get the chart's step account, token unmounted.
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == STEP_ACCOUNT
        assert pod["spec"]["automountServiceAccountToken"] is False
    log = release.k("logs", "-n", release.namespace, operator["metadata"]["name"])
    assert f"{release.namespace}/volumes-demo: Succeeded 2/2" in log
    assert "Forbidden" not in log, log[-3000:]
    # Its metrics, through the chart's Service (the API server's service proxy).
    metrics = release.k(
        "get", "--raw",
        f"/api/v1/namespaces/{release.namespace}/services/{FULLNAME}-metrics:metrics/proxy/metrics",
    )  # fmt: skip
    assert 'shipway_pipelines_finished_total{phase="Succeeded"} 1.0' in metrics
    assert "shipway_step_pods_created_total 2.0" in metrics


HISTORY_API = "/apis/history.shipway.dev/v1alpha1"
APISERVICE = "apiservice/v1alpha1.history.shipway.dev"


def _wait_for_history_api(release: Release) -> None:
    """Until the APIService is Available; if it never is, fail with what says why: its
    conditions, the Service's endpoints and what the operator pods logged of the API."""
    proc = release.cluster.run(
        "wait", APISERVICE, "--for=condition=Available", f"--timeout={WAIT}s", check=False
    )
    if proc.returncode == 0:
        return
    found = release.cluster.run("get", APISERVICE, "-o", "json", check=False).stdout
    conditions = json.loads(found or "{}").get("status", {}).get("conditions")
    slices = release.cluster.run(
        "get", "endpointslices", "-n", release.namespace, "-o", "wide", check=False
    ).stdout
    logs = [
        line
        for pod in release.operator_pods()
        for line in release.cluster.run(
            "logs", "-n", release.namespace, pod["metadata"]["name"], check=False
        ).stdout.splitlines()
        if "history API" in line
    ]
    raise AssertionError(
        f"the history APIService was not Available in {WAIT}s: {proc.stderr}\n"
        f"conditions: {json.dumps(conditions)}\nendpoint slices:\n{slices}\n"
        "operator log on the API:\n" + "\n".join(logs[-20:])
    )


def test_history_api_answers_each_user_with_their_own_rights(
    release: Release, tmp_path: Path
) -> None:
    """The chart's APIService: a user who may only list/get pipelines in the release's
    namespace reads its runs through the API server, and is refused for another namespace
    and for logs (pods/log); then a deleted Pipeline's log prints from `shipway logs`
    through the API alone (no store URL: the store is SQLite on the operator's volume)."""
    from .test_approval import Identity

    _wait_for_history_api(release)
    ns = release.namespace
    doc = yaml.safe_load(WALKTHROUGH.read_text())
    doc["metadata"]["name"] = "history-demo"
    doc["spec"]["steps"][0]["command"] = "sh -c 'echo built > /app/artifact.txt; echo artifact ok'"
    release.k("apply", "-n", ns, "-f", "-", input=json.dumps(doc))
    release.k(
        "wait", "-n", ns, "--for=condition=Succeeded", "pipeline/history-demo",
        f"--timeout={WAIT}s",
    )  # fmt: skip
    reader = "history-reader"
    rbac = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": reader}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": reader},
            "rules": [
                {"apiGroups": ["shipway.dev"], "resources": ["pipelines"], "verbs": ["get", "list"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": reader},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": reader},
            "subjects": [{"kind": "ServiceAccount", "name": reader, "namespace": ns}],
        },
    ]
    release.k(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": rbac}),
    )
    user = Identity(release.cluster, ns, reader, tmp_path)

    def runs_listed() -> list[str]:
        proc = user.kubectl("get", "--raw", f"{HISTORY_API}/namespaces/{ns}/runs")
        assert proc.returncode == 0, proc.stderr
        return [i["metadata"]["name"] for i in json.loads(proc.stdout)["items"]]

    # The record is written within seconds (a batch every 2 s).
    names = _wait_until(
        "history-demo is in the history",
        lambda: "history-demo" in runs_listed() and runs_listed(),
        60,
    )
    assert names[0] == "history-demo"  # newest first
    other = user.kubectl("get", "--raw", f"{HISTORY_API}/namespaces/{release.other}/runs")
    assert other.returncode != 0
    assert "cannot list pipelines" in other.stderr, other.stderr
    logs = user.kubectl("get", "--raw", f"{HISTORY_API}/namespaces/{ns}/runs/history-demo/log")
    assert logs.returncode != 0
    assert "cannot get pods/log" in logs.stderr, logs.stderr
    env = {"SHIPWAY_HISTORY": "api"}
    history = user.shipway("history", "-n", ns, env=env)
    assert history.returncode == 0, history.stderr
    assert any(line.split()[0] == "history-demo" for line in history.stdout.splitlines()[1:])
    refused = user.shipway("history", "-n", release.other, env=env)
    assert refused.returncode != 0
    assert "cannot list pipelines" in refused.stderr, refused.stderr

    # Deleted: its pods go with it, and only the archive (read through the API) has the log.
    def archived() -> bool:
        proc = release.cluster.run(
            "get", "--raw", f"{HISTORY_API}/namespaces/{ns}/runs/history-demo/log", check=False
        )
        return proc.returncode == 0 and len(json.loads(proc.stdout)["items"]) == 2

    _wait_until("both pods' logs are archived", archived, 60)
    release.k("delete", "pipeline", "history-demo", "-n", ns, "--wait=true")
    _wait_until(
        "the pods went with their Pipeline",
        lambda: (
            not release.json("get", "pods", "-n", ns, "-l", "shipway.dev/pipeline=history-demo")[
                "items"
            ]
        ),
        120,
    )
    # No store URL and no local store file: the command line reads through the API.
    printed = subprocess.run(
        [sys.executable, "-m", "shipway", "logs", "history-demo", "-n", ns, "--no-prefix",
         "--kubeconfig", str(release.cluster.kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "operator"), "NO_COLOR": "1",
             "SHIPWAY_HISTORY": "", "XDG_STATE_HOME": str(tmp_path / "state")},
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == "artifact ok\n"


def _webhook_answers(release: Release, namespace: str = "") -> bool:
    """A server-side dry run of a bad Pipeline is denied by the webhook (not unreachable)."""
    bad = str(BAD_PIPELINES / "33-relative-container-path.yaml")
    proc = release.cluster.run(
        "create", "--dry-run=server", "-n", namespace or release.namespace, "-f", bad, check=False
    )
    return f'admission webhook "{WEBHOOK}" denied' in proc.stderr


def test_the_in_cluster_webhook_refuses_what_validate_rejects(release: Release) -> None:
    """Every file the compiler (not the schema) refuses: refused at apply, validate's lines."""
    from tests.e2e.test_admission import validate_lines
    from tests.unit.compiler.test_bad_corpus import FILES, expectation

    config = release.json("get", "validatingwebhookconfiguration", WEBHOOK_CONFIG(release))
    (hook,) = config["webhooks"]
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == [release.namespace]
    assert hook["failurePolicy"] == "Fail"
    _wait_until("the in-cluster webhook answers", lambda: _webhook_answers(release), 120)
    refused = 0
    for path in FILES:
        if expectation(path)[0] != "operator":
            continue
        proc = release.cluster.run("apply", "-n", release.namespace, "-f", str(path), check=False)
        assert proc.returncode != 0, path.name
        for line in validate_lines(path):
            assert line in proc.stderr, (path.name, line, proc.stderr)
        refused += 1
    assert refused >= 20
    # The other namespace is not the release's: its Pipelines are not reviewed.
    other = release.cluster.run(
        "create", "--dry-run=server", "-n", release.other, "-f",
        str(BAD_PIPELINES / "33-relative-container-path.yaml"), check=False,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr


def test_deleting_the_operator_pod_refuses_loudly_and_loses_nothing(release: Release) -> None:
    admitted, refused = outage_loses_nothing(release, release.namespace)
    print(f"\noperator pod deleted: {admitted} admitted, {refused} refused meanwhile")


def outage_loses_nothing(release: Release, namespace: str) -> tuple[int, int]:
    """failurePolicy Fail with one replica: while no pod serves, creates in ``namespace`` fail
    naming the webhook; every admitted Pipeline runs to the end. Returns (admitted, refused)."""
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    stop = threading.Event()

    def apply_continuously() -> None:
        n = 0
        while not stop.is_set():
            doc = yaml.safe_load(WALKTHROUGH.read_text())
            doc["metadata"]["name"] = name = f"flow-{n:03d}"
            doc["spec"]["steps"] = [{"name": "s", "service": "demo", "command": "true"}]
            results[name] = release.cluster.run(
                "create", "-n", namespace, "-f", "-", input=json.dumps(doc), check=False
            )
            n += 1
            time.sleep(0.3)

    (pod,) = release.operator_pods()
    applier = threading.Thread(target=apply_continuously)
    applier.start()
    try:
        time.sleep(2)
        release.k("delete", "pod", "-n", release.namespace, pod["metadata"]["name"], "--wait=false")
        _wait_until(
            "a new operator pod is Ready and the webhook answers",
            lambda: (
                any(
                    p["metadata"]["name"] != pod["metadata"]["name"]
                    for p in release.operator_pods()
                )
                and _webhook_answers(release, namespace)
            ),
        )
        time.sleep(2)
    finally:
        stop.set()
        applier.join()
    admitted = {name for name, r in results.items() if r.returncode == 0}
    refused = {name: r.stderr for name, r in results.items() if r.returncode != 0}
    assert all("failed calling webhook" in err for err in refused.values()), refused
    stored = {
        p["metadata"]["name"]
        for p in release.json("get", "pipelines", "-n", namespace)["items"]
        if p["metadata"]["name"].startswith("flow-")
    }
    assert stored == admitted
    for name in admitted:
        release.cluster.kubectl(
            "wait", "-n", namespace, "--for=condition=Succeeded",
            f"pipeline/{name}", f"--timeout={WAIT}s",
        )  # fmt: skip
    return len(admitted), len(refused)


@pytest.mark.parametrize(
    ("verb", "resource", "where", "allowed"),
    [
        # What the operator uses, in its namespace.
        ("list", "pipelines.shipway.dev", "watched", True),
        ("watch", "pipelines.shipway.dev", "watched", True),
        ("patch", "pipelines.shipway.dev/status", "watched", True),
        ("create", "pods", "watched", True),
        ("patch", "pods", "watched", True),
        ("delete", "pods", "watched", True),
        ("create", "persistentvolumeclaims", "watched", True),
        ("get", "persistentvolumeclaims", "watched", True),
        ("watch", "persistentvolumeclaims", "watched", True),
        ("create", "events", "watched", True),
        ("patch", "kopfpeerings.kopf.dev", "watched", True),
        # The history: logs read, Secrets read by name to mask their values (no more than
        # creating pods there already allows), finished Pipelines pruned.
        ("get", "pods/log", "watched", True),
        ("get", "secrets", "watched", True),
        ("delete", "pipelines.shipway.dev", "watched", True),
        # Nothing else there: no listing Secrets, no writes to the Pipelines' spec.
        ("list", "secrets", "watched", False),
        ("watch", "secrets", "watched", False),
        ("get", "configmaps", "watched", False),
        ("update", "pipelines.shipway.dev", "watched", False),
        ("delete", "persistentvolumeclaims", "watched", False),
        ("create", "serviceaccounts/token", "watched", False),
        ("create", "pods/exec", "watched", False),
        # Other namespaces: nothing at all.
        ("get", "secrets", "other", False),
        ("list", "pods", "other", False),
        ("create", "pods", "other", False),
        ("list", "pipelines.shipway.dev", "other", False),
        ("patch", "pipelines.shipway.dev/status", "other", False),
        ("create", "events", "other", False),
        ("list", "pipelines.shipway.dev", "cluster", False),
        ("list", "secrets", "cluster", False),
        ("list", "namespaces", "cluster", False),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", "cluster", False),
    ],
)
def test_operator_account_has_only_what_it_uses(
    release: Release, verb: str, resource: str, where: str, *, allowed: bool
) -> None:
    namespace = {"watched": release.namespace, "other": release.other, "cluster": None}[where]
    assert release.can(verb, resource, namespace=namespace) is allowed


def test_no_cluster_wide_rbac_and_a_powerless_step_account(release: Release) -> None:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    for kind in ("clusterroles", "clusterrolebindings"):
        names = [o["metadata"]["name"] for o in release.json("get", kind, "-l", selector)["items"]]
        # The one exception, the history read API: the operator asks the API server who may
        # read (system:auth-delegator: create tokenreviews and subjectaccessreviews), and
        # authenticated users pass the API server's gate on runs (the operator decides).
        reader = f"{FULLNAME}.{release.namespace}.history-reader"
        allowed = (
            [reader]
            if kind == "clusterroles"
            else sorted([f"{FULLNAME}.{release.namespace}.history-auth-delegator", reader])
        )
        assert sorted(names) == allowed, f"{kind}: {names}"
    step = f"system:serviceaccount:{release.namespace}:{STEP_ACCOUNT}"
    for verb, resource in (("get", "secrets"), ("list", "pods"), ("list", "pipelines.shipway.dev")):
        assert not release.can(verb, resource, namespace=release.namespace, who=step)


def test_all_namespaces_mode_rbac_lists_no_secrets(release: Release) -> None:
    """The ClusterRole of allNamespaces mode, applied alone (no second operator is started)."""
    name = f"{release.namespace}-cluster"
    server = release.json("version")["serverVersion"]["gitVersion"]
    rendered = release.helm(
        "template", name, str(CHART), "-n", release.namespace, "--kube-version", server,
        "--set", "allNamespaces=true", "--set", f"serviceAccount.name={name}",
        "-s", "templates/serviceaccount.yaml", "-s", "templates/rbac.yaml",
    ).stdout  # fmt: skip
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
    assert sorted(kinds) == ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]
    release.cluster.kubectl("apply", "-f", "-", input=rendered)
    who = f"system:serviceaccount:{release.namespace}:{name}"
    try:
        for verb, resource, allowed in [
            ("list", "pipelines.shipway.dev", True),
            ("patch", "pipelines.shipway.dev/status", True),
            ("create", "pods", True),
            ("patch", "clusterkopfpeerings.kopf.dev", True),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io", True),
            ("get", "secrets", True),  # by name, to mask their values in archived logs
            ("list", "secrets", False),
            ("get", "configmaps", False),
            ("list", "namespaces", False),
            ("update", "pipelines.shipway.dev", False),
            ("create", "customresourcedefinitions.apiextensions.k8s.io", False),
            ("create", "clusterroles.rbac.authorization.k8s.io", False),
        ]:
            assert release.can(verb, resource, namespace=None, who=who) is allowed, (verb, resource)
    finally:
        release.cluster.kubectl("delete", "-f", "-", "--wait=false", input=rendered)


def test_cluster_scoped_templates_are_accepted_by_the_api_server(release: Release) -> None:
    """An all-namespaces install with the admission policy, through a server-side dry run.

    The release under test leaves the policy out (the session's CRD fixture applies the same
    policy without Helm's ownership), so the API server validates the chart's rendering here.
    """
    server = release.json("version")["serverVersion"]["gitVersion"]
    rendered = release.helm(
        "template", "dry-run", str(CHART), "-n", release.namespace, "--kube-version", server,
        "--set", "allNamespaces=true",
    ).stdout  # fmt: skip
    kinds = sorted({d["kind"] for d in yaml.safe_load_all(rendered) if d})
    assert "ValidatingAdmissionPolicy" in kinds
    assert "ClusterKopfPeering" in kinds
    (webhook,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ValidatingWebhookConfiguration"
    ]
    assert "namespaceSelector" not in webhook["webhooks"][0]  # every namespace
    out = release.k("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "validatingadmissionpolicy.admissionregistration.k8s.io/pipelines.shipway.dev" in out


def test_pipelines_in_other_namespaces_are_left_alone(release: Release) -> None:
    doc = yaml.safe_load(WALKTHROUGH.read_text())
    release.cluster.kubectl("apply", "-n", release.other, "-f", "-", input=json.dumps(doc))
    time.sleep(10)  # the watched namespace's walkthrough took about as long, start to finish
    body = release.json("get", "pipeline", "volumes-demo", "-n", release.other)
    assert "status" not in body or not body["status"].get("phase")
    assert release.json("get", "pods", "-n", release.other)["items"] == []


def test_upgrade_to_two_replicas_rolls_out_and_one_acts(release: Release) -> None:
    before = {p["metadata"]["name"] for p in release.operator_pods()}
    started = time.monotonic()
    release.helm(
        "upgrade", RELEASE, str(CHART), "-n", release.namespace,
        # Two replicas need the history in PostgreSQL (SQLite on the claim has one writer).
        *release.values(
            "replicaCount=2",
            "history.enabled=false",
            "podAnnotations.e2e\\.shipway\\.dev/revision=r2",
        ),
        "--wait", f"--timeout={WAIT}s",
    )  # fmt: skip
    release.timings["upgrade to Ready"] = time.monotonic() - started
    history = json.loads(
        release.helm("history", RELEASE, "-n", release.namespace, "-o", "json").stdout
    )
    assert [h["revision"] for h in history] == [1, 2]
    assert history[-1]["status"] == "deployed"

    pods = _wait_until(
        "the old operator pod is gone and two new ones run",
        lambda: (ps := release.operator_pods()) and len(ps) == 2 and not before & _names(ps) and ps,
    )
    for pod in pods:
        assert pod["metadata"]["annotations"]["e2e.shipway.dev/revision"] == "r2"
    names = _names(pods)

    def peers() -> dict[str, Any] | None:
        peering = release.json("get", "kopfpeering", FULLNAME, "-n", release.namespace)
        status: dict[str, Any] = peering.get("status") or {}
        return status if set(status) == names else None

    status = _wait_until("both replicas are in the KopfPeering, the old one gone", peers, 120)
    priorities = {name: status[name]["priority"] for name in names}
    assert len(set(priorities.values())) == 2, priorities
    leader = max(priorities, key=lambda n: priorities[n])
    standby = min(priorities, key=lambda n: priorities[n])

    release.run_walkthrough("volumes-demo-2")
    assert release.reporters("volumes-demo-2") == {leader}
    # The standby stays paused (kopf starts a mandatory peer paused) and never touches it.
    assert "volumes-demo-2" not in release.k("logs", "-n", release.namespace, standby)


def test_uninstall_removes_everything_but_the_crds(release: Release) -> None:
    release.helm("uninstall", RELEASE, "-n", release.namespace, "--wait")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,kopfpeerings"

    def nothing_left() -> bool:
        left = release.json("get", kinds, "-n", release.namespace, "-l", selector)["items"]
        return not left

    # The operator pods go with their ReplicaSet, through the garbage collector.
    _wait_until("nothing of the release is left in its namespace", nothing_left, 120)
    listed = json.loads(release.helm("list", "-n", release.namespace, "-o", "json").stdout)
    assert listed == []
    gone = release.cluster.run(
        "get", "validatingwebhookconfiguration", WEBHOOK_CONFIG(release), check=False
    )
    assert "NotFound" in gone.stderr, gone.stdout
    # The history API's APIService goes too: one left behind would make the group unavailable.
    gone = release.cluster.run("get", "apiservice", "v1alpha1.history.shipway.dev", check=False)
    assert "NotFound" in gone.stderr, gone.stdout
    for crd in ("pipelines.shipway.dev", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        release.k("get", "crd", crd)
    # The Pipelines are the users' data: they stay with their CRD.
    release.k("get", "pipeline", "volumes-demo", "-n", release.namespace)


def _names(pods: list[dict[str, Any]]) -> set[str]:
    return {p["metadata"]["name"] for p in pods}
