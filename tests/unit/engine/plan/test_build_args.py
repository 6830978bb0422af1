"""Build args as Codeship templates: refused at validation when bad, rendered at the pod.

Codeship renders every build arg value with the variables of a push step's ``image_tag``;
what the build does not know renders as "" (a tag refuses it instead: see test_push.py).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shipway.codeship import Options, convert_directory
from shipway.compiler.builds import ResolvedBuild
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline
from shipway.engine.intents import BuildToCreate
from shipway.engine.objects import PipelineRef
from shipway.engine.plan.builds.args import render_args
from shipway.engine.pods.build import buildctl_args
from shipway.models import SourceStatus, StepPhase
from tests.unit.builders import REF
from tests.unit.engine.plan.test_planner_builds import CHECKED_OUT, SEED, run

CORPUS = Path(__file__).resolve().parents[3] / "codeship_examples"
CHECKOUT = SourceStatus(
    kind="git",
    phase=StepPhase.SUCCEEDED,
    commit="3f2a9c1" + "0" * 33,
    branch="feature/args",
    commit_message="Add build args",
    committer_name="Ada",
    committer_email="ada@example.com",
)


def _compiled(args: Any, **extra: Any) -> CompiledPipeline:
    raw = {
        "services": {"app": {"build": {"image": "myapp", "args": args}}},
        "steps": [{"service": "app", "command": "true"}],
        "source": {"upload": {}},
        **extra,
    }
    return compile_pipeline(raw)


def _errors(args: Any) -> list[str]:
    with pytest.raises(InvalidSpecError) as info:
        _compiled(args)
    return [str(e) for e in info.value.errors]


def _rendered(
    args: Any, source: SourceStatus | None = None, ref: PipelineRef = REF, **extra: Any
) -> dict[str, str]:
    compiled = _compiled(args, **extra)
    build = compiled.services["app"].build
    assert build is not None
    return dict(render_args(ref, compiled, build, source))


# -- validation -------------------------------------------------------------------------


def test_an_unknown_variable_is_refused_naming_the_field_and_the_value() -> None:
    [error] = _errors({"UNENCRYPTED": "foo", "CI": "{{ .Nope }}"})
    assert error.startswith(
        "spec.services.app.build.args.CI: {{ .Nope }}: unknown variable .Nope; known: "
        ".ProjectID, .BuildID,"
    )


def test_the_list_form_names_the_entry() -> None:
    [error] = _errors(["A=1", "B=x-{{ .Branch | upper }}"])
    assert error == (
        "spec.services.app.build.args[1]: x-{{ .Branch | upper }}: {{ .Branch | upper }}: "
        "only {{ .Name }} of a build value is supported (no functions, pipelines or control "
        "actions)"
    )


def test_an_unclosed_action_is_refused() -> None:
    [error] = _errors({"V": "{{ .Branch"})
    assert error.startswith("spec.services.app.build.args.V: {{ .Branch: unclosed or stray")


def test_every_bad_value_is_reported_at_once() -> None:
    errors = _errors({"A": "{{ .Nope }}", "B": "{{ .Ci }}", "C": "{{ if .Ci }}x{{ end }}"})
    assert [e.split(":")[0] for e in errors] == [
        "spec.services.app.build.args.A",
        "spec.services.app.build.args.C",
    ]


def test_values_without_an_opening_action_stay_literal() -> None:
    literal = {"A": "a}}b", "B": "{ .Ci }", "C": "", "D": 3}
    assert _rendered(literal) == {"A": "a}}b", "B": "{ .Ci }", "C": "", "D": "3"}


# -- rendering --------------------------------------------------------------------------

ALL = {
    "CI": "{{.Ci}}",
    "NAME": "{{ .CiName }}",
    "BRANCH": "{{ .Branch }}",
    "COMMIT": "{{ .CommitID }}",
    "SHORT": "{{ .ShortCommitID }}",
    "MESSAGE": "{{ .CommitMessage }}",
    "WHO": "{{ .CommitterName }} <{{ .CommitterEmail }}>",
    "USER": "{{ .CommitterUsername }}",
    "BUILD": "{{ .BuildID }}",
    "PROJECT": "{{ .ProjectID }}",
    "REPO": "{{ .RepoName }}",
    "SERVICE": "{{ .ServiceName }}",
    "IMAGE": "{{ .ImageName }}",
    "STEP": "[{{ .StepName }}]",
    "TIME": "{{ .Time }}",
    "STAMP": "{{ .Timestamp }}",
    "STRING_TIME": "{{ .StringTime }}",
    "REF": "{{ .Ref }}",
}


def test_args_render_from_what_the_checkout_found() -> None:
    got = _rendered(ALL, CHECKOUT)
    assert got == {
        "CI": "true",
        "NAME": "shipway",
        "BRANCH": "feature/args",
        "COMMIT": CHECKOUT.commit,
        "SHORT": "3f2a9c1",
        "MESSAGE": "Add build args",
        "WHO": "Ada <ada@example.com>",
        "USER": "",
        "BUILD": REF.uid,
        "PROJECT": "",
        "REPO": "",
        "SERVICE": "app",
        "IMAGE": "myapp",
        "STEP": "[]",
        "TIME": "2026-11-27 11:59:00 +0000 UTC",
        "STAMP": "1795780740",
        "STRING_TIME": "2026-11-27T11:59:00Z",
        "REF": "",
    }


def test_spec_ci_wins_over_the_checkout_as_in_the_steps_ci_variables() -> None:
    ci = {"branch": "main", "projectId": "p-7", "committerUsername": "ada"}
    got = _rendered(ALL, CHECKOUT, ci=ci)
    assert (got["BRANCH"], got["PROJECT"], got["USER"], got["REF"]) == (
        "main",
        "p-7",
        "ada",
        "main",
    )


def test_without_a_checkout_or_ci_values_unknown_variables_render_empty() -> None:
    """Codeship: "not all of these values will be available locally via jet"."""
    ref = PipelineRef("demo", "ci", "uid-1", 1, None)
    got = _rendered(ALL, None, ref)
    assert got["CI"] == "true"
    empty = {k for k, v in got.items() if v == ""}
    assert empty == {
        "BRANCH",
        "COMMIT",
        "SHORT",
        "MESSAGE",
        "USER",
        "PROJECT",
        "REPO",
        "TIME",
        "STAMP",
        "STRING_TIME",
        "REF",
    }
    assert got["WHO"] == " <>"
    assert got["STEP"] == "[]"


def test_a_build_without_args_renders_nothing() -> None:
    compiled = _compiled(None)
    build = compiled.services["app"].build
    assert build is not None
    assert render_args(REF, compiled, build, CHECKOUT) == ()


# -- the plan and the pod ---------------------------------------------------------------


def test_the_planned_build_pod_carries_the_rendered_args_into_buildctl() -> None:
    raw = copy.deepcopy(SEED)
    raw["services"]["demo"]["build"]["args"] = {
        "CI": "{{.Ci}}",
        "REV": "{{ .Branch }}@{{ .CommitID }}",
    }
    result = run(raw)
    creates = {c.service: c for c in result.builds}
    assert creates["demo"].args == (("CI", "true"), ("REV", f"main@{'0' * 40}"))
    assert creates["volumes_test"].args == ()
    again = run(raw)  # a restarted operator plans the same pod
    assert again.builds == result.builds
    build = compile_pipeline({"source": {"upload": {}}, **raw}).services["demo"].build
    assert build is not None
    flags = buildctl_args(build, creates["demo"])
    opts = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--opt"]
    assert opts[:2] == ["build-arg:CI=true", f"build-arg:REV=main@{'0' * 40}"]


def test_the_branch_comes_from_the_checkout_when_spec_ci_has_none() -> None:
    raw = copy.deepcopy(SEED)
    del raw["ci"]
    raw["services"]["demo"]["build"]["args"] = ["BRANCH={{ .Branch }}"]
    assert CHECKED_OUT.source is not None
    assert CHECKED_OUT.source.branch == "main"
    creates = {c.service: c for c in run(raw).builds}
    assert creates["demo"].args == (("BRANCH", "main"),)


def test_buildctl_passes_the_rendered_values_not_the_templates() -> None:
    build = ResolvedBuild("app", ".", ".", "Dockerfile")
    create = BuildToCreate("app", "p-build-app", "r/app", args=(("A", "x y=z"), ("B", "")))
    flags = buildctl_args(build, create)
    opts = [flags[i + 1] for i, flag in enumerate(flags) if flag == "--opt"]
    assert opts == ["build-arg:A=x y=z", "build-arg:B="]


# -- example 20 (build args) --------------------------------------------------------------


def test_example_20_without_its_encrypted_args_converts_and_renders(tmp_path: Path) -> None:
    """Its encrypted args need a key it does not hold; the templated ones are supported."""
    directory = tmp_path / "buildargs"
    directory.mkdir()
    example = CORPUS / "20.build-args"
    for name in ("Dockerfile", "codeship-steps.yml", "check-args.sh"):
        (directory / name).write_bytes((example / name).read_bytes())
    services = (example / "codeship-services.yml").read_text()
    kept = [line for line in services.splitlines() if "encrypted_args" not in line]
    kept.insert(kept.index('      CI: "{{.Ci}}"') + 1, '      BRANCH: "{{ .Branch }}"')
    (directory / "codeship-services.yml").write_text("\n".join(kept) + "\n")
    conversion = convert_directory(
        directory, options=Options(name="buildargs", source={"upload": {}})
    )
    assert conversion.warnings == ()
    spec = conversion.manifest["spec"]
    assert spec["services"]["app"]["build"]["args"] == {
        "PLAIN": "visible",
        "CI": "{{.Ci}}",
        "BRANCH": "{{ .Branch }}",
    }
    compiled = compile_pipeline({**spec, "ci": {"branch": "release/1.0"}})
    build = compiled.services["app"].build
    assert build is not None
    assert render_args(REF, compiled, build, None) == (
        ("PLAIN", "visible"),
        ("CI", "true"),
        ("BRANCH", "release/1.0"),
    )
