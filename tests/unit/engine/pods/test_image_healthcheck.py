"""A built image's HEALTHCHECK: read from its configuration, kept, and gating linked services.

The inspect script runs for real under busybox's sh and awk (what crane's debug image has),
with a fake ``crane`` printing an image configuration shaped as BuildKit writes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipway.compiler.builds import ResolvedBuild
from shipway.engine.intents import BuildToCreate
from shipway.engine.objects import PipelineRef
from shipway.engine.pods import build as build_pods
from shipway.engine.pods.containers import probe
from shipway.engine.pods.frame import PodFrame
from shipway.engine.pods.imageconfig import SCRIPT
from shipway.engine.pods.manifests import pod_manifest
from shipway.engine.settings import BuildConfig, PushConfig
from shipway.engine.termination import as_healthcheck, parse_inspect
from shipway.models import ImageHealthcheck, StepPhase
from tests.unit.builders import REF, at, compiled
from tests.unit.engine.plan.test_planner_builds import DIGEST as BUILT
from tests.unit.engine.plan.test_planner_builds import GIT, build_pod, ok, run

DIGEST = "sha256:" + "cd" * 32
HEALTHCHECK: dict[str, Any] = {
    "Test": ["CMD-SHELL", 'curl -f "http://localhost:9200/{x}" || exit 1'],
    "Interval": 30_000_000_000,
    "Timeout": 10_000_000_000,
    "StartPeriod": 30_000_000_000,
    "Retries": 5,
}


def image_config(healthcheck: dict[str, Any] | None) -> dict[str, Any]:
    """A configuration as BuildKit writes it, with traps: the history and a label mention
    ``"Healthcheck":{`` inside strings, and an object of that name outside ``config``."""
    config: dict[str, Any] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "Labels": {"trap": '{"Healthcheck":{"Test":["CMD","false"]}}'},
        "WorkingDir": "/",
        "OnBuild": None,
    }
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck
    return {
        "architecture": "amd64",
        "Healthcheck": {"Test": ["CMD", "not-this-one"]},
        "config": config,
        "created": "2026-11-29T05:00:00Z",
        "history": [
            {"created_by": "localkube.images"},
            {
                "created_by": 'HEALTHCHECK &{["CMD" "x"] "30s" "10s" "30s" "0s" \'\\x00\'}',
                "comment": "buildkit.dockerfile.v0",
                "empty_layer": True,
            },
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "00" * 32]},
    }


FAKE_CRANE = r"""#!/bin/sh
echo "$@" > "$FAKE_DIR/crane-args"
[ "$FAKE_RC" = 0 ] || { echo "Error: GET https://r/v2/x/manifests/y: UNAUTHORIZED" >&2; exit 1; }
cat "$FAKE_DIR/image-config.json"
"""


def _busybox_path(tmp_path: Path) -> str:
    """A PATH whose sh and awk are busybox's (crane's debug image), else the host's."""
    busybox = shutil.which("busybox")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "crane").write_text(FAKE_CRANE)
    (bin_dir / "crane").chmod(0o755)
    if busybox:
        for applet in ("sh", "awk", "sed", "tail", "cat"):
            (bin_dir / applet).symlink_to(busybox)
    return f"{bin_dir}:{os.environ['PATH']}"


def run_inspect(
    tmp_path: Path,
    config: dict[str, Any] | str,
    *,
    rc: int = 0,
    digest: str = DIGEST,
    **env: str,
) -> tuple[int, str, str]:
    text = config if isinstance(config, str) else json.dumps(config, separators=(",", ":"))
    (tmp_path / "image-config.json").write_text(text)
    (tmp_path / "digest").write_text(digest + "\n" if digest else "")
    term = tmp_path / "termination-log"
    term.write_text("")
    path = _busybox_path(tmp_path)
    result = subprocess.run(
        ["sh", "-c", SCRIPT, "shipway-inspect"],
        env={
            "PATH": path,
            "SHIPWAY_TERMINATION_LOG": str(term),
            "TMPDIR": str(tmp_path),
            "SHIPWAY_DIGEST_FILE": str(tmp_path / "digest"),
            "SHIPWAY_REPOSITORY": "registry.example/ns/app",
            "FAKE_DIR": str(tmp_path),
            "FAKE_RC": str(rc),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    args = tmp_path / "crane-args"
    return result.returncode, term.read_text(), args.read_text() if args.exists() else ""


def test_the_script_reports_exactly_the_configs_healthcheck(tmp_path: Path) -> None:
    rc, message, args = run_inspect(tmp_path, image_config(HEALTHCHECK))
    assert rc == 0
    assert args.split() == ["config", f"registry.example/ns/app@{DIGEST}"]
    assert json.loads(message) == {"healthcheck": HEALTHCHECK}
    check, problem = parse_inspect(message)
    assert problem is None
    assert check == ImageHealthcheck(
        test=HEALTHCHECK["Test"], interval=30.0, timeout=10.0, start_period=30.0, retries=5
    )


def test_an_insecure_registry_is_read_with_cranes_insecure_flag(tmp_path: Path) -> None:
    rc, message, args = run_inspect(
        tmp_path, image_config(HEALTHCHECK), SHIPWAY_CRANE_INSECURE="true"
    )
    assert rc == 0
    assert args.split() == ["config", "--insecure", f"registry.example/ns/app@{DIGEST}"]
    assert json.loads(message) == {"healthcheck": HEALTHCHECK}


def test_an_image_without_healthcheck_reports_none(tmp_path: Path) -> None:
    rc, message, _ = run_inspect(tmp_path, image_config(None))
    assert rc == 0
    assert json.loads(message) == {"healthcheck": None}
    assert parse_inspect(message) == (None, None)


def test_healthcheck_none_turns_the_gate_off(tmp_path: Path) -> None:
    _, message, _ = run_inspect(tmp_path, image_config({"Test": ["NONE"]}))
    assert parse_inspect(message) == (None, None)


@pytest.mark.parametrize(
    ("rc", "digest", "expected"),
    [
        (1, DIGEST, "UNAUTHORIZED"),
        (0, "", "the build wrote no digest"),
    ],
)
def test_failures_name_the_cause(tmp_path: Path, rc: int, digest: str, expected: str) -> None:
    code, message, _ = run_inspect(tmp_path, image_config(HEALTHCHECK), rc=rc, digest=digest)
    assert code == 1
    assert expected in message
    check, problem = parse_inspect(message)
    assert check is None
    assert problem is not None
    assert expected in problem


def test_a_command_too_long_to_keep_is_a_problem_not_a_silent_drop() -> None:
    message = json.dumps({"healthcheck": {"Test": ["CMD", "x" * 2000]}})
    check, problem = parse_inspect(message)
    assert check is None
    assert problem is not None
    assert "at most 1024" in problem


def test_docker_defaults_become_shipways_defaults_in_the_probe() -> None:
    """Zero durations are Docker's defaults: the probe takes Shipway's (2 s, 5 s, 30)."""
    check, _ = parse_inspect(json.dumps({"healthcheck": {"Test": ["CMD", "ready"]}}))
    assert check is not None
    assert probe(as_healthcheck(check)) == {
        "exec": {"command": ["ready"]},
        "periodSeconds": 2,
        "timeoutSeconds": 5,
        "failureThreshold": 30,
    }


def test_the_images_timing_makes_the_probe() -> None:
    check, _ = parse_inspect(json.dumps({"healthcheck": HEALTHCHECK}))
    assert check is not None
    assert probe(as_healthcheck(check)) == {
        "exec": {"command": ["/bin/sh", "-c", HEALTHCHECK["Test"][1]]},
        "periodSeconds": 30,
        "timeoutSeconds": 10,
        "failureThreshold": 5 + 1,  # start period 30 s = one more period of grace
    }
    half, _ = parse_inspect(
        json.dumps({"healthcheck": {"Test": ["CMD", "x"], "Interval": 500_000_000}})
    )
    assert half is not None
    assert as_healthcheck(half).interval == "500ms"


BUILD = ResolvedBuild(
    service="app", context=".", dockerfile_dir=".", dockerfile_name="Dockerfile", image_name="app"
)
CONFIG = BuildConfig(
    registry="registry.example",
    builder="tcp://buildkitd:1234",
    client_secret="bk",
    client_image="client:1",
    push_secret="creds",
)


def manifest(inspect: bool) -> dict[str, Any]:
    create = BuildToCreate(
        service="app", name="p-app", repository="registry.example/ns/app", inspect=inspect
    )
    return build_pods.build_pod(
        BUILD,
        create,
        CONFIG,
        PodFrame(PipelineRef("p", "ns", "u"), claim="c"),
        secret="s",
        inspect=PushConfig(image="crane:debug", ca_config_map="kube-root-ca.crt"),
    )


def test_the_inspect_container_runs_after_the_build_and_shares_only_the_digest() -> None:
    spec = manifest(True)["spec"]
    (build,) = spec["initContainers"]
    (inspect,) = spec["containers"]
    assert build["name"] == "build"
    assert "restartPolicy" not in build
    assert inspect["name"] == "inspect"
    assert inspect["image"] == "crane:debug"
    build_env = {e["name"]: e["value"] for e in build["env"]}
    inspect_env = {e["name"]: e["value"] for e in inspect["env"]}
    assert build_env["SHIPWAY_DIGEST_FILE"] == inspect_env["SHIPWAY_DIGEST_FILE"]
    assert inspect_env["SHIPWAY_REPOSITORY"] == "registry.example/ns/app"
    assert inspect_env["DOCKER_CONFIG"] == build_env["DOCKER_CONFIG"]  # the registry's creds
    assert inspect_env["SSL_CERT_DIR"].startswith("/etc/shipway/registry-ca")
    mounts = {m["name"]: m for m in inspect["volumeMounts"]}
    assert mounts["result"]["readOnly"] is True
    assert "workspace" not in mounts
    assert "buildkit-client" not in mounts
    assert inspect["securityContext"] == build["securityContext"]
    assert inspect["securityContext"]["runAsNonRoot"] is True


def test_a_build_nobody_links_stays_one_container() -> None:
    spec = manifest(False)["spec"]
    assert [c["name"] for c in spec["containers"]] == ["build"]
    assert "initContainers" not in spec
    assert all(e["name"] != "SHIPWAY_DIGEST_FILE" for e in spec["containers"][0]["env"])


# -- in the plan: the build reads it, the linking step's pod gates on it ---------------------

GATED: dict[str, Any] = {
    "services": {
        "elasticsearch": {"build": {"dockerfile": "Dockerfile.elasticsearch"}},
        "app": {"build": ".", "depends_on": ["elasticsearch"]},
    },
    "steps": [{"name": "search", "service": "app", "command": "curl -sL elasticsearch:9200"}],
}
"""Codeship's example 24: a built Elasticsearch whose Dockerfile has a HEALTHCHECK."""


def test_only_the_linked_build_reads_its_image() -> None:
    first = run(GATED)
    assert {b.service: b.inspect for b in first.builds} == {"elasticsearch": True, "app": False}
    own = {**GATED["services"]["elasticsearch"], "healthcheck": {"test": "true"}}
    spec_wins = run({**GATED, "services": {**GATED["services"], "elasticsearch": own}})
    assert {b.service: b.inspect for b in spec_wins.builds} == {
        "elasticsearch": False,
        "app": False,
    }


def test_the_images_healthcheck_becomes_the_linked_sidecars_startup_probe() -> None:
    first = run(GATED)
    names = {b.service: b.name for b in first.builds}
    report = json.dumps({"healthcheck": HEALTHCHECK})
    pods = [
        build_pod(names["elasticsearch"], "elasticsearch", rc=0, message=ok(), inspect=(0, report)),
        build_pod(names["app"], "app", rc=0, message=ok(digest="sha256:" + "2" * 64)),
    ]
    second = run(GATED, first.status, pods)
    record = {b.service: b for b in second.status.builds}["elasticsearch"]
    assert record.phase == StepPhase.SUCCEEDED
    assert record.digest == BUILT
    assert record.started_at == at(-29)  # the build's start, not the inspect's after it
    assert record.healthcheck is not None
    assert record.healthcheck.test == HEALTHCHECK["Test"]
    (create,) = second.create
    manifest = pod_manifest(REF, compiled({"source": GIT, **GATED}), create)
    (sidecar,) = manifest["spec"]["initContainers"]
    assert sidecar["image"] == f"{first.builds[0].repository}@{BUILT}"
    assert sidecar["startupProbe"]["exec"]["command"] == ["/bin/sh", "-c", HEALTHCHECK["Test"][1]]
    assert sidecar["startupProbe"]["periodSeconds"] == 30
    # the record alone keeps the gate: planned again from it, the step's pod is the same
    again = run(GATED, second.status.model_copy(update={"steps": []}), [])
    assert again.create == second.create


def test_an_unreadable_image_fails_the_build_naming_why() -> None:
    first = run(GATED)
    names = {b.service: b.name for b in first.builds}
    unauthorized = (1, "reading the configuration failed: UNAUTHORIZED")
    pod = build_pod(
        names["elasticsearch"], "elasticsearch", rc=0, message=ok(), inspect=unauthorized
    )
    second = run(GATED, first.status, [pod])
    record = {b.service: b for b in second.status.builds}["elasticsearch"]
    assert record.phase == StepPhase.FAILED
    assert record.message is not None
    assert "UNAUTHORIZED" in record.message
