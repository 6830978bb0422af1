"""Every rule a Pipeline spec is checked against, each error naming its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.pipeline import compile_pipeline
from shipway.models.spec import IMMUTABLE_SPEC_FIELDS, PipelineSpec
from tests.unit.builders import WALKTHROUGH, spec


def _errors(raw: Any) -> list[str]:
    with pytest.raises(InvalidSpecError) as info:
        compile_pipeline(raw)
    return [str(e) for e in info.value.errors]


def test_the_walkthrough_compiles() -> None:
    compiled = compile_pipeline(WALKTHROUGH)
    assert [r.name for r in compiled.runs] == ["write artifact", "check artifact"]
    assert compiled.services["volumes_test"].mounts == compiled.services["demo"].mounts


def test_codeship_names_and_paths_that_kubernetes_cannot_take_as_they_are_compile() -> None:
    """camelCase and '/' service names, a repeated step name, an absolute host path: all
    Codeship took (tests/bad_pipelines refused them before)."""
    raw = copy.deepcopy(WALKTHROUGH)
    raw["services"]["webApp"] = {"image": "busybox", "volumes": ["/tmp:/log", "/data"]}
    raw["services"]["test/php-7.2"] = {"image": "busybox", "links": ["webApp"]}
    raw["steps"].append({"name": "write artifact", "service": "test/php-7.2"})
    compiled = compile_pipeline(raw)
    assert [r.name for r in compiled.runs][-1] == "write artifact"
    assert compiled.runs[0].name == compiled.runs[-1].name
    assert compiled.runs[0].id != compiled.runs[-1].id
    mounts = {m.mount_path: m.sub_path for m in compiled.services["webApp"].mounts}
    assert mounts["/log"] == ".shipway/host/tmp"
    assert mounts["/data"].startswith(".shipway/anonymous/webapp-")
    assert [link.service for link in compiled.services["test/php-7.2"].links] == ["webApp"]


def _with(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(WALKTHROUGH)
    node: Any = raw
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_with("steps.0.service", "ghost"), "spec.steps[0].service: unknown service 'ghost'"),
        (
            _with("services.volumes_test.volumes_from", ["ghost"]),
            "spec.services.volumes_test.volumes_from[0]: unknown service 'ghost'",
        ),
        (
            _with("services.demo.links", ["ghost"]),
            "spec.services.demo.links[0]: unknown service 'ghost'",
        ),
        (
            _with("services.demo.volumes_from", ["volumes_test"]),
            "volumes_from cycle",
        ),
        (
            _with("services.demo.volumes", ["./tmp:app"]),
            "spec.services.demo.volumes[0]: './tmp:app': the container path must be absolute",
        ),
        (
            _with("services.demo.volumes", ["./a/../../x:/app"]),
            "spec.services.demo.volumes[0]: './a/../../x:/app': the host path escapes the workspace",
        ),
        (
            _with("services.Volumes_Test", {"image": "x"}),
            "spec.services.volumes_test: 'volumes_test' and 'Volumes_Test' both become "
            "'volumes-test'",
        ),
        (_with("steps", []), "spec.steps: List should have at least 1 item"),
        (
            _with("services.demo", {"build": {"context": "../up"}}),
            "spec.services.demo.build.context: '../up': the build context is outside the checkout",
        ),
        (
            _with("services.demo", {"build": "/abs"}),
            "spec.services.demo.build: '/abs': absolute paths are not allowed",
        ),
        (
            _with("services.demo", {"build": {"context": "app", "dockerfile": "../../Dockerfile"}}),
            "spec.services.demo.build.dockerfile: '../../Dockerfile' in context 'app': the "
            "Dockerfile is outside the checkout",
        ),
        (
            _with("services.demo", {"build": {"dockerfile": "/etc/Dockerfile"}}),
            "the Dockerfile is a path relative to the build context",
        ),
        (
            _with("services.demo", {"build": {"dockerfile": "A", "dockerfile_path": "B"}}),
            "spec.services.demo.build.dockerfile_path: dockerfile_path is the old spelling",
        ),
        (
            _with("services.demo", {"build": {"args": ["NOEQUALS"]}}),
            "spec.services.demo.build.args[0]: 'NOEQUALS': expected KEY=VALUE",
        ),
        (
            _with("services.demo", {"build": {"args": {"1X": "y"}}}),
            "'1X' is not a valid build arg name",
        ),
        (
            _with("services.demo", {"build": {"args": {"X": {"nested": 1}}}}),
            "spec.services.demo.build.args.X: must be a string, number or boolean",
        ),
        (_with("services.demo", {"build": {"target": "a b"}}), "'a b' is not a stage name"),
        (_with("services.demo", {"build": {"tag": "x"}}), "spec.services.demo.build"),
        (
            _with("services.demo.image", None),
            "spec.services.demo.image: a service needs image or build",
        ),
        (_with("steps.0.type", "manual"), "spec.steps[0].steps: a group needs at least one step"),
        (_with("steps.0.tag", "^release/("), "spec.steps[0].tag: invalid regular expression"),
        (_with("steps.0.command", "echo 'open"), "spec.steps[0].command: No closing quotation"),
        (_with("steps.0.command", 42), "spec.steps[0].command"),
        (_with("services.demo.environment", ["NOEQUALS"]), "expected KEY=VALUE"),
        (_with("services.demo.environment", {"1BAD": "x"}), "not a valid environment variable"),
        (_with("services.demo.working_dir", "relative"), "working_dir: must be an absolute path"),
        (_with("services.demo.links", ["demo"]), "cannot link to itself"),
        (
            _with("services.demo.bogus", 1),
            "spec.services.demo.bogus: Extra inputs are not permitted",
        ),
        (_with("services.Bad Name", {"image": "x"}), "spec.services"),
        (_with("services./lead", {"image": "x"}), "spec.services"),
        (_with("steps.0.timeout", "ten minutes"), "spec.steps[0].timeout"),
        (
            _with("workspace", {"accessModes": ["ReadWriteOncePod"]}),
            "spec.workspace.accessModes[0]",
        ),
        ("not a mapping", "spec: must be an object"),
    ],
)
def test_invalid_specs_name_the_field(raw: Any, expected: str) -> None:
    errors = _errors(raw)
    assert any(expected in e for e in errors), errors


def test_groups_are_checked() -> None:
    errors = _errors(spec([{"type": "parallel", "steps": []}]))
    assert any("spec.steps[0].steps" in e for e in errors)
    errors = _errors(spec([{"type": "serial", "steps": [{"command": "true"}]}]))
    assert errors == [
        "spec.steps[0].steps[0].service: a run step needs a service (on the step or its group)"
    ]


def test_group_service_is_inherited_and_on_fail_runs_in_the_failed_steps_service() -> None:
    compiled = compile_pipeline(
        spec(
            [
                {
                    "type": "parallel",
                    "service": "b",
                    "steps": [
                        {"command": "true", "on_fail": [{"command": "echo cleanup"}]},
                        {"service": "c", "command": "true"},
                    ],
                }
            ]
        )
    )
    services = {r.name: r.service for r in compiled.runs}
    assert services == {"true": "b", "echo cleanup": "b", "true (2)": "c"}
    assert compiled.runs[1].on_fail_of == compiled.runs[0].id


def test_generated_names_are_unique_and_do_not_steal_explicit_ones() -> None:
    compiled = compile_pipeline(
        spec(
            [
                {"service": "a", "command": "make"},
                {"service": "a", "command": "make"},
                {"service": "a", "name": "make (2)", "command": "x"},
            ]
        )
    )
    assert [r.name for r in compiled.runs] == ["make", "make (3)", "make (2)"]


def test_thousands_of_steps_are_refused() -> None:
    groups = [{"type": "parallel", "steps": [{"service": "a", "command": "true"}] * 150}] * 7
    errors = _errors(spec(groups))
    assert any("1050 run steps; at most 1000" in e for e in errors)


def test_every_field_but_cancel_and_approvals_is_immutable() -> None:
    assert set(IMMUTABLE_SPEC_FIELDS) == set(PipelineSpec.model_fields) - {"cancel", "approvals"}


def test_tag_filters_are_decided_from_the_build_tag() -> None:
    raw = spec(
        [
            {"service": "a", "command": "deploy", "tag": "main"},
            {"service": "a", "command": "release", "tag": "^v[0-9]"},
            {"type": "serial", "exclude": "main", "steps": [{"service": "a", "command": "lint"}]},
        ],
        ci={"branch": "main"},
    )
    on_main = {r.name: r.enabled for r in compile_pipeline(raw).runs}
    assert on_main == {"deploy": True, "release": False, "lint": False}
    raw["ci"] = {"branch": "main", "tag": "v1.2.0"}
    on_tag = {r.name: r.enabled for r in compile_pipeline(raw).runs}
    assert on_tag == {"deploy": False, "release": True, "lint": True}
