"""codeship-steps.yml → spec.steps, in the shapes Codeship's documentation and examples use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipway.codeship import (
    STEP_KEYS,
    Conversion,
    ConversionError,
    FileError,
    Handling,
    Options,
    WarningKind,
    convert,
    convert_directory,
    default_name,
)
from shipway.codeship.yamlfile import parse_yaml
from shipway.compiler.pipeline import CompiledPipeline, compile_pipeline
from shipway.compiler.tree import GroupNode, RunNode

SERVICES = {name: {"image": "busybox:1.36"} for name in ("app", "foo", "bar", "slack", "deploy")}


def run(steps: str | list[Any], **options: Any) -> Conversion:
    doc = parse_yaml(steps, "codeship-steps.yml") if isinstance(steps, str) else steps
    return convert(SERVICES, doc, options=Options(name="demo", **options))


def compiled(steps: str | list[Any], **options: Any) -> CompiledPipeline:
    return compile_pipeline(run(steps, **options).manifest["spec"])


def errors(steps: str | list[Any], **options: Any) -> list[str]:
    with pytest.raises(ConversionError) as info:
        run(steps, **options)
    return [str(e) for e in info.value.errors]


def shape(node: GroupNode | RunNode) -> Any:
    """A compact picture of the compiled tree: groups as (kind, name, children), runs as
    (name, service)."""
    if isinstance(node, RunNode):
        return (node.name, node.service)
    return (node.kind, node.name, [shape(child) for child in node.children])


# -- the documented shapes --------------------------------------------------------------------


def test_a_plain_list_runs_in_order_with_numbers_as_names_kept_as_written() -> None:
    pipeline = compiled(
        "- name: 01\n  service: app\n  command: echo foo\n"
        "- name: 1.10\n  service: app\n  command: echo bar\n"
    )
    assert [(r.name, r.command) for r in pipeline.runs] == [
        ("01", ("echo", "foo")),
        ("1.10", ("echo", "bar")),
    ]


PARALLEL_WITH_GROUP_SERVICE = """
- type: parallel
  service: app
  steps:
    - command: bash /app/compute.sh /app/files/1 /data
    - command: bash /app/compute.sh /app/files/2 /data
- service: app
  command: bash /app/print.sh /data
"""


def test_a_parallel_group_with_a_group_level_service() -> None:
    conversion = run(PARALLEL_WITH_GROUP_SERVICE)
    group = conversion.manifest["spec"]["steps"][0]
    assert group["service"] == "app"
    assert all("service" not in step for step in group["steps"])
    pipeline = compile_pipeline(conversion.manifest["spec"])
    assert [shape(n) for n in pipeline.root.children] == [
        (
            "parallel",
            "parallel-1",
            [
                ("bash /app/compute.sh /app/files/1 /data", "app"),
                ("bash /app/compute.sh /app/files/2 /data", "app"),
            ],
        ),
        ("bash /app/print.sh /data", "app"),
    ]


NESTED = """
- type: parallel
  name: "04"
  steps:
  - service: foo
    command: sleep 2
  - type: serial
    steps:
    - service: foo
      command: echo Before
    - type: parallel
      steps:
        - service: foo
          command: echo In Between
        - service: bar
          command: sleep 3
    - service: foo
      command: echo After
"""


def test_nested_groups_keep_their_structure() -> None:
    (top,) = compiled(NESTED).root.children
    assert shape(top) == (
        "parallel",
        "04",
        [
            ("sleep 2", "foo"),
            (
                "serial",
                "serial-2",
                [
                    ("echo Before", "foo"),
                    ("parallel", "parallel-2", [("echo In Between", "foo"), ("sleep 3", "bar")]),
                    ("echo After", "foo"),
                ],
            ),
        ],
    )


FAN_OUT_PARALLEL = """
- type: parallel
  tag: "^(master|staging/.*)$"
  dockercfg_service: dockercfg_generator
  services:
  - foo
  - bar
  steps:
  - command: echo one
  - command: echo two
"""

FAN_OUT_SERIAL = """
- type: serial
  tag: "master"
  encrypted_dockercfg_path: dockercfg.encrypted
  services:
  - foo
  - bar
  steps:
  - command: echo one
  - command: echo two
"""


def test_services_on_a_parallel_group_is_one_serial_group_per_service() -> None:
    conversion = run(FAN_OUT_PARALLEL, ci={"branch": "staging/eu"})
    (top,) = compile_pipeline(conversion.manifest["spec"]).root.children
    # Codeship's documented equivalent: parallel of [serial foo: one, two], [serial bar: ...]
    assert shape(top) == (
        "parallel",
        "parallel-1",
        [
            ("serial", "foo", [("echo one", "foo"), ("echo two", "foo")]),
            ("serial", "bar", [("echo one (2)", "bar"), ("echo two (2)", "bar")]),
        ],
    )
    assert top.enabled
    assert [(w.where, w.kind) for w in conversion.warnings] == [
        ("[0].dockercfg_service", WarningKind.IGNORED)
    ]


def test_services_on_a_serial_group_runs_the_services_one_after_the_other() -> None:
    pipeline = compiled(FAN_OUT_SERIAL, ci={"branch": "master"}, dockercfg_secret="regcred")
    assert {r.pull_secret for r in pipeline.runs} == {"regcred"}
    # Codeship's documented equivalent: foo one, foo two, bar one, bar two, in order
    assert [(r.command, r.service) for r in pipeline.runs] == [
        (("echo", "one"), "foo"),
        (("echo", "two"), "foo"),
        (("echo", "one"), "bar"),
        (("echo", "two"), "bar"),
    ]
    (top,) = pipeline.root.children
    assert isinstance(top, GroupNode)
    assert top.kind == "serial"
    assert [child.kind for child in top.children if isinstance(child, GroupNode)] == [
        "serial",
        "serial",
    ]


def test_named_steps_in_a_fan_out_get_the_service_in_their_name() -> None:
    pipeline = compiled(
        [
            {
                "type": "parallel",
                "services": ["foo", "bar"],
                "steps": [
                    {
                        "name": "test",
                        "command": "make test",
                        "on_fail": [{"name": "notify", "service": "slack", "command": "send"}],
                    },
                ],
            }
        ]
    )
    assert [r.name for r in pipeline.runs] == [
        "test (foo)",
        "notify (foo)",
        "test (bar)",
        "notify (bar)",
    ]


def test_one_service_in_services_needs_no_renaming() -> None:
    pipeline = compiled([{"type": "serial", "services": ["foo"], "steps": [{"name": "t"}]}])
    assert [(r.name, r.service) for r in pipeline.runs] == [("t", "foo")]


MATRIX = """
- type: matrix
  services: [foo, bar]
  steps:
    - type: parallel
      steps:
      - command: sleep 2
      - type: serial
        steps:
        - command: sleep 3
        - command: env
"""


def test_matrix_is_the_parallel_fan_out_with_a_deprecation_warning() -> None:
    """codeship-tool-examples 05 and 06: the old ``type: matrix`` spelling."""
    conversion = run(MATRIX)
    spelled_now = run(MATRIX.replace("type: matrix", "type: parallel"))
    assert conversion.manifest == spelled_now.manifest
    (top,) = compile_pipeline(conversion.manifest["spec"]).root.children
    assert isinstance(top, GroupNode)
    assert top.kind == "parallel"
    assert [(child.name, child.kind) for child in top.children if isinstance(child, GroupNode)] == [
        ("foo", "serial"),
        ("bar", "serial"),
    ]
    assert [(w.where, w.kind) for w in conversion.warnings] == [
        ("[0].type", WarningKind.DEPRECATED)
    ]
    assert "type: parallel with services" in conversion.warnings[0].message
    assert spelled_now.warnings == ()


# -- tag and exclude ---------------------------------------------------------------------------

FILTERS = """
- name: on master
  service: app
  tag: master
  command: "true"
- name: release branches
  service: app
  tag: ^(master|staging)
  command: "true"
- name: not on gh-pages
  service: app
  exclude: gh-pages
  command: "true"
- name: versions
  service: app
  tag: 1.10
  command: "true"
- type: serial
  tag: ^release/.*$
  exclude: ^release/old
  steps:
  - name: inside release group
    service: app
    command: "true"
"""


@pytest.mark.parametrize(
    ("ci", "enabled"),
    [
        ({"branch": "master"}, {"on master", "release branches", "not on gh-pages"}),
        ({"branch": "master-rebase"}, {"release branches", "not on gh-pages"}),
        ({"branch": "gh-pages"}, set()),
        ({"branch": "feature"}, {"not on gh-pages"}),
        ({"tag": "1.10", "branch": "master"}, {"versions", "not on gh-pages"}),
        ({"branch": "release/2.0"}, {"not on gh-pages", "inside release group"}),
        ({"branch": "release/old-1"}, {"not on gh-pages"}),
    ],
)
def test_tag_and_exclude_filters_as_codeship_matches_them(
    ci: dict[str, str], enabled: set[str]
) -> None:
    pipeline = compiled(FILTERS, ci=ci)
    assert {r.name for r in pipeline.runs if r.enabled} == enabled


def test_an_invalid_regular_expression_is_reported_against_the_steps_file() -> None:
    (message,) = errors([{"service": "app", "command": "x", "tag": "^(master"}])
    assert message.startswith("codeship-steps.yml: [0].tag: invalid regular expression")


# -- failures ------------------------------------------------------------------------------


def test_on_fail_steps_on_steps_and_groups_are_kept() -> None:
    text = """
- type: serial
  on_fail:
    - service: slack
      command: send_message
  steps:
    - service: foo
      command: echo one
    - service: deploy
      command: deploy_to_test.sh
      on_fail:
        - service: deploy
          command: clean_test.sh
"""
    pipeline = compiled(text)
    assert [(r.command, r.on_fail_of) for r in pipeline.runs] == [
        (("echo", "one"), None),
        (("deploy_to_test.sh",), None),
        (("clean_test.sh",), "2"),
        (("send_message",), "serial-1"),
    ]


# -- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "where", "needle"),
    [
        (
            [{"type": "push", "service": "app", "image_name": "quay.io/x/y", "image_tag": "v1"}],
            "[0].service",
            "a push step pushes the image built for its service, and 'app' has no build",
        ),
        (
            [{"service": "app", "command": "x", "encrypted_dockercfg_path": "cfg.encrypted"}],
            "[0].encrypted_dockercfg_path",
            "need the project's AES key (--aes-key FILE, or codeship.aes in the project "
            "directory), or a dockerconfigjson Secret that holds them: --dockercfg-secret NAME",
        ),
        (
            [{"type": "matrix", "service": "foo", "steps": [{"command": "env"}]}],
            "[0].type",
            "it needs services",
        ),
        ([{"type": "fan", "steps": []}], "[0].type", "unknown type 'fan'"),
        ([{"service": "nope", "command": "x"}], "[0].service", "unknown service 'nope'"),
        ([{"command": "x"}], "[0]", "a run step needs a service"),
        ([{"service": "app", "steps": [{"command": "x"}]}], "[0].steps", "add type: serial"),
        ([{"type": "parallel", "service": "app"}], "[0].steps", "non-empty list of steps"),
        (
            [{"type": "parallel", "service": "app", "steps": [{"service": "foo", "command": "x"}]}],
            "[0].steps[0].service",
            "the group at [0] sets the service of its steps",
        ),
        (
            [{"type": "serial", "services": ["foo", "zap"], "steps": [{"command": "x"}]}],
            "[0].services[1]",
            "unknown service 'zap'",
        ),
        ([{"service": "app", "retries": "two"}], "[0].retries", "must be a number"),
        ([{"service": "app", "on_fail": []}], "[0].on_fail", "non-empty list"),
    ],
)
def test_steps_shipway_cannot_run_are_errors(steps: list[Any], where: str, needle: str) -> None:
    found = errors(steps)
    assert any(e.startswith(f"codeship-steps.yml: {where}: ") and needle in e for e in found), found


def test_a_manual_group_converts_and_its_tag_filters_every_step_inside() -> None:
    """Codeship's approval gate: a group of several steps; its tag holds for all of them."""
    steps = [
        {"name": "tests", "service": "app", "command": "true"},
        {
            "name": "Manual Approval",
            "type": "manual",
            "tag": "main",
            "steps": [{"service": "app", "command": "./deploy"}, {"service": "foo"}],
        },
    ]
    gate = run(steps, ci={"branch": "main"}).manifest["spec"]["steps"][1]
    assert (gate["type"], gate["tag"], len(gate["steps"])) == ("manual", "main", 2)
    on_main = compiled(steps, ci={"branch": "main"}).root.children[1]
    assert isinstance(on_main, GroupNode)
    assert on_main.kind == "manual"
    assert all(child.enabled for child in on_main.children)
    elsewhere = compiled(steps, ci={"branch": "feature"}).root.children[1]
    assert isinstance(elsewhere, GroupNode)
    assert not any(child.enabled for child in elsewhere.children)


def test_a_step_name_may_repeat_in_groups_of_different_branches() -> None:
    """Codeship allowed it; steps are known by their ids (pod names stay unique)."""
    pipeline = compiled(
        [
            {"type": "serial", "tag": "main", "steps": [{"name": "deploy", "service": "app"}]},
            {"type": "serial", "tag": "dev", "steps": [{"name": "deploy", "service": "foo"}]},
        ]
    )
    assert [(r.id, r.name, r.service) for r in pipeline.runs] == [
        ("1", "deploy", "app"),
        ("2", "deploy", "foo"),
    ]


@pytest.mark.parametrize(
    ("step", "where", "needle"),
    [
        (
            {"type": "push", "service": "app", "image_name": "x/y", "command": "true"},
            "[0].command",
            "a push step runs no command",
        ),
        ({"service": "app", "registry": "quay.io"}, "[0].registry", "a key of push steps"),
        ({"service": "app", "image_tag": "x"}, "[0].image_tag", "a key of push steps"),
        (
            {"type": "serial", "command": "x", "steps": [{"service": "app"}]},
            "[0].command",
            "runs no command of its own",
        ),
        ({"service": "app", "comand": "x"}, "[0].comand", "did you mean command?"),
        (
            {"service": "app", "encrypted_env_file": "env.encrypted"},
            "[0].encrypted_env_file",
            "a key of services, not of steps",
        ),
    ],
)
def test_keys_codeship_accepted_without_effect_are_ignored_with_a_warning(
    step: dict[str, Any], where: str, needle: str
) -> None:
    services = {"app": {"build": "."}, "foo": {"image": "busybox"}}
    conversion = convert(services, [step], options=Options(name="demo", source={"upload": {}}))
    (warning,) = [w for w in conversion.warnings if w.where == where]
    assert warning.kind is WarningKind.IGNORED
    assert needle in warning.message
    assert "no effect" in warning.message
    assert where.rsplit(".", 1)[1] not in str(conversion.manifest["spec"]["steps"][0])


def test_command_true_is_the_command_true() -> None:
    """YAML reads ``command: true`` as a boolean; Codeship's docs write it for a no-op."""
    pipeline = compiled([{"service": "app", "command": True}, {"service": "app", "command": None}])
    assert [r.command for r in pipeline.runs] == [("true",), None]


@pytest.mark.parametrize(
    ("image_name", "image_tag", "pushed"),
    [
        ("quay.io/team/app:v1.2", None, ("quay.io/team/app", "v1.2")),
        ("quay.io/team/app:v1.2", "{{ .Branch }}", ("quay.io/team/app", "{{ .Branch }}")),
        ("localhost.example:5000/app", None, ("localhost.example:5000/app", None)),
    ],
)
def test_a_tag_in_image_name_is_pushed_unless_image_tag_says_otherwise(
    image_name: str, image_tag: str | None, pushed: tuple[str, str | None]
) -> None:
    step: dict[str, Any] = {"type": "push", "service": "app", "image_name": image_name}
    if image_tag is not None:
        step["image_tag"] = image_tag
    conversion = convert(
        {"app": {"build": "."}}, [step], options=Options(name="demo", source={"upload": {}})
    )
    (out,) = conversion.manifest["spec"]["steps"]
    assert (out["image_name"], out.get("image_tag")) == pushed
    assert [w.where for w in conversion.warnings] == (
        ["[0].image_name"] if pushed[0] != image_name else []
    )


def test_every_step_key_is_in_the_table_with_a_handling() -> None:
    ignored = {k for k, r in STEP_KEYS.items() if r.handling is Handling.IGNORED}
    assert ignored == {"environment", "env_file", "encrypted_environment", "encrypted_env_file"}


# -- the manifest -------------------------------------------------------------------------------


def test_the_manifest_is_a_pipeline_with_ci_context() -> None:
    manifest = run([{"service": "app"}], ci={"branch": "main", "commitId": "abc"}).manifest
    assert manifest["apiVersion"] == "shipway.dev/v1alpha1"
    assert manifest["kind"] == "Pipeline"
    assert manifest["metadata"] == {"name": "demo"}
    assert manifest["spec"]["ci"] == {"branch": "main", "commitId": "abc"}


def test_generate_name_for_runs_that_must_not_collide() -> None:
    manifest = run([{"service": "app"}], generate_name=True, namespace="ci").manifest
    assert manifest["metadata"] == {"generateName": "demo-", "namespace": "ci"}


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"name": "My_App"}, "at most 63 lower-case letters"),
        ({"name": "x" * 60, "generate_name": True}, "at most 57"),
        ({"ci": {"branchName": "x"}}, "ci.branchName: unknown"),
    ],
)
def test_bad_options_are_errors(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConversionError) as info:
        convert(SERVICES, [{"service": "app"}], options=Options(**{"name": "demo", **options}))
    assert needle in str(info.value)


# -- files on disk ------------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_docker_compose_yml_is_used_when_there_is_no_codeship_services_yml(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "docker-compose.yml": "services:\n  web:\n    image: nginx\n",
            "codeship-steps.json": json.dumps([{"service": "web", "command": "nginx -t"}]),
        },
    )
    manifest = convert_directory(tmp_path).manifest
    assert manifest["metadata"]["name"] == default_name(tmp_path)
    assert manifest["spec"]["services"] == {"web": {"image": "nginx"}}


def test_codeship_files_win_over_compose_and_json(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "docker-compose.yml": "web:\n  image: compose\n",
            "codeship-services.yml": "web:\n  image: codeship\n",
            "codeship-steps.yml": "- service: web\n  command: yml\n",
            "codeship-steps.json": '[{"service": "web", "command": "json"}]',
        },
    )
    spec = convert_directory(tmp_path).manifest["spec"]
    assert spec["services"]["web"]["image"] == "codeship"
    assert spec["steps"][0]["command"] == "yml"


def test_explicit_paths_and_env_files_next_to_the_services_file(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "ci/services.yml": "app:\n  image: a\n  env_file: app.env\n",
            "ci/steps.yml": "- service: app\n",
            "ci/app.env": "A=1\n",
        },
    )
    conversion = convert_directory(
        tmp_path,
        services_path=str(tmp_path / "ci/services.yml"),
        steps_path=str(tmp_path / "ci/steps.yml"),
        options=Options(name="x"),
    )
    assert conversion.manifest["spec"]["services"]["app"]["environment"] == {"A": "1"}


def test_missing_files_are_named(tmp_path: Path) -> None:
    _write(tmp_path, {"codeship-services.yml": "app:\n  image: a\n"})
    with pytest.raises(FileError, match=r"codeship-steps\.yml, codeship-steps\.json"):
        convert_directory(tmp_path)


def test_default_name_is_a_valid_pipeline_name() -> None:
    assert default_name(Path("/src/My_Project.git")) == "my-project-git"


def test_errors_of_the_converter_and_the_compiler_come_in_one_pass() -> None:
    """A step the converter refuses keeps its place: the compiler's error about the next one
    names that step's own index, and nothing is reported about the placeholder."""
    found = errors(
        [
            {"type": "fan", "steps": [{"service": "app"}]},
            {"service": "app", "tag": "^release/(", "command": "x"},
            {"service": "app", "command": "echo 'open"},
        ]
    )
    assert [e.split(": ")[1] for e in found] == ["[0].type", "[1].tag", "[2].command"]
