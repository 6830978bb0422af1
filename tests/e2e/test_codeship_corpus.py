"""The example fixtures (shaped after Codeship's) that convert today run green with
``shipway run --dir``.

Each runs as written, from a copy of its directory: ``image: busybox`` and ``FROM busybox``
(``latest``) come from the local cluster's docker.io mirror; builds run in the cluster's
BuildKit. The table of what converts is tests/unit/codeship/test_corpus.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import crds
from .pipelines import ROOT, Kubectl
from .test_docker import docker_image  # noqa: F401  (the mirror's docker image, for 14)

pytestmark = pytest.mark.e2e

CORPUS = ROOT / "tests" / "codeship_examples"

# example → (extra `shipway run` arguments, lines its steps must print)
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "04.parallelised": ([], ["setting up", "halfway there", "wrapping up"]),
    "05.matrix": ([], ["FLAVOUR=vanilla", "FLAVOUR=chocolate"]),
    "06.matrix-complex": ([], ["FLAVOUR=vanilla", "FLAVOUR=chocolate"]),
    "09.branch-only": (["--branch", "master"], ["runs on master only"]),
    "10.lots-of-parallel": ([], [f"task-{n}" for n in range(1, 26)]),
    # built from its Dockerfile (FROM busybox, COPY) and run in its working_dir
    "22.working_dir": ([], ["working in /home"]),
}


@pytest.fixture
def k(cluster: object, namespace: str, shipway_operator: object) -> Kubectl:
    return Kubectl(namespace)


def local_copy(name: str, tmp_path: Path) -> Path:
    """The example as written: ``image: busybox`` (latest) and ``FROM busybox`` come from
    the local cluster's docker.io mirror, unchanged."""
    target = tmp_path / name
    shutil.copytree(CORPUS / name, target)
    return target


def shipway_run(k: Kubectl, directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipway", "run", "--dir", str(directory), "-n", k.namespace, *args],
        capture_output=True,
        text=True,
        env={**k.env, "PYTHONPATH": str(ROOT / "operator"), "NO_COLOR": "1"},
        timeout=600,
        check=False,
    )


def printed(result: subprocess.CompletedProcess[str]) -> set[str]:
    """What the steps printed: ``(step: NAME) TEXT`` lines without their prefix."""
    return {line.split(") ", 1)[-1].strip() for line in result.stdout.splitlines()}


@pytest.mark.parametrize("name", list(RUNS))
def test_the_example_runs_green(k: Kubectl, tmp_path: Path, name: str) -> None:
    args, expected = RUNS[name]
    result = shipway_run(k, local_copy(name, tmp_path), *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = printed(result)
    for line in expected:
        assert line in lines, f"{line!r} not printed:\n{output}"
    assert "error ✗" not in result.stdout


def test_the_branch_filter_skips_the_step_on_another_branch(k: Kubectl, tmp_path: Path) -> None:
    result = shipway_run(k, local_copy("09.branch-only", tmp_path), "--branch", "main")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runs on master only" not in printed(result)


def test_example_11_runs_as_written_with_the_key_it_holds(k: Kubectl, tmp_path: Path) -> None:
    """``shipway run --dir`` on 11: its codeship.aes decrypts environment.encrypted into a
    Secret the Pipeline owns, its image is built (FROM busybox) and its step's script prints
    GREETING=ahoy, which ``shipway run`` shows masked (a Secret's value). No plaintext in the
    Pipeline."""
    from . import crds

    target = local_copy("11.encrypted-aes", tmp_path)
    output = ""
    for _ in range(4):  # another session's older CRD may refuse build: ours again, then retry
        with crds.kept(k):
            result = shipway_run(k, target)
        output = result.stdout + result.stderr
        if "image builds are not supported" not in output:
            break
    assert result.returncode == 0, output
    assert "GREETING=***" in printed(result), output
    assert "ahoy" not in result.stdout
    name = next(
        line.split()[2].split("/")[1]
        for line in output.splitlines()
        if line.startswith("shipway: pipeline ") and line.endswith(" created")
    )
    body = k.pipeline(name)
    (secret_ref,) = body["spec"]["services"]["reader"]["envFrom"]
    secret = k.json("get", "secret", secret_ref["secretRef"]["name"])
    assert sorted(secret["data"]) == ["GREETING", "TOKEN"]
    owners = [o["uid"] for o in secret["metadata"]["ownerReferences"]]
    assert body["metadata"]["uid"] in owners
    assert "tok-7f3a9c" not in json.dumps(body["spec"])


@pytest.mark.usefixtures("docker_image")
def test_example_14_runs_docker_in_its_add_docker_step(k: Kubectl, tmp_path: Path) -> None:
    """``docker:stable-dind`` with ``add_docker``, running ``docker run busybox echo hello``:
    the step's daemon (the session's operator runs them) pulls busybox through the mirror."""
    crds.apply(k)
    output = ""
    for attempt in range(3):  # another session's older CRD may prune add_docker: run again
        with crds.kept(k):
            result = shipway_run(k, local_copy("14.add_docker", tmp_path / str(attempt)))
        output = result.stdout + result.stderr
        if "Cannot connect to the Docker daemon" not in output:
            break
    assert result.returncode == 0, output
    assert "hello" in printed(result), output
