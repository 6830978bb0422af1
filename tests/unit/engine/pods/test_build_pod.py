"""The build pod: its manifest, and its script run for real against buildctl's recorded output.

The script runs under /bin/sh with a fake ``buildctl-shipway`` on PATH that prints what the
real buildctl v0.34.2 printed for the same build (tests/unit/fixtures/buildctl, recorded from
buildkitd against a local registry) and writes the metadata file as buildctl does.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipway.compiler.builds import ResolvedBuild
from shipway.compiler.templates import literal
from shipway.engine.intents import BuildToCreate
from shipway.engine.objects import PipelineRef
from shipway.engine.plan.builds.result import parse_result
from shipway.engine.pods.build import (
    SCRIPT,
    build_pod,
    buildctl_args,
    client_secret_manifest,
)
from shipway.engine.pods.frame import PodFrame
from shipway.engine.settings import BuildConfig

FIXTURES = Path(__file__).parents[2] / "fixtures" / "buildctl"
DIGEST = "sha256:" + "ab" * 32
FAKE = r"""#!/bin/sh
# Replays a recorded buildctl build: the arguments go to args.txt, the output to stdout.
printf '%s\n' "$@" > "$FAKE_DIR/args.txt"
env > "$FAKE_DIR/env.txt"
meta=
while [ $# -gt 0 ]; do [ "$1" = --metadata-file ] && meta=$2; shift; done
cat "$FAKE_LOG"
if [ "$FAKE_RC" = 0 ]; then
  printf '{\n  "containerimage.digest": "%s",\n  "image.name": "r/x"\n}\n' "$FAKE_DIGEST" > "$meta"
fi
exit "$FAKE_RC"
"""


def _run(
    tmp_path: Path, fixture: str, rc: int, *, dockerfile: str = "app/Dockerfile", **env: str
) -> tuple[int, str, Path]:
    ws = tmp_path / "ws"
    (ws / "app").mkdir(parents=True, exist_ok=True)
    (ws / "app" / "Dockerfile").write_text("FROM scratch\n")
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "buildctl-shipway").write_text(FAKE)
    (fake / "buildctl-shipway").chmod(0o755)
    term = tmp_path / "termination-log"
    term.write_text("")
    result = subprocess.run(
        ["/bin/sh", "-c", SCRIPT, "shipway-build", "--progress=plain"],
        env={
            "PATH": f"{fake}:{os.environ['PATH']}",
            "SHIPWAY_WORKSPACE": str(ws),
            "SHIPWAY_TERMINATION_LOG": str(term),
            "TMPDIR": str(tmp_path),
            "SHIPWAY_CONTEXT": "app",
            "SHIPWAY_DOCKERFILE": dockerfile,
            "SHIPWAY_SECRET_PREFIX": "SHIPWAY_SECRET_ARG_",
            "FAKE_DIR": str(tmp_path),
            "FAKE_LOG": str(FIXTURES / f"{fixture}.log"),
            "FAKE_RC": str(rc),
            "FAKE_DIGEST": DIGEST,
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, term.read_text(), ws


@pytest.mark.parametrize(
    ("fixture", "cached", "steps"),
    [
        ("cold", 0, 4),
        ("unchanged", 4, 4),
        ("one-file-changed", 2, 4),
        ("unchanged-from-busybox", 3, 3),  # FROM is resolved, never CACHED: not a step here
    ],
)
def test_a_pushed_build_reports_its_digest_and_cached_steps(
    tmp_path: Path, fixture: str, cached: int, steps: int
) -> None:
    rc, message, _ = _run(tmp_path, fixture, 0)
    assert rc == 0
    result = parse_result(message, succeeded=True)
    assert (result.digest, result.cached_steps, result.total_steps) == (DIGEST, cached, steps)


def test_the_script_hands_buildctl_the_real_paths_and_secret_ids(tmp_path: Path) -> None:
    rc, _, ws = _run(tmp_path, "cold", 0, SHIPWAY_SECRET_ARG_TOKEN="s3cret")
    assert rc == 0
    args = (tmp_path / "args.txt").read_text().splitlines()
    assert args[0] == "build"
    real = ws.resolve()
    assert f"context={real}/app" in args
    assert f"dockerfile={real}/app" in args
    assert "filename=Dockerfile" in args
    assert "id=TOKEN,env=SHIPWAY_SECRET_ARG_TOKEN" in args
    assert not any("s3cret" in a for a in args)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("failing-run", 'process "/bin/sh -c echo about to fail && false" did not complete'),
        ("syntax-error", "dockerfile parse error on line 2: unknown instruction: COPPY"),
        ("missing-base-image", "127.0.0.1:5999/library/nosuch:1: not found"),
        ("missing-dockerfile", "failed to read dockerfile: open Dockerfile.none"),
    ],
)
def test_a_failed_build_reports_buildkits_own_lines(
    tmp_path: Path, fixture: str, expected: str
) -> None:
    rc, message, _ = _run(tmp_path, fixture, 1)
    assert rc == 1
    result = parse_result(message, succeeded=False)
    assert result.message is not None
    assert expected in result.message
    assert result.message.splitlines()[-1].startswith("error: failed to solve")


def test_a_missing_cache_is_no_error_line(tmp_path: Path) -> None:
    """The first build of a branch finds no cache to import: BuildKit notes it, we drop it."""
    rc, message, _ = _run(tmp_path, "failing-run", 1)
    assert "importing cache manifest" in (FIXTURES / "failing-run.log").read_text()
    assert rc == 1
    assert "importing cache manifest" not in message
    assert message.startswith("------\n > [2/2] RUN echo about to fail")


def test_a_missing_dockerfile_reaches_buildkit_but_a_missing_context_does_not(
    tmp_path: Path,
) -> None:
    rc, message, _ = _run(tmp_path, "missing-dockerfile", 1, dockerfile="app/Dockerfile.none")
    assert rc == 1
    assert "failed to read dockerfile" in message
    assert "filename=Dockerfile.none" in (tmp_path / "args.txt").read_text()
    (tmp_path / "args.txt").unlink()
    rc, message, _ = _run(tmp_path, "cold", 0, SHIPWAY_CONTEXT="nowhere")
    assert rc == 2
    assert message.strip() == "the build context nowhere is not a folder of the checkout"
    assert not (tmp_path / "args.txt").exists()


@pytest.mark.parametrize("what", ["context", "dockerfile", "dockerfile-folder"])
def test_symlinks_cannot_send_the_pods_own_files_to_the_builder(tmp_path: Path, what: str) -> None:
    outside = tmp_path / "secrets"
    outside.mkdir()
    (outside / "tls.key").write_text("KEY")
    ws = tmp_path / "ws" / "app"
    ws.mkdir(parents=True)
    if what == "context":
        (ws / "evil").symlink_to(outside)
        env = {"SHIPWAY_CONTEXT": "app/evil"}
    elif what == "dockerfile":
        (ws / "Dockerfile.evil").symlink_to(outside / "tls.key")
        env = {"SHIPWAY_DOCKERFILE": "app/Dockerfile.evil"}
    else:
        (ws / "df").symlink_to(outside)
        env = {"SHIPWAY_DOCKERFILE": "app/df/tls.key"}
    rc, message, _ = _run(tmp_path, "cold", 0, **env)
    assert rc == 2
    assert "leads outside the checkout" in message
    assert not (tmp_path / "args.txt").exists()


BUILD = ResolvedBuild(
    service="demo",
    context=".",
    dockerfile_dir=".",
    dockerfile_name="Dockerfile",
    args=(("RUBY", literal("3.1")),),
    secret_sources=("npm",),
    target="test",
    cached=True,
)
CONFIG = BuildConfig(
    registry="registry.local:5000",
    builder="tcp://buildkitd.shipway-buildkit.svc:1234",
    client_secret="shipway-buildkit-client",
    client_image="localkube.shipway.dev/buildctl:v0.34.2",
    namespace="shipway-system",
)
CREATE = BuildToCreate(
    service="demo",
    name="seed-abcde-build-demo",
    repository="registry.local:5000/ci/seed-1234abcd/demo",
    cache_repository="registry.local:5000/ci/cache/seed/demo",
    cache_tags=("main", "master"),
    active_deadline=3600,
    args=(("RUBY", "3.1"),),
)


def _manifest(config: BuildConfig = CONFIG) -> dict[str, Any]:
    frame = PodFrame(
        PipelineRef("seed", "ci", "u"), claim="seed-workspace", node_selector={"pool": "ci"}
    )
    return build_pod(BUILD, CREATE, config, frame, secret="seed-abcde-build")


def test_buildctl_pushes_to_the_pipelines_name_and_caches_per_branch() -> None:
    args = buildctl_args(BUILD, CREATE)
    assert "type=image,name=registry.local:5000/ci/seed-1234abcd/demo,push=true" in args
    assert args[args.index("--opt") + 1] == "build-arg:RUBY=3.1"
    assert "target=test" in args
    imports = [args[i + 1] for i, a in enumerate(args) if a == "--import-cache"]
    assert imports == [
        "type=registry,ref=registry.local:5000/ci/cache/seed/demo:main",
        "type=registry,ref=registry.local:5000/ci/cache/seed/demo:master",
    ]
    assert args[args.index("--export-cache") + 1].endswith("demo:main,mode=max")
    assert "--no-cache" not in args
    uncached = buildctl_args(BUILD, BuildToCreate("demo", "n", "r/x"))
    assert "--no-cache" in uncached
    assert "--export-cache" not in uncached


def test_an_insecure_registry_is_pushed_to_and_cached_in_as_such() -> None:
    args = buildctl_args(BUILD, CREATE, insecure_registry=True)
    registry = [args[i + 1] for i, a in enumerate(args) if a in ("--output", "--import-cache")]
    registry.append(args[args.index("--export-cache") + 1])
    assert len(registry) == 4
    assert all(ref.endswith(",registry.insecure=true") for ref in registry)
    assert not any("insecure" in a for a in buildctl_args(BUILD, CREATE))


def test_the_build_pod_has_no_token_reads_the_claim_read_only_and_runs_unprivileged() -> None:
    pod = _manifest()
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["nodeSelector"] == {"pool": "ci"}
    assert "tolerations" not in spec
    (container,) = spec["containers"]
    assert container["image"] == "localkube.shipway.dev/buildctl:v0.34.2"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/workspace"]["readOnly"] is True
    claim = next(v for v in spec["volumes"] if v["name"] == "workspace")
    assert claim["persistentVolumeClaim"] == {"claimName": "seed-workspace", "readOnly": True}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BUILDKIT_HOST"] == CONFIG.builder
    assert "DOCKER_CONFIG" not in env
    assert container["envFrom"] == [{"prefix": "SHIPWAY_SECRET_ARG_", "secretRef": {"name": "npm"}}]
    labels = pod["metadata"]["labels"]
    assert labels["shipway.dev/step"] == "build-demo"
    assert labels["shipway.dev/build"] == "demo"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_push_credentials_are_mounted_as_a_docker_config_only_when_configured() -> None:
    from dataclasses import replace

    pod = _manifest(replace(CONFIG, push_secret="registry-push"))
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DOCKER_CONFIG"] == "/run/secrets/registry"
    registry = next(v for v in pod["spec"]["volumes"] if v["name"] == "registry")
    assert registry["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]


def test_the_per_pipeline_secret_copies_the_certificate_and_is_owned_by_the_pipeline() -> None:
    owner = {"kind": "Pipeline", "name": "seed", "uid": "u"}
    secret = client_secret_manifest(
        "seed-abcde-build",
        "ci",
        owner,
        "seed",
        client={"ca.crt": "Q0E=", "tls.crt": "Q1JU", "tls.key": "S0VZ", "extra": "eA=="},
        docker_config=None,
    )
    assert secret["data"] == {"ca.crt": "Q0E=", "tls.crt": "Q1JU", "tls.key": "S0VZ"}
    assert secret["metadata"]["ownerReferences"] == [owner]


def test_config_names_what_is_missing() -> None:
    assert CONFIG.problem() is None
    problem = BuildConfig(builder="tcp://b:1234").problem()
    assert problem is not None
    assert "registry" in problem
    assert "client certificate" in problem
    assert "a builder" not in problem


def test_a_success_without_a_digest_is_no_success() -> None:
    assert parse_result('{"digest":"sha256:nothex"}', succeeded=True).digest is None
    assert parse_result("garbage", succeeded=True).message is not None
    assert json.loads(json.dumps({"digest": DIGEST}))  # the shape the script writes
    assert parse_result(json.dumps({"digest": DIGEST}), succeeded=True).digest == DIGEST


def test_the_gist_of_a_failure_is_buildkits_error_line_not_a_wrappers_note() -> None:
    from shipway.engine.plan.builds.result import summary

    message = (
        "------\n > [internal] load metadata for docker.io/library/ruby:3.1:\n------\n"
        "error: failed to solve: ruby:3.1: failed to resolve source metadata\n"
        "shipway-build: lost the builder (buildkitd at tcp://b:1234) during the build\n"
    )
    assert summary(message) == "error: failed to solve: ruby:3.1: failed to resolve source metadata"
    assert summary("the build context x is not a folder of the checkout\n") == (
        "the build context x is not a folder of the checkout"
    )
    assert summary(None) == ""
    unreachable = (
        "error: dial tcp: lookup buildkitd.nowhere.svc on 10.96.0.10:53: no such host\n"
        "shipway-build: the builder (buildkitd at tcp://buildkitd.nowhere.svc:1234) is unreachable\n"
        "shipway-build: gave up waiting for the builder after 10s\n"
    )
    assert summary(unreachable) == (
        "shipway-build: the builder (buildkitd at tcp://buildkitd.nowhere.svc:1234) is unreachable"
    )
