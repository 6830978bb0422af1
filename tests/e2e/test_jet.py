"""jet's commands on the real cluster: ``shipway exec`` (jet run), ``shipway restart``
(Codeship's restart build), with ``keygen`` and ``encrypt`` making the project's secrets.

Every command runs as a user would run it (a subprocess, output piped).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from . import gitserver
from .gitserver import GitServer, Repo, lost_source
from .kube import Cluster
from .pipelines import ROOT, Kubectl
from .test_cli import created_name, shipway, shipway_env, step_lines
from .test_source import apply_crds

pytestmark = pytest.mark.e2e

IMAGE = "busybox:1.36"

EXEC_SERVICES = f"""\
app:
  image: {IMAGE}
  links: [db]
  volumes: ["./:/data"]
db:
  image: {IMAGE}
  command: sh -c 'mkdir -p /www && echo pong > /www/ping && exec httpd -f -p 8080 -h /www'
"""
ASK_DB = (
    "for i in $(seq 1 60); do wget -qO- http://db:8080/ping && break; sleep 1; done; "
    "cat /data/note.txt; exit 7"
)


def local(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A shipway command as given (no -n added at the end)."""
    return subprocess.run(
        [sys.executable, "-m", "shipway", *args],
        capture_output=True,
        text=True,
        env=shipway_env(),
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def test_exec_runs_a_command_in_a_service_with_its_links_and_volumes(
    k: Kubectl, tmp_path: Path
) -> None:
    (tmp_path / "codeship-services.yml").write_text(EXEC_SERVICES)
    (tmp_path / "note.txt").write_text("from the uploaded directory\n")
    # -n before the --: everything after it is the command's
    done = local(
        "exec", "-n", k.namespace, "--dir", str(tmp_path), "--name", "ex", "app", "--",
        "sh", "-c", ASK_DB, timeout=300,
    )  # fmt: skip
    # the command's own exit code, its output (the linked service answered, the directory
    # was uploaded and mounted as the service's volume says)
    assert done.returncode == 7, done.stdout + done.stderr
    prefix = f"(step: {shlex.join(['sh', '-c', ASK_DB])}) "
    output = [line.removeprefix(prefix) for line in step_lines(done.stdout)]
    assert "pong" in output
    assert "from the uploaded directory" in output
    assert output[-1] == "error ✗ container exited with a 7 code"
    body = k.pipeline(created_name(done.stdout))
    assert body["spec"]["steps"] == [{"service": "app", "command": ["sh", "-c", ASK_DB]}]
    (only,) = body["status"]["steps"]
    assert only["exitCode"] == 7
    assert body["status"]["phase"] == "Failed"


RESTART_SERVICES = f"""\
demo:
  image: {IMAGE}
  working_dir: /src
  encrypted_env_file: env.encrypted
  volumes: ["./:/src"]
"""
RESTART_STEPS = """\
- name: show
  service: demo
  command: sh -c 'echo "version $(cat VERSION) branch $CI_BRANCH secret $FOO"'
"""


def _secret_owners(k: Kubectl, name: str) -> list[str]:
    secret = k.json("get", "secret", name)
    return sorted(ref["uid"] for ref in secret["metadata"].get("ownerReferences") or [])


def _project(tmp_path: Path) -> tuple[Path, Path]:
    """A key from ``shipway keygen`` and an env file ``shipway encrypt`` sealed with it."""
    key = tmp_path / "codeship.aes"
    made = local("keygen", str(key))
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    (tmp_path / "env").write_text("FOO=s3cret\n")
    sealed = tmp_path / "env.encrypted"
    done = local("encrypt", "--key-path", str(key), str(tmp_path / "env"), str(sealed))
    assert done.returncode == 0, done.stderr
    return key, sealed


def _restart(k: Kubectl, *args: str) -> tuple[str, dict[str, Any], str]:
    done = shipway(k.namespace, "restart", *args, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    name = created_name(done.stdout)
    return name, k.wait_for(name, timeout=120), done.stdout


def test_restart_runs_the_same_commit_with_the_same_secrets(
    k: Kubectl,
    tmp_path: Path,
    git_server: tuple[GitServer, dict[str, Repo]],
) -> None:
    server, _ = git_server
    key, sealed = _project(tmp_path)
    files: dict[str, str | bytes | None] = {
        "codeship-services.yml": RESTART_SERVICES,
        "codeship-steps.yml": RESTART_STEPS,
        "env.encrypted": sealed.read_bytes(),
        "VERSION": "1\n",
    }
    repo = gitserver.make_repo(tmp_path, f"restart-{uuid.uuid4().hex[:6]}", [files])
    server.publish(repo)
    work = repo.bare.parent / f"{repo.name}-work"
    url = server.http(repo.name)
    apply_crds(k)
    first = shipway(
        k.namespace, "run", "--dir", str(work), "--aes-key", str(key), "--name", "rs",
        "--git-url", url, "--revision", "main", timeout=300,
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    assert "(step: show) version 1 branch main secret ***" in step_lines(first.stdout)
    old = k.pipeline(created_name(first.stdout))
    if lost_source(old):
        pytest.skip("another session applied a CRD without spec.source meanwhile")
    name, old_uid = old["metadata"]["name"], old["metadata"]["uid"]
    commit = old["status"]["source"]["commit"]
    (secret,) = {ref["secretRef"]["name"] for ref in old["spec"]["services"]["demo"]["envFrom"]}
    assert _secret_owners(k, secret) == [old_uid]

    # main moves on; a restart still runs the commit the first run checked out
    (work / "VERSION").write_text("2\n")
    gitserver.git(work, "commit", "-qam", "version two")
    gitserver.git(work, "push", "-q", str(repo.bare), "main")
    server.publish(repo)

    again, body, output = _restart(k, name)
    assert again == f"{name}-r2"
    assert f"shipway: restart of {name}: checking out {commit[:12]} (main) again" in output
    assert "(step: show) version 1 branch main secret ***" in step_lines(output)
    assert body["status"]["phase"] == "Succeeded"
    assert body["status"]["source"]["commit"] == commit
    assert body["spec"]["source"]["git"]["revision"] == commit
    assert body["metadata"]["labels"]["shipway.dev/restart-of"] == name
    new_uid = body["metadata"]["uid"]
    assert _secret_owners(k, secret) == sorted([old_uid, new_uid])

    # the original goes; its Secret stays for the restart, which can be restarted in turn
    k("delete", "pipeline", name, "--wait=true")
    deadline = time.monotonic() + 60
    while _secret_owners(k, secret) != [new_uid]:
        assert time.monotonic() < deadline, "the garbage collector kept the old owner"
        time.sleep(1)
    third, body, output = _restart(k, again, "--no-logs")
    assert third == f"{name}-r3"
    assert body["status"]["phase"] == "Succeeded", json.dumps(body["status"])
    assert "restart of " + again in shipway(k.namespace, "status", third).stdout
    listing = shipway(k.namespace, "list").stdout.splitlines()
    assert listing[0].split()[-1] == "RESTART-OF"
    rows = {line.split()[0]: line.split() for line in listing[1:]}
    assert rows[again][-1] == name
    assert rows[third][-1] == again
    log = shipway(k.namespace, "logs", third, "--step", "show", "--no-prefix").stdout
    assert log == "version 1 branch main secret ***\n"  # the Secret's value, masked


def test_restart_of_an_unknown_pipeline_is_one_line(k: Kubectl) -> None:
    done = shipway(k.namespace, "restart", "nope")
    assert done.returncode == 2
    assert done.stderr == f"shipway: pipeline 'nope' not found in namespace '{k.namespace}'\n"


EXAMPLE_11 = ROOT / "tests" / "codeship_examples" / "11.encrypted-aes"


def test_decrypt_and_encrypt_as_a_user_types_them(tmp_path: Path) -> None:
    """Example 11 (its key and the file sealed in jet's format), through the command."""
    key, sealed = str(EXAMPLE_11 / "codeship.aes"), str(EXAMPLE_11 / "environment.encrypted")
    done = local("decrypt", "--key-path", key, sealed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["GREETING=ahoy", "TOKEN=tok-7f3a9c"]
    again = tmp_path / "again.encrypted"
    made = local("encrypt", "--key-path", key, str(EXAMPLE_11 / "environment"), str(again))
    assert made.returncode == 0, made.stderr
    assert local("decrypt", "--key-path", key, str(again)).stdout == (
        (EXAMPLE_11 / "environment").read_text()
    )
    other = tmp_path / "other.aes"
    assert local("keygen", str(other)).returncode == 0
    wrong = local("decrypt", "--key-path", str(other), sealed)
    assert wrong.returncode == 2
    assert wrong.stdout == ""
    assert wrong.stderr == (
        f"shipway: {sealed}: cannot be decrypted with this AES key (wrong key, or not a "
        "jet-encrypted file)\n"
    )
