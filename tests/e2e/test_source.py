"""The repository is the workspace: checkouts from a real git server in the cluster, and
``shipway run --dir`` uploads, on the real cluster.

The project is the seed walkthrough as Codeship files whose service mounts ``./:/src``:
``artifact.sh`` (in the repository) writes ``tmp/artifact.txt`` from ``VERSION`` and the CI
variables, and a later step of another service (``volumes_from``) reads it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from . import gitserver
from .conftest import ROOT, OperatorProcess
from .gitserver import GitServer, Repo, lost_source
from .kube import Cluster
from .pipelines import Kubectl
from .test_cli import created_name, shipway, shipway_env

pytestmark = pytest.mark.e2e

PROJECT = gitserver.PROJECT


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object) -> Kubectl:
    # Other test sessions on the shared cluster may have applied an older CRD (without
    # spec.source, which the API server would then prune): apply this tree's again.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    return Kubectl(namespace)


def project_dir(repo: Repo) -> Path:
    """The repository's work tree on the host: the Codeship files ``run --dir`` converts."""
    return repo.bare.parent / f"{repo.name}-work"


def apply_crds(k: Kubectl) -> None:
    gitserver.serve_own_crd(k, ROOT)


def run(k: Kubectl, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    for _ in range(3):
        apply_crds(k)
        done = shipway(k.namespace, "run", "--no-logs", *args, timeout=300)
        body = k.wait_for(created_name(done.stdout + done.stderr), timeout=120)
        if not lost_source(body):
            return done, body
        print(f"\nspec or status.source pruned (an older CRD was applied): again\n{done.stdout}")
    raise AssertionError("another test session kept applying a CRD without spec.source")


def run_dir(k: Kubectl, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``shipway run`` with logs, again if an older CRD pruned the source meanwhile."""
    for _ in range(3):
        apply_crds(k)
        done = shipway(k.namespace, "run", *args, timeout=timeout)
        if not lost_source(k.pipeline(created_name(done.stdout + done.stderr))):
            return done
        print(f"\nspec or status.source pruned (an older CRD was applied): again\n{done.stdout}")
    raise AssertionError("another test session kept applying a CRD without spec.source")


def step_log(k: Kubectl, body: dict[str, object], step: str) -> str:
    status = body["status"]
    assert isinstance(status, dict)
    pod = next(s["pod"] for s in status["steps"] if s["name"] == step)
    return k("logs", pod)


def step_pods(k: Kubectl, name: str) -> list[str]:
    pods = k.json("get", "pods", "-l", f"shipway.dev/pipeline={name}")["items"]
    return [
        p["metadata"]["name"] for p in pods if p["metadata"]["labels"]["shipway.dev/step"].isdigit()
    ]


def test_public_repository_over_http_at_a_commit(
    k: Kubectl, git_server: tuple[GitServer, dict[str, Repo]]
) -> None:
    server, repos = git_server
    app = repos["app"]
    done, body = run(
        k,
        "--dir",
        str(project_dir(app)),
        "--git-url",
        server.http("app"),
        "--revision",
        app.commits["v1"],
    )
    assert body["status"]["phase"] == "Succeeded", done.stdout + done.stderr
    source = body["status"]["source"]
    assert source["commit"] == app.commits["v1"]
    assert source["commitMessage"] == "Version one"
    assert source["committerName"] == "Carl Committer"
    assert "workspace starts empty" not in done.stderr
    # the first step ran the repository's script at that commit; the second read what it wrote
    assert step_log(k, body, "check artifact").strip() == (
        f"version 1 commit {app.commits['v1']} branch none"
    )
    shown = shipway(k.namespace, "status", created_name(done.stdout)).stdout
    assert "checkout" in shown
    assert app.commits["v1"][:12] in shown
    assert "waited" in shown
    logs = shipway(k.namespace, "logs", created_name(done.stdout), "--step", "checkout").stdout
    assert "(step: checkout) checked out " + app.commits["v1"] in logs


def test_public_repository_over_git_daemon_default_branch(
    k: Kubectl, git_server: tuple[GitServer, dict[str, Repo]]
) -> None:
    server, repos = git_server
    app = repos["app"]
    done, body = run(k, "--dir", str(project_dir(app)), "--git-url", server.daemon("app"))
    assert body["status"]["phase"] == "Succeeded", done.stdout + done.stderr
    assert step_log(k, body, "check artifact").strip() == (
        f"version 2 commit {app.commits['c2']} branch main"
    )
    reasons = [e["reason"] for e in k.events(body["metadata"]["name"])]
    assert "SourceReady" in reasons


def test_private_repository_with_basic_auth_credentials_that_never_show(
    k: Kubectl,
    git_server: tuple[GitServer, dict[str, Repo]],
    shipway_operator: OperatorProcess | None,
) -> None:
    server, repos = git_server
    server.secret(k.namespace, "git-basic", "basic")
    done, body = run(
        k,
        "--dir",
        str(project_dir(repos["app"])),
        "--git-url",
        server.http("app", private=True),
        "--revision",
        "main",
        "--git-secret",
        "git-basic",
    )
    assert body["status"]["phase"] == "Succeeded", done.stdout + done.stderr
    name = body["metadata"]["name"]
    checkout_pod = k.json("get", "pod", body["status"]["source"]["pod"])
    assert checkout_pod["spec"]["automountServiceAccountToken"] is False
    assert checkout_pod["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    seen = [
        json.dumps(body),
        json.dumps(k.events(name)),
        k("logs", body["status"]["source"]["pod"]),
        json.dumps(checkout_pod["spec"]["containers"][0].get("env")),
        done.stdout + done.stderr,
    ]
    if shipway_operator is not None:
        seen.append(shipway_operator.log_path.read_text(errors="replace"))
    assert not any(gitserver.HTTP_PASSWORD in text for text in seen)


def test_private_repository_over_ssh_with_a_key_and_known_hosts(
    k: Kubectl, git_server: tuple[GitServer, dict[str, Repo]]
) -> None:
    server, repos = git_server
    server.secret(k.namespace, "deploy-key", "ssh")
    done, body = run(
        k,
        "--dir",
        str(project_dir(repos["app"])),
        "--git-url",
        server.ssh("app"),
        "--revision",
        "v1",
        "--git-secret",
        "deploy-key",
    )
    assert body["status"]["phase"] == "Succeeded", done.stdout + done.stderr
    assert body["status"]["source"]["tag"] == "v1"
    assert step_log(k, body, "check artifact").startswith("version 1 ")
    assert "PRIVATE KEY" not in k("logs", body["status"]["source"]["pod"])


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown-host", "Could not resolve host: no-such-host.invalid"),
        ("missing-revision", "couldn't find remote ref no-such-branch"),
        ("wrong-password", "Authentication failed"),
        ("too-large", "larger than the checkout's size limit"),
    ],
)
def test_a_checkout_that_fails_fails_the_pipeline_with_gits_message_and_no_step_pod(
    k: Kubectl, git_server: tuple[GitServer, dict[str, Repo]], case: str, expected: str
) -> None:
    server, repos = git_server
    args = ["--dir", str(project_dir(repos["app"]))]
    if case == "unknown-host":
        args += ["--git-url", "http://no-such-host.invalid/org/app.git"]
    elif case == "missing-revision":
        args += ["--git-url", server.http("app"), "--revision", "no-such-branch"]
    elif case == "wrong-password":
        k.apply_docs(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "wrong"},
                    "stringData": {"username": gitserver.HTTP_USER, "password": "not-it-123"},
                }
            ]
        )
        args += ["--git-url", server.http("app", private=True), "--git-secret", "wrong"]
    done = None
    if case == "too-large":
        converted = subprocess.run(
            [
                sys.executable,
                "-m",
                "shipway",
                "convert",
                "-o",
                "json",
                "-q",
                "--dir",
                str(project_dir(repos["big"])),
                "--git-url",
                server.http("big"),
            ],
            capture_output=True,
            text=True,
            env=shipway_env(),
            check=True,
        )
        manifest = json.loads(converted.stdout)
        manifest["spec"]["source"]["git"]["maxSize"] = "100k"
        for attempt in range(3):
            apply_crds(k)
            manifest["metadata"] = {"name": f"too-large-{attempt}"}
            k.apply_docs([manifest])
            body = k.wait_for(f"too-large-{attempt}", timeout=120)
            if not lost_source(body):
                break
    else:
        done, body = run(k, *args)
    status = body["status"]
    assert status["phase"] == "Failed", status
    assert status["message"].startswith("checkout failed: "), status["message"]
    assert expected in status["message"]
    assert status["source"]["phase"] == "Failed"
    assert {s["reason"] for s in status["steps"]} == {"SourceFailed"}
    assert step_pods(k, body["metadata"]["name"]) == [], "no step pod"
    assert "not-it-123" not in json.dumps(body) + json.dumps(k.events(body["metadata"]["name"]))
    if done is not None:
        assert done.returncode == 1


def test_run_dir_uploads_the_directory_and_steps_see_it(k: Kubectl, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    for name, content in PROJECT.items():
        assert isinstance(content, str)
        (project / name).write_text(content)
    (project / "VERSION").write_text("local\n")
    (project / "secret.env").write_text("TOKEN=do-not-send\n")
    (project / ".shipwayignore").write_text("*.env\n")
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("[core]\n")
    (project / "data").mkdir()
    for index in range(200):
        (project / "data" / f"f{index}.txt").write_text(f"{index}\n" * 100)
    done = run_dir(k, "--dir", str(project))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(step: check artifact) version local commit none branch none" in done.stdout
    assert "shipway: uploaded 205 files" in done.stdout, done.stdout
    assert "(step: upload) received 205 files" in done.stdout
    body = k.pipeline(created_name(done.stdout))
    assert body["status"]["source"]["files"] == 205
    ls = shipway(k.namespace, "logs", created_name(done.stdout), "--step", "upload").stdout
    assert "received 205 files" in ls


def big_project(root: Path) -> Path:
    root.mkdir()
    for name, content in PROJECT.items():
        assert isinstance(content, str)
        (root / name).write_text(content)
    (root / "big").mkdir()
    for index in range(4):  # sparse: 4 GB to send, no disk used here
        with (root / "big" / f"b{index}.bin").open("wb") as handle:
            handle.truncate(1 << 30)
    return root


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_upload(k: Kubectl, project: Path, sig: int) -> tuple[str, str, dict[str, Any]]:
    """Start ``shipway run --dir``, send ``sig`` once the receiver has been running a moment
    (the upload under way); its output, the pipeline's name and its final state."""
    for _ in range(3):
        apply_crds(k)
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipway", "run", "--dir", str(project), "-n", k.namespace],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=shipway_env(),
            # A suite started in the background by a shell without job control inherits SIGINT
            # ignored, and Python then installs no Ctrl-C handler: give the CLI the default.
            preexec_fn=_default_sigint,
        )
        assert proc.stdout is not None
        name = created_name(proc.stdout.readline())
        selector = f"shipway.dev/pipeline={name},shipway.dev/step=source"
        deadline = time.monotonic() + 90
        while True:
            found = k.json("get", "pods", "-l", selector)["items"]
            statuses = [c for p in found for c in p.get("status", {}).get("containerStatuses", [])]
            if any("running" in c.get("state", {}) for c in statuses):
                break
            assert time.monotonic() < deadline, "the upload receiver never ran"
            time.sleep(0.2)
        time.sleep(2)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=180)
        body = k.wait_for(name, timeout=120)
        if not lost_source(body):
            return out, name, body
    raise AssertionError("another test session kept applying a CRD without spec.source")


def test_an_interrupted_upload_never_runs_a_step(k: Kubectl, tmp_path: Path) -> None:
    _out, name, body = interrupt_upload(k, big_project(tmp_path / "proj"), signal.SIGKILL)
    status = body["status"]
    assert status["phase"] == "Failed", status
    assert status["source"]["reason"] == "UploadInterrupted", status["source"]
    assert status["message"].startswith("upload failed: "), status["message"]
    assert step_pods(k, name) == []


def test_ctrl_c_during_an_upload_cancels_the_pipeline(k: Kubectl, tmp_path: Path) -> None:
    out, name, body = interrupt_upload(k, big_project(tmp_path / "proj"), signal.SIGINT)
    assert f"shipway: cancelling {name}" in out, out
    assert body["status"]["phase"] == "Cancelled", body["status"]
    assert step_pods(k, name) == []
