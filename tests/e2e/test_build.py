"""`build:` services on the real cluster: BuildKit builds from the uploaded checkout, pushes to
the in-cluster registry, and the steps run the images by digest.

Projects are small Codeship directories made per test (``FROM busybox`` and ``FROM ruby:3.1``
come from the registry's docker.io mirror); ``shipway run --dir`` uploads and follows them,
as a user would. The session's operator finds the local builder and registry by itself.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from . import crds, gitserver
from .conftest import ROOT, OperatorProcess
from .kube import Cluster
from .pipelines import Kubectl
from .test_cli import created_name, shipway

pytestmark = pytest.mark.e2e

DIGEST_REF = re.compile(r"^registry\.localkube-system\.svc\.cluster\.local/.+@sha256:[0-9a-f]{64}$")


@pytest.fixture
def k(cluster: Cluster, namespace: str, shipway_operator: object) -> Kubectl:
    crds.apply(Kubectl(namespace))
    return Kubectl(namespace)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name.endswith(".sh"):
            path.chmod(0o755)
    return root


def run_dir(
    k: Kubectl, project: Path, *args: str, timeout: float = 600
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``shipway run --dir``, again when an older CRD (another session's) refused or pruned it."""
    for _ in range(4):
        with crds.kept(k):
            done = shipway(k.namespace, "run", "--dir", str(project), *args, timeout=timeout)
        output = done.stdout + done.stderr
        if "image builds are not supported yet" in output or "Extra inputs are not" in output:
            continue  # the API server had another session's CRD at that moment
        body = k.pipeline(created_name(output))
        if "source" in body["spec"] and (
            body["status"].get("phase") != "Succeeded" or "builds" in body["status"]
        ):
            return done, body
    raise AssertionError(f"another test session kept applying an older CRD:\n{output}")


def builds(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["service"]: b for b in body["status"].get("builds", [])}


def steps(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in body["status"]["steps"]}


def pod_images(k: Kubectl, pod: str) -> dict[str, str]:
    spec = k.json("get", "pod", pod)["spec"]
    return {c["name"]: c["image"] for c in spec.get("initContainers", []) + spec["containers"]}


# -- two services built in parallel, run by digest --------------------------------------------

PARALLEL = {
    "codeship-services.yml": """\
app:
  build:
    image: app
    context: app
  links:
    - db
db:
  build: ./db
""",
    "codeship-steps.yml": """\
- name: check
  service: app
  command: sh -c 'cat /built.txt; for i in $(seq 1 30); do wget -qO- http://db:8080/ && exit 0; sleep 1; done; exit 1'
""",
    "app/Dockerfile": "FROM busybox\nRUN sleep 3 && echo app > /built.txt\n",
    "db/Dockerfile": (
        "FROM busybox\nRUN sleep 3\nCOPY index.html /www/index.html\n"
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
    ),
    "db/index.html": "db answers\n",
}


def test_two_services_build_in_parallel_and_every_pod_runs_them_by_digest(
    k: Kubectl, tmp_path: Path
) -> None:
    done, body = run_dir(k, write(tmp_path / "parallel", PARALLEL), "--branch", "main")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert body["status"]["phase"] == "Succeeded"
    found = builds(body)
    assert set(found) == {"app", "db"}
    app, db = found["app"], found["db"]
    # started together, and each was running before the other had finished
    assert app["createdAt"] == db["createdAt"]
    assert app["startedAt"] < db["finishedAt"]
    assert db["startedAt"] < app["finishedAt"]
    # the step runs app's image and db's (a linked sidecar) by the digests the builds pushed
    images = pod_images(k, steps(body)["check"]["pod"])
    assert images["app"] == f"{app['image']}@{app['digest']}"
    assert images["db"] == f"{db['image']}@{db['digest']}"
    assert DIGEST_REF.match(images["app"])
    assert f"/{k.namespace}/" in app["image"]  # named by namespace and pipeline: no collision
    assert "(step: check) app" in output
    assert "(step: check) db answers" in output
    assert "(build: app) " in output
    assert "(build: db) " in output
    events = [e["reason"] for e in k.events(body["metadata"]["name"])]
    assert events.count("BuildSucceeded") == 2
    # the builds' copy of the builder's certificate is gone once they ended
    secrets_left = k.json(
        "get", "secrets", "-l", f"shipway.dev/pipeline={body['metadata']['name']}"
    )
    assert secrets_left["items"] == []


# -- build args: Codeship's templates, rendered from the pipeline's CI values -----------------

ARGS = {
    "codeship-services.yml": """\
app:
  build:
    image: app
    args:
      CI: "{{.Ci}}"
      BRANCH: "{{ .Branch }}"
""",
    "codeship-steps.yml": """\
- name: show
  service: app
  command: cat /args
""",
    "Dockerfile": 'FROM busybox\nARG CI\nARG BRANCH\nRUN echo "$CI $BRANCH" > /args\n',
}


def test_build_args_render_codeships_templates_into_the_image(k: Kubectl, tmp_path: Path) -> None:
    done, body = run_dir(k, write(tmp_path / "args", ARGS), "--branch", "feature/args")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert body["status"]["phase"] == "Succeeded", output
    assert body["spec"]["ci"]["branch"] == "feature/args"
    assert "(step: show) true feature/args" in output
    pod = k.json("get", "pod", builds(body)["app"]["pod"])
    flags = pod["spec"]["containers"][0]["args"]
    assert "build-arg:CI=true" in flags
    assert "build-arg:BRANCH=feature/args" in flags


# -- a Dockerfile HEALTHCHECK gates the steps that depend on the service (Codeship's example 24)

HEALTH = {
    "codeship-services.yml": """\
web:
  build: ./web
app:
  image: busybox
  depends_on:
    - web
""",
    "codeship-steps.yml": """\
- name: ask
  service: app
  command: wget -qO- http://web:8080/
""",
    "web/Dockerfile": (
        "FROM busybox\nCOPY index.html /www/index.html\n"
        "HEALTHCHECK --interval=1s --timeout=2s --retries=60 "
        "CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1\n"
        'CMD ["sh", "-c", "sleep 6; exec httpd -f -p 8080 -h /www"]\n'
    ),
    "web/index.html": "web is up\n",
}


def test_a_dockerfile_healthcheck_holds_the_dependent_step_until_healthy(
    k: Kubectl, tmp_path: Path
) -> None:
    """No retry loop in the step: it asks once, and passes only because it starts after the
    service's own HEALTHCHECK (which fails for its first 6 s) succeeded."""
    done, body = run_dir(k, write(tmp_path / "health", HEALTH), "--branch", "main")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert body["status"]["phase"] == "Succeeded", output
    assert "(step: ask) web is up" in output
    web = builds(body)["web"]
    assert web["healthcheck"] == {
        "test": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"],
        "interval": 1.0,
        "timeout": 2.0,
        "retries": 60,
    }
    # the build pod read the image after building it; the step's pod gated on it
    build_pod = k.json("get", "pod", web["pod"])
    assert [c["name"] for c in build_pod["spec"]["initContainers"]] == ["build"]
    assert [c["name"] for c in build_pod["spec"]["containers"]] == ["inspect"]
    ran = {
        c["name"]: c["state"]["terminated"]
        for c in build_pod["status"]["initContainerStatuses"]
        + build_pod["status"]["containerStatuses"]
    }
    print(  # the figure docs/builds.md quotes: what reading the image adds to a build
        "\nhealthcheck: build container "
        f"{seconds_between(ran['build']['startedAt'], ran['build']['finishedAt']):.0f} s, "
        "inspect container "
        f"{seconds_between(ran['build']['finishedAt'], ran['inspect']['finishedAt']):.0f} s "
        "from the build's end to its own"
    )
    pod = k.json("get", "pod", steps(body)["ask"]["pod"])
    (sidecar,) = pod["spec"]["initContainers"]
    assert sidecar["startupProbe"]["exec"]["command"][-1].startswith("wget -q -O /dev/null")
    assert sidecar["startupProbe"]["periodSeconds"] == 1
    started = {
        c["name"]: next(iter(c["state"].values()))["startedAt"]
        for c in pod["status"]["initContainerStatuses"] + pod["status"]["containerStatuses"]
    }
    waited = seconds_between(started["web"], started["app"])
    assert waited >= 5, f"the step started {waited} s after its service: {started}"


def seconds_between(first: str, then: str) -> float:
    from datetime import datetime

    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (parse(then) - parse(first)).total_seconds()


# -- failures ---------------------------------------------------------------------------------

FAILING_STEPS = """\
- type: parallel
  steps:
    - name: test
      service: app
      command: "true"
    - name: lint
      service: tool
      command: sh -c 'sleep 5; echo linted'
- name: after
  service: tool
  command: "true"
"""


def failing_project(root: Path, dockerfile: str | None, name: str = "Dockerfile") -> Path:
    files = {
        "codeship-services.yml": (
            f"app:\n  build:\n    dockerfile: {name}\ntool:\n  image: busybox\n"
        ),
        "codeship-steps.yml": FAILING_STEPS,
    }
    if dockerfile is not None:
        files[name] = dockerfile
    return write(root, files)


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        (
            "FROM busybox\nCOPPY x /x\n",
            "dockerfile parse error on line 2: unknown instruction: COPPY",
        ),
        (None, "failed to read dockerfile: open Dockerfile"),
        (
            "FROM shipway-no-such-image:1\nRUN true\n",
            "failed to resolve source metadata for docker.io/library/shipway-no-such-image:1",
        ),
        (
            "FROM busybox\nRUN echo about to fail && false\n",
            'process "/bin/sh -c echo about to fail && false" did not complete successfully: '
            "exit code: 1",
        ),
    ],
    ids=["syntax-error", "missing-dockerfile", "base-image-missing", "failing-run"],
)
def test_a_failed_build_fails_its_step_with_buildkits_lines_and_siblings_finish(
    k: Kubectl, tmp_path: Path, dockerfile: str | None, expected: str
) -> None:
    done, body = run_dir(k, failing_project(tmp_path / "p", dockerfile))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert body["status"]["phase"] == "Failed"
    app = builds(body)["app"]
    assert (app["phase"], app["reason"]) == ("Failed", "BuildFailed")
    assert expected in app["message"]  # BuildKit's own lines, in the status
    if dockerfile and "about to fail" in dockerfile:
        assert "about to fail" in app["message"]  # the failing RUN's output
        assert ">>> RUN echo about to fail" in app["message"]  # and the Dockerfile excerpt
    found = steps(body)
    assert found["test"]["phase"] == "Failed"
    assert found["test"]["reason"] == "BuildFailed"
    assert "pod" not in found["test"]  # no pod ever ran an image that was not built
    assert found["lint"]["phase"] == "Succeeded"  # its parallel sibling finished
    assert (found["after"]["phase"], found["after"]["reason"]) == ("Skipped", "PreviousStepFailed")
    assert expected in output  # `shipway run` showed the build's log
    reasons = [e["reason"] for e in k.events(body["metadata"]["name"])]
    assert "BuildFailed" in reasons


def test_a_context_outside_the_checkout_is_refused_before_anything_runs(
    k: Kubectl, tmp_path: Path
) -> None:
    project = write(
        tmp_path / "p",
        {
            "codeship-services.yml": "app:\n  build:\n    context: ../outside\n",
            "codeship-steps.yml": '- service: app\n  command: "true"\n',
        },
    )
    crds.apply(k)
    done = shipway(k.namespace, "run", "--dir", str(project))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "app.build.context: '../outside': the build context is outside the checkout" in (
        done.stderr
    )
    assert k.json("get", "pipelines")["items"] == []
    # the same Pipeline applied with kubectl: the session operator's admission webhook refuses
    # it with validate's line (without the webhook the operator would fail it the same way)
    manifest = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "outside"},
        "spec": {
            "source": {"upload": {}},
            "services": {"app": {"build": {"context": "../outside"}}},
            "steps": [{"service": "app", "command": "true"}],
        },
    }
    field = "spec.services.app.build.context: '../outside': the build context is outside"
    created = None
    for _ in range(3):
        crds.apply(k)
        created = k.run("apply", "-f", "-", stdin=json.dumps(manifest), check=False)
        if created.returncode == 0 or field in created.stderr:
            break  # else another session's CRD refused build: ours again, then retry
    assert created is not None
    if created.returncode == 0:  # admitted (no webhook in the way): the operator fails it
        body = k.wait_for("outside")
        assert body["status"]["phase"] == "Failed"
        assert field in body["status"]["message"]
    else:
        assert "admission webhook" in created.stderr, created.stderr
        assert field in created.stderr
        assert k.json("get", "pipelines")["items"] == []
    assert k.json("get", "pods")["items"] == []


# -- the builder unreachable ------------------------------------------------------------------


@pytest.fixture
def lonely_namespace(cluster: Cluster) -> Any:
    """A namespace outside the session's prefix, for an operator of its own."""
    name = f"build-unreachable-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.run("delete", "namespace", name, "--wait=false", check=False)


def test_an_unreachable_builder_fails_the_build_after_a_bounded_wait_naming_it(
    cluster: Cluster, lonely_namespace: str, tmp_path: Path
) -> None:
    nowhere = "tcp://shipway-buildkitd-nowhere.shipway-buildkit.svc:1234"
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "hack")]),
        "SHIPWAY_BUILDKIT_ADDR": nowhere,
        "SHIPWAY_BUILDKIT_CLIENT_SECRET": "shipway-buildkit-client",
        "SHIPWAY_NAMESPACE": "shipway-system",
        "SHIPWAY_REGISTRY_URL": "registry.localkube-system.svc.cluster.local",
        "SHIPWAY_BUILDKIT_CLIENT_IMAGE": "localkube.shipway.dev/buildctl:v0.34.2",
        "SHIPWAY_BUILDKIT_WAIT": "10s",
    }
    operator = OperatorProcess(
        [sys.executable, "-m", "shipway", "operator", "-n", lonely_namespace],
        env,
        tmp_path / "operator.log",
    )
    operator.start()
    try:
        k = Kubectl(lonely_namespace)
        began = time.monotonic()
        _, body = run_dir(k, failing_project(tmp_path / "p", "FROM busybox\n"))
        took = time.monotonic() - began
    finally:
        operator.stop()
    app = builds(body)["app"]
    assert app["phase"] == "Failed"
    assert f"the builder (buildkitd at {nowhere}) is unreachable" in app["message"]
    assert "gave up waiting for the builder after 10s" in app["message"]
    assert f"buildkitd at {nowhere}" in steps(body)["test"]["message"]
    assert took < 120, f"the pipeline took {took:.0f}s"


# -- caching ------------------------------------------------------------------------------------

CACHED = {
    "codeship-services.yml": """\
app:
  build: .
  cached: true
  default_cache_branch: main
""",
    "codeship-steps.yml": "- name: show\n  service: app\n  command: cat /app/one.txt /app/two.txt\n",
    "Dockerfile": (
        "FROM busybox\n"
        "RUN echo prepared > /prepared.txt\n"
        "COPY one.txt /app/one.txt\n"
        "RUN cp /app/one.txt /app/one.copy\n"
        "COPY two.txt /app/two.txt\n"
        "RUN cp /app/two.txt /app/two.copy\n"
    ),
    "one.txt": "one\n",
    "two.txt": "two\n",
}


def cached_lines(output: str) -> list[str]:
    """BuildKit's step names of the steps it served from the cache (``#N CACHED``)."""
    names: dict[str, str] = {}
    cached: list[str] = []
    for line in output.splitlines():
        match = re.match(r"^\(build: app\) (#\d+) (.*)$", line)
        if not match:
            continue
        number, rest = match.groups()
        if rest.startswith("[") and number not in names:
            names[number] = rest
        elif rest == "CACHED" and number in names:
            cached.append(names[number])
    return cached


def test_cached_builds_reuse_the_projects_layers_and_rebuild_from_a_changed_copy(
    k: Kubectl, tmp_path: Path
) -> None:
    key = f"cache-{secrets.token_hex(3)}"  # this test's own project and layers: a cold start
    files = dict(CACHED)
    files["Dockerfile"] = files["Dockerfile"].replace("prepared", f"prepared for {key}")
    project = write(tmp_path / "cached", files)
    first, body = run_dir(k, project, "--branch", "main", "--name", key)
    assert first.returncode == 0, first.stdout + first.stderr
    assert builds(body)["app"]["cachedSteps"] == 0
    # an unchanged context costs no rebuild: every step is CACHED
    second, body = run_dir(k, project, "--branch", "main", "--name", key)
    assert second.returncode == 0, second.stdout + second.stderr
    app = builds(body)["app"]
    assert app["cachedSteps"] == app["totalSteps"] == 5  # FROM is resolved, not CACHED
    assert len(cached_lines(second.stdout)) == 5
    # one file changed: the steps before its COPY are CACHED, from the COPY on they run
    (project / "two.txt").write_text("two, changed\n")
    third, body = run_dir(k, project, "--branch", "feature/x", "--name", key)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "two, changed" in third.stdout
    names = cached_lines(third.stdout)
    assert len(names) == 3, names  # RUN, COPY one.txt, RUN cp one (from main's cache)
    assert not any("two.txt" in n for n in names)
    assert builds(body)["app"]["cachedSteps"] == 3


# -- the seed walkthrough ------------------------------------------------------------------------

SEED = ROOT / "examples" / "seed-walkthrough"


def check_seed(body: dict[str, Any], output: str) -> None:
    assert body["status"]["phase"] == "Succeeded", output
    assert set(builds(body)) == {"demo", "volumes_test"}
    found = steps(body)
    assert [found[n]["phase"] for n in ("services", "write artifact", "check artifact")] == [
        "Succeeded"
    ] * 3
    assert "(step: services) 2 examples, 0 failures" in output
    assert "(step: write artifact) wrote /app/artifact.txt: artifact of build" in output
    assert "(step: check artifact) 2 examples, 0 failures" in output


def test_the_seed_walkthrough_runs_green_from_its_directory(k: Kubectl) -> None:
    done, body = run_dir(k, SEED, "--branch", "main")
    check_seed(body, done.stdout + done.stderr)


def test_the_seed_walkthrough_runs_green_from_the_git_server(
    k: Kubectl, tmp_path: Path, git_server: tuple[gitserver.GitServer, dict[str, Any]]
) -> None:
    server, _ = git_server  # the source tests' git server, in the cluster
    files: dict[str, str | bytes | None] = {
        str(path.relative_to(SEED)): path.read_bytes() for path in SEED.rglob("*") if path.is_file()
    }
    name = f"seed-{secrets.token_hex(3)}"
    repo = gitserver.make_repo(tmp_path, name, [files])  # *.sh committed executable
    server.publish(repo)
    work = repo.bare.parent / f"{name}-work"
    done, body = run_dir(k, work, "--git-url", server.http(name), "--revision", "main")
    check_seed(body, done.stdout + done.stderr)
    assert body["spec"]["source"]["git"]["url"] == server.http(name)
    assert body["status"]["source"]["commit"] == repo.commits["c1"]
