"""A push to Gitea runs the pipeline and Gitea shows the result (issue 26), on the local
cluster: Gitea (``localkube.addons.gitea.server``), the operator of the session and ``shipway triggers``."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from shipway.triggers import signatures

from . import crds
from .conftest import SESSION_PREFIX, OperatorProcess
from .forge import (
    HOST_FROM_PODS,
    Gitea,
    Work,
    post,
    project,
    repository_secrets,
    start_triggers,
    warm_spares,
)
from .kube import Cluster
from .pipelines import Kubectl


@dataclass
class Setup:
    cluster: Cluster
    namespace: str
    gitea: Gitea
    repo: str
    work: Work
    hook_url: str
    secret: str
    receiver: list[subprocess.Popen[bytes]]
    """The receiver process (replaced by a restart)."""
    restart: Callable[[], None]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def setup(
    cluster: Cluster,
    shipway_operator: OperatorProcess | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    if not cluster.local:
        pytest.skip("Gitea runs in the local cluster only")
    from localkube.addons.gitea import server as gitea_addon
    from localkube.config import Paths

    found = gitea_addon.up(Paths.default())
    forge = Gitea(found["host_url"], found["username"], found["password"])
    namespace = f"{SESSION_PREFIX}triggers-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    repo = f"app-{secrets.token_hex(3)}"
    forge.create_repo(repo)
    secret = secrets.token_hex(16)
    port = _port()
    log = tmp_path_factory.mktemp("triggers") / "triggers.log"
    proc = start_triggers(namespace, port, log)
    hook_url = f"http://{HOST_FROM_PODS}:{port}/hooks/{namespace}/{repo}"
    forge.add_hook(repo, hook_url, secret)
    token = forge.token(f"shipway-{repo}")
    url = f"{found['host_url']}/{forge.username}/{repo}.git"
    cluster.apply(
        namespace,
        *repository_secrets(forge, webhook_secret=secret, token=token),
    )  # fmt: skip
    cluster.apply(
        namespace,
        {
            "apiVersion": "shipway.dev/v1alpha1",
            "kind": "Repository",
            "metadata": {"name": repo},
            "spec": {
                "url": url,
                "provider": "gitea",
                "webhookSecret": {"name": "hook", "key": "secret"},
                "cloneSecretName": "clone",
                "statusToken": {"name": "status", "key": "token"},
                "branches": ["*"],
                "concurrency": "supersede",
            },
        },
    )
    work = Work(forge.clone_url(repo))
    receiver = [proc]

    def restart() -> None:
        receiver[0].kill()
        receiver[0].wait(timeout=10)
        receiver[0] = start_triggers(namespace, port, log)

    yield Setup(cluster, namespace, forge, repo, work, f"http://127.0.0.1:{port}/hooks/{namespace}/{repo}", secret, receiver, restart)  # fmt: skip
    receiver[0].terminate()
    receiver[0].wait(timeout=10)
    cluster.run("delete", "namespace", namespace, "--wait=false", check=False)


def _pipelines(s: Setup, commit: str | None = None) -> list[dict[str, Any]]:
    got = s.cluster.json(
        "get", "pipelines", "-n", s.namespace, "-l", f"shipway.dev/repository={s.repo}"
    )
    items = list(got.get("items") or [])
    if commit is None:
        return items
    return [p for p in items if p["metadata"]["annotations"].get("shipway.dev/commit") == commit]


def _until(what: str, probe: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _finished(s: Setup, commit: str, timeout: float = 180) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = _pipelines(s, commit)
        if found and (found[0].get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
            "Cancelled",
        ):
            return found[0]
        return None

    return _until(f"the pipeline of {commit[:12]} to finish", probe, timeout)  # type: ignore[no-any-return]


def _status(s: Setup, commit: str, state: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for st in s.gitea.statuses(s.repo, commit):
            if st.get("status") == state:
                return st
        return None

    return _until(f"Gitea's {state} status of {commit[:12]}", probe, 60)  # type: ignore[no-any-return]


def test_push_runs_the_pipeline_and_gitea_shows_pending_then_success(setup: Setup) -> None:
    s = setup
    commit = s.work.commit(project("echo hello from the push"), "First build")
    s.work.push()
    pipeline = _finished(s, commit)
    assert pipeline["status"]["phase"] == "Succeeded", pipeline["status"]
    spec = pipeline["spec"]
    assert spec["source"]["git"]["revision"] == commit
    assert spec["ci"]["branch"] == "main"
    assert spec["ci"]["commitMessage"].startswith("First build")
    assert spec["ci"]["committerName"] == "Ann Example"
    pending = _status(s, commit, "pending")
    success = _status(s, commit, "success")
    assert pending["context"] == success["context"] == f"shipway/{s.repo}"
    assert success["target_url"].endswith(f"/{s.namespace}/{pipeline['metadata']['name']}")
    repo = s.cluster.json("get", "repository", s.repo, "-n", s.namespace)
    assert any(d["pipeline"] == pipeline["metadata"]["name"] for d in repo["status"]["deliveries"])


def _spares(s: Setup) -> list[dict[str, Any]]:
    return warm_spares(s.cluster, s.namespace, s.repo)


def test_a_push_runs_on_a_warm_workspace_which_goes_with_its_pipeline(setup: Setup) -> None:
    """The Repository keeps a claim provisioned ahead (spec.warmWorkspaces, 1 by default):
    a push's pipeline runs on it, it becomes the Pipeline's, and a new spare is made."""
    s = setup
    repo = s.cluster.json("get", "repository", s.repo, "-n", s.namespace)

    def bound_spare() -> dict[str, Any] | None:
        bound = [c for c in _spares(s) if c.get("status", {}).get("phase") == "Bound"]
        return bound[0] if len(bound) == 1 else None

    spare = _until("a bound warm workspace", bound_spare, 90)
    (owner,) = spare["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "Repository", repo["metadata"]["uid"], True,
    )  # fmt: skip
    commit = s.work.commit(project("true"), "On a warm workspace")
    s.work.push()
    pipeline = _finished(s, commit)
    assert pipeline["status"]["phase"] == "Succeeded", pipeline["status"]
    name = spare["metadata"]["name"]
    assert pipeline["spec"]["workspace"]["claimName"] == name
    claim = s.cluster.json("get", "pvc", name, "-n", s.namespace)
    (owner,) = claim["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Pipeline", pipeline["metadata"]["uid"])
    assert "shipway.dev/warm-workspace" not in claim["metadata"].get("labels", {})
    # Another spare replaces it; deleting the Pipeline deletes the claim it ran on.
    _until("a new warm workspace", lambda: [c for c in _spares(s) if c["metadata"]["name"] != name], 90)  # fmt: skip
    s.cluster.kubectl("delete", "pipeline", pipeline["metadata"]["name"], "-n", s.namespace)

    def claim_gone() -> bool:
        got = s.cluster.run("get", "pvc", name, "-n", s.namespace, "--ignore-not-found", "-o", "name", check=False)  # fmt: skip
        return not got.stdout.strip()

    _until(f"the claim {name} to go with its pipeline", claim_gone, 120)


def test_a_failing_step_makes_the_status_failure_naming_the_step(setup: Setup) -> None:
    s = setup
    commit = s.work.commit(project("sh -c 'exit 3'", name="unit tests"), "Break it")
    s.work.push()
    pipeline = _finished(s, commit)
    assert pipeline["status"]["phase"] == "Failed"
    failure = _status(s, commit, "failure")
    assert "unit tests" in failure["description"], failure


def test_skip_ci_creates_nothing(setup: Setup) -> None:
    s = setup
    commit = s.work.commit({"README": "docs\n"}, "Docs only [skip ci]")
    s.work.push()

    def skipped() -> bool:
        repo = s.cluster.json("get", "repository", s.repo, "-n", s.namespace)
        return any(
            d["result"] == "skipped" and "[skip ci]" in d["message"]
            for d in (repo.get("status") or {}).get("deliveries") or []
        )

    _until("the skipped delivery on the Repository", skipped, 60)
    assert _pipelines(s, commit) == []


def _payload(s: Setup, commit: str, message: str) -> bytes:
    return json.dumps({
        "ref": "refs/heads/main", "after": commit, "deleted": False,
        "repository": {"full_name": f"{s.gitea.username}/{s.repo}"},
        "head_commit": {"id": commit, "message": message,
                        "committer": {"name": "Ann Example", "email": "ann@example.com"}},
    }).encode()  # fmt: skip


def test_bad_signature_is_refused_and_creates_nothing(setup: Setup) -> None:
    s = setup
    commit = s.work.commit({"x": "1\n"}, "Not pushed")
    before = len(_pipelines(s))
    body = _payload(s, commit, "forged")
    headers = {"X-Gitea-Event": "push", **signatures.sign("gitea", body, b"wrong secret")}
    code, answer = post(s.hook_url, body, headers)
    assert code == 401, answer
    code, answer = post(s.hook_url, body, {"X-Gitea-Event": "push"})
    assert code == 401, answer
    time.sleep(2)
    assert len(_pipelines(s)) == before


def test_a_replayed_delivery_creates_nothing_new(setup: Setup) -> None:
    s = setup
    commit = s.work.commit(project("echo replay"), "Replayed")
    s.work.push()
    first = _until("the pipeline", lambda: _pipelines(s, commit), 60)
    body = _payload(s, commit, "Replayed")
    headers = {
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": "replayed-1",
        **signatures.sign("gitea", body, s.secret.encode()),
    }
    for _ in range(2):
        code, answer = post(s.hook_url, body, headers)
        assert code == 202, answer
        assert answer["pipeline"] == first[0]["metadata"]["name"]
    time.sleep(3)
    found = _pipelines(s, commit)
    assert [p["metadata"]["uid"] for p in found] == [first[0]["metadata"]["uid"]]


def test_a_second_push_supersedes_the_running_pipeline(setup: Setup) -> None:
    s = setup
    slow = s.work.commit(project("sleep 120", name="slow"), "Slow one")
    s.work.push()

    def running() -> bool:
        found = _pipelines(s, slow)
        return bool(found) and (found[0].get("status") or {}).get("phase") == "Running"

    _until("the slow pipeline to run", running, 120)
    fast = s.work.commit(project("echo newer"), "Newer one")
    s.work.push()
    newer = _until("the newer pipeline", lambda: _pipelines(s, fast), 60)[0]["metadata"]["name"]
    old = _finished(s, slow, 120)
    assert old["status"]["phase"] == "Cancelled"
    assert old["metadata"]["annotations"]["shipway.dev/superseded-by"] == newer
    error = _status(s, slow, "error")
    assert f"Superseded by {newer}" in error["description"]
    assert _finished(s, fast)["status"]["phase"] == "Succeeded"


def _secret_refs(pod: dict[str, Any]) -> list[str]:
    """Every Secret a pod's containers or volumes take (the service account token aside)."""
    spec = pod["spec"]
    found = [v["secret"]["secretName"] for v in spec.get("volumes") or [] if v.get("secret")]
    for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
        for source in container.get("envFrom") or []:
            if source.get("secretRef"):
                found.append(source["secretRef"]["name"])
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                found.append(ref["name"])
    return found


def _step_pods(s: Setup, pipeline: str) -> list[dict[str, Any]]:
    pods = s.cluster.json("get", "pods", "-n", s.namespace)["items"]
    return [
        p for p in pods
        if any(o.get("name") == pipeline for o in p["metadata"].get("ownerReferences") or [])
        and "shipway.dev/step" in (p["metadata"].get("labels") or {})
    ]  # fmt: skip


def test_a_fork_pull_request_runs_without_the_repositorys_secrets(setup: Setup) -> None:
    from shipway.codeship import jetcrypt

    s = setup
    key = jetcrypt.new_key()
    s.cluster.apply(
        s.namespace,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aes"},
         "stringData": {"codeship.aes": key}},
    )  # fmt: skip
    s.cluster.kubectl(
        "patch", "repository", s.repo, "-n", s.namespace, "--type=merge",
        "-p", json.dumps({"spec": {"aesKey": {"name": "aes", "key": "codeship.aes"}}}),
    )  # fmt: skip
    encrypted = jetcrypt.encrypt(b"GREETING=from-the-secret\n", jetcrypt.parse_key(key))
    files = {
        "codeship-services.yml": "app:\n  image: busybox:1.36\n  encrypted_env_file: env.encrypted\n",
        "codeship-steps.yml": "- name: greet\n  service: app\n  command: sh -c 'echo \"$GREETING\"'\n",
        "env.encrypted": encrypted,
    }
    # The repository's own push decrypts: its step pod takes the Secret of the variables.
    own = s.work.commit(files, "Encrypted environment")
    s.work.push()
    mine = _finished(s, own)
    assert mine["status"]["phase"] == "Succeeded", mine["status"]
    assert any(_secret_refs(p) for p in _step_pods(s, mine["metadata"]["name"]))
    # A fork's pull request of the same files: no Secret in any of its pods.
    forker = f"forker-{secrets.token_hex(2)}"
    password = secrets.token_urlsafe(12)
    s.gitea.call("POST", "/admin/users", {
        "username": forker, "password": password, "email": f"{forker}@shipway.test",
        "must_change_password": False,
    })  # fmt: skip
    s.gitea.call("POST", f"/repos/{s.gitea.username}/{s.repo}/forks", {}, auth=(forker, password))
    fork = Work(s.gitea.clone_url(s.repo, owner=forker, auth=(forker, password)))
    fork.git("fetch", "-q", "origin", "main")
    fork.git("checkout", "-q", "-B", "feature", "FETCH_HEAD")
    head = fork.commit({"feature.txt": "x\n"}, "A contribution")
    fork.push("feature")
    pr = s.gitea.call("POST", f"/repos/{s.gitea.username}/{s.repo}/pulls", {
        "head": f"{forker}:feature", "base": "main", "title": "A contribution",
    }, auth=(forker, password))  # fmt: skip
    theirs = _finished(s, head)
    assert theirs["metadata"]["annotations"]["shipway.dev/fork"] == "true"
    assert theirs["spec"]["ci"]["prNumber"] == str(pr["number"])
    assert theirs["status"]["phase"] == "Succeeded", theirs["status"]
    pods = _step_pods(s, theirs["metadata"]["name"])
    steps = [p for p in pods if p["metadata"]["labels"]["shipway.dev/step"] != "source"]
    assert steps
    assert [_secret_refs(p) for p in steps] == [[] for _ in steps]
    # The checkout (the operator's git image, never the fork's code) alone has the clone
    # credentials, as files.
    checkout = [p for p in pods if p["metadata"]["labels"]["shipway.dev/step"] == "source"]
    assert [_secret_refs(p) for p in checkout] == [["clone"]]
    assert "envFrom" not in json.dumps(theirs["spec"])
    status = _status(s, head, "success")
    assert "fork: no secrets" in status["description"]


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(microsecond=0)


def test_queued_pushes_run_one_after_the_other_across_a_receiver_restart(setup: Setup) -> None:
    """concurrency: queue. The second push of a branch waits on the Repository's status (not
    in the receiver's memory: the receiver is killed and restarted while it waits) and its
    Pipeline is created only once the first one has ended; both end Succeeded."""
    s = setup
    s.cluster.kubectl(
        "patch", "repository", s.repo, "-n", s.namespace, "--type=merge",
        "-p", json.dumps({"spec": {"concurrency": "queue"}}),
    )  # fmt: skip
    branch = f"queue-{secrets.token_hex(2)}"
    # Other sessions' older CRDs would prune status.queued: keep this tree's in place.
    with crds.kept(Kubectl(s.namespace)):
        _queued_pushes(s, branch)


def _queued_pushes(s: Setup, branch: str) -> None:
    try:
        first = s.work.commit(project("sleep 30", name="first"), "First in line")
        s.work.push(branch)

        def running() -> bool:
            found = _pipelines(s, first)
            return bool(found) and (found[0].get("status") or {}).get("phase") == "Running"

        _until("the first pipeline to run", running, 120)
        second = s.work.commit(project("echo second", name="second"), "Second in line")
        s.work.push(branch)

        def waiting() -> list[dict[str, Any]]:
            repo = s.cluster.json("get", "repository", s.repo, "-n", s.namespace)
            queued = (repo.get("status") or {}).get("queued") or []
            return [q for q in queued if q["commit"] == second]

        entry = _until("the second push on status.queued", waiting, 60)[0]
        assert entry["branch"] == branch
        _status(s, second, "pending")
        s.restart()  # what waits is on the Repository, not in this process
        still = (_pipelines(s, first)[0].get("status") or {}).get("phase") == "Running"
        assert not still or _pipelines(s, second) == [], "created while the first still runs"
        done = _finished(s, first, 180)
        assert done["status"]["phase"] == "Succeeded", done["status"]
        later = _finished(s, second, 180)
        assert later["status"]["phase"] == "Succeeded", later["status"]
        assert later["metadata"]["name"] == entry["pipeline"]
        assert _when(later["metadata"]["creationTimestamp"]) >= _when(done["status"]["finishedAt"])
        assert not waiting(), "the queue entry stays after its Pipeline was created"
        _status(s, second, "success")
    finally:
        s.cluster.kubectl(
            "patch", "repository", s.repo, "-n", s.namespace, "--type=merge",
            "-p", json.dumps({"spec": {"concurrency": "supersede"}}),
        )  # fmt: skip
