"""Shapes of real Codeship projects (tests/codeship_shapes), converted as ``shipway run --dir``.

Each directory is something real projects do that Codeship accepted (issue #28's survey):
every one converts, and what it becomes is checked here down to the pods Shipway would make.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipway.codeship import Conversion, Options, WarningKind, convert_directory, default_name
from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline
from shipway.engine.manifests import all_manifests
from shipway.engine.objects import PipelineRef

SHAPES = Path(__file__).resolve().parents[2] / "codeship_shapes"
UID = "00000000-0000-4000-8000-000000000028"
ARGS_SECRETS = {"02-build-args-secret": {"api": "api-args"}, "09-every-shape": {"webApp": "args"}}
"""The Secrets their owners would name for the encrypted build args (--args-secret)."""


def convert(name: str, **ci: str) -> Conversion:
    directory = SHAPES / name
    options = Options(
        name=default_name(directory),
        source={"upload": {}},
        args_secrets=ARGS_SECRETS.get(name, {}),
        ci=ci or {"branch": "main"},
    )
    return convert_directory(directory, options=options)


def compiled(conversion: Conversion) -> CompiledPipeline:
    return compile_pipeline(conversion.manifest["spec"])


def pods(conversion: Conversion) -> dict[str, dict[str, Any]]:
    """The step pods ``shipway render`` prints, by step name (the last of a repeated name)."""
    ref = PipelineRef(conversion.manifest["metadata"]["name"], "ci", UID, 1, None)
    found = {}
    for manifest in all_manifests(ref, compiled(conversion)):
        if manifest["kind"] == "Pod" and "shipway.dev/step-name" in manifest["metadata"].get(
            "annotations", {}
        ):
            found[manifest["metadata"]["annotations"]["shipway.dev/step-name"]] = manifest
    return found


def notes(conversion: Conversion, kind: WarningKind | None = None) -> dict[str, str]:
    return {w.where: w.message for w in conversion.warnings if kind in (None, w.kind)}


def test_every_shape_has_a_directory_and_a_test() -> None:
    names = sorted(p.name for p in SHAPES.iterdir() if p.is_dir())
    tested = sorted(
        n.removeprefix("test_shape_").replace("_", "-")
        for n in globals()
        if n.startswith("test_shape_")
    )
    assert sorted(n.split("-", 1)[1] for n in names) == tested


def test_shape_misplaced_keys() -> None:
    conversion = convert("01-misplaced-keys")
    ignored = notes(conversion, WarningKind.IGNORED)
    assert set(ignored) == {
        "web.build.cached",
        "web.build.volumes",
        "web.volumeMounts",
        "[0].encrypted_env_file",
        "[1].registry",
    }
    assert all("no effect" in message for message in ignored.values())
    spec = conversion.manifest["spec"]
    assert spec["services"]["web"] == {
        "build": {"context": "."},
        "environment": {"RACK_ENV": "test"},
    }
    assert [sorted(step) for step in spec["steps"]] == [
        ["command", "name", "service"],
        ["command", "name", "service", "tag"],
    ]


def test_shape_build_args_secret() -> None:
    conversion = convert("02-build-args-secret")
    build = conversion.manifest["spec"]["services"]["api"]["build"]
    assert build["argsFrom"] == [{"secretRef": {"name": "api-args"}}]
    assert conversion.secrets == ()
    (note,) = [w for w in conversion.warnings if w.where == "api.build.encrypted_args_file"]
    assert "replaced by Secret 'api-args' (--args-secret, build.argsFrom)" in note.message
    resolved = compiled(conversion).services["api"].build
    assert resolved is not None
    assert resolved.secret_sources == ("api-args",)


def test_shape_service_names() -> None:
    conversion = convert("03-service-names")
    assert sorted(conversion.manifest["spec"]["services"]) == [
        "dockercfgGenerator",
        "test/php-7.2",
        "webApp",
    ]
    said = notes(conversion, WarningKind.NOTE)
    assert "as webapp (and as webApp from programs whose resolver ignores case" in said["webApp"]
    assert "as test-php-7.2 or test-php-7-2 (test/php-7.2 is no host name)" in said["test/php-7.2"]
    pod = pods(conversion)["reach the app by name"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["test-php-7-2"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["webapp"]
    assert pod["spec"]["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["webapp"]}]


def test_shape_absolute_host_paths() -> None:
    conversion = convert("04-absolute-host-paths")
    said = notes(conversion, WarningKind.NOTE)
    assert said["app.volumes[0]"].startswith("/tmp was a directory of Codeship's build machine")
    assert ".shipway/host/dev/shm" in said["app.volumes[1]"]
    reader = pods(conversion)["read it in the next step"]
    mounts = {m["mountPath"]: m["subPath"] for m in reader["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/log"] == ".shipway/host/tmp"
    assert mounts["/dev/shm"] == ".shipway/host/dev/shm"
    assert all("hostPath" not in volume for volume in reader["spec"]["volumes"])


def test_shape_command_true() -> None:
    conversion = convert("05-command-true")
    assert conversion.manifest["spec"]["services"]["app"]["command"] == "true"
    assert conversion.manifest["spec"]["steps"][0]["command"] == "true"
    runs = compiled(conversion).runs
    assert [r.command for r in runs] == [("true",), None]
    assert pods(conversion)["the default command"]["spec"]["containers"][0]["args"] == ["true"]


def test_shape_repeated_step_names() -> None:
    for branch, kept in (("main", "production"), ("develop", "staging")):
        runs = compiled(convert("06-repeated-step-names", branch=branch)).runs
        assert [r.name for r in runs] == ["build", "deploy", "build", "deploy"]
        assert len({r.id for r in runs}) == 4
        enabled = [" ".join(r.command or ()) for r in runs if r.enabled]
        assert enabled == [f"sh -c echo build for {kept}", f"sh -c echo deploy to {kept}"]


def test_shape_empty_environment() -> None:
    conversion = convert("07-empty-environment")
    assert conversion.manifest["spec"]["services"]["app"] == {"image": "busybox:1.36"}
    assert conversion.warnings == ()


def test_shape_tagged_image_name() -> None:
    conversion = convert("08-tagged-image-name")
    steps = conversion.manifest["spec"]["steps"]
    assert [(s["image_name"], s.get("image_tag")) for s in steps] == [
        ("registry.example.com/team/app", "stable"),
        ("registry.example.com/team/app", "{{ .Branch }}"),
    ]
    said = notes(conversion)
    assert "with the tag 'stable'" in said["[0].image_name"]
    assert "gives way to image_tag" in said["[1].image_name"]
    pushes = [r.push for r in compiled(conversion).runs]
    assert [p.tag.source for p in pushes if p is not None] == ["stable", "{{ .Branch }}"]


def test_shape_every_shape() -> None:
    """All of them at once: one conversion, nothing refused."""
    conversion = convert("09-every-shape")
    spec = conversion.manifest["spec"]
    assert sorted(spec["services"]) == ["test/ruby-3.1", "webApp"]
    assert spec["services"]["webApp"]["command"] == "true"
    assert [r.name for r in compiled(conversion).runs] == ["test", "push", "test"]


@pytest.mark.parametrize("name", sorted(p.name for p in SHAPES.iterdir() if p.is_dir()))
def test_each_shape_also_converts_with_the_command_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``shipway convert --dir`` with --upload (and --args-secret where one is needed)."""
    from shipway.cli import main

    flags = [f"--args-secret={s}={v}" for s, v in ARGS_SECRETS.get(name, {}).items()]
    assert main(["convert", "--dir", str(SHAPES / name), "--upload", *flags]) == 0
    assert "kind: Pipeline" in capsys.readouterr().out
