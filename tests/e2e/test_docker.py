"""add_docker on the real cluster: a step with a Docker daemon beside it (issue #28).

The session's operator runs with ``SHIPWAY_DOCKER=on`` (conftest) and, on the local cluster,
points its daemons at the registry's docker.io mirror. The step's service runs the mirrored
``docker:20.10`` (Debian's Docker Engine and CLI, ``localkube.images.docker``), pushed into the
registry once per session by ``python -m localkube mirror docker``'s code. The project is a
Codeship directory uploaded by ``shipway run --dir``: ``docker build`` of its Dockerfile,
``docker run`` of the result, ``docker push`` to the cluster's registry and ``docker compose
up`` of two services that talk.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from . import crds
from .kube import Cluster
from .pipelines import Kubectl
from .registrycreds import login
from .test_build import write
from .test_cli import created_name, shipway

pytestmark = pytest.mark.e2e
REGISTRY = "registry.localkube-system.svc.cluster.local"

PROJECT = {
    "codeship-services.yml": """\
app:
  image: docker:20.10
  add_docker: true
  volumes: ["./:/src"]
  working_dir: /src
""",
    "codeship-steps.yml": """\
- name: build and run
  service: app
  command: sh -c 'docker build -t hello:e2e . && docker run --rm hello:e2e'
- name: push
  service: app
  command: sh -c 'docker build -t $IMAGE . && docker push $IMAGE'
- name: compose
  service: app
  command: docker compose up --exit-code-from check
""",
    "Dockerfile": 'FROM busybox:1.36\nCOPY message.txt /message.txt\nCMD ["cat", "/message.txt"]\n',
    "message.txt": "built and run inside the step\n",
    "docker-compose.yml": """\
version: "3"
services:
  web:
    image: busybox:1.36
    command: sh -c 'echo compose web answers > /tmp/index.html && httpd -f -p 8080 -h /tmp'
  check:
    image: busybox:1.36
    depends_on: [web]
    command: >-
      sh -c 'for i in 1 2 3 4 5 6 7 8 9 10;
      do wget -qO- http://web:8080/index.html && exit 0; sleep 1; done; exit 1'
""",
}


@pytest.fixture(scope="session")
def docker_image(cluster: Cluster) -> None:
    """The mirror's docker image: built (cached) and pushed only for these tests."""
    if not cluster.local:
        pytest.skip("the docker image is mirrored by the local cluster")
    from localkube.addons.registry import mirror
    from localkube.config import Paths

    mirror.push_all(Paths.default(), ["docker"])


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object, docker_image: None) -> Kubectl:
    crds.apply(Kubectl(namespace))
    return Kubectl(namespace)


def test_a_step_builds_runs_and_composes_with_its_own_docker_daemon(
    k: Kubectl, cluster: Cluster, tmp_path: Path
) -> None:
    # the cluster's registry, which the daemon trusts (its mirror's CA), under the namespace
    image = f"{REGISTRY}/{k.namespace}/hello:e2e"
    files = {
        **PROJECT,
        "codeship-steps.yml": PROJECT["codeship-steps.yml"].replace("$IMAGE", image),
    }
    credential = login(cluster, k.namespace)
    if credential is not None:  # the registry on token auth: the step logs in as its namespace
        user, password = credential
        files["codeship-services.yml"] += (
            f"  environment:\n    REGISTRY_USER: {user}\n    REGISTRY_PASSWORD: {password}\n"
        )
        files["codeship-steps.yml"] = files["codeship-steps.yml"].replace(
            "docker push",
            f'echo "$REGISTRY_PASSWORD" | docker login -u "$REGISTRY_USER" --password-stdin'
            f" {REGISTRY} && docker push",
        )
    project = write(tmp_path / "docker", files)
    output = ""
    for _ in range(3):
        # Another session's older CRD, applied meanwhile, prunes add_docker from the spec (at
        # the create, or as the operator reads it): then the pod has no daemon; run again.
        with crds.kept(k):
            done: subprocess.CompletedProcess[str] = shipway(
                k.namespace, "run", "--dir", str(project), "--branch", "main", timeout=600
            )
        output = done.stdout + done.stderr
        body = k.pipeline(created_name(output))
        first = body["status"]["steps"][0]
        pod = k.json("get", "pod", first["pod"]) if first.get("pod") else {"spec": {}}
        if pod["spec"].get("initContainers"):
            break
    else:
        raise AssertionError(f"another session's CRD kept pruning add_docker:\n{output}")
    assert done.returncode == 0, output
    assert body["status"]["phase"] == "Succeeded", output
    assert "(step: build and run) built and run inside the step" in output
    assert "compose web answers" in output
    assert re.search(r"\(step: push\) e2e: digest: sha256:[0-9a-f]{64}", output), output
    (daemon,) = pod["spec"]["initContainers"]
    assert daemon["securityContext"] == {"privileged": True}
    assert "--registry-mirror=https://registry.localkube-system.svc.cluster.local" in daemon["args"]
