"""``shipway exec SERVICE -- COMMAND`` against a scripted cluster: what it creates, its exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipway.cli import common, follow, main
from shipway.cli.exec import exit_code, one_step

from .client_builders import FakeApi, pipeline, step

SERVICES = """\
app:
  image: busybox:1.36
  links: [db]
  volumes: ["./data:/data"]
db:
  image: redis:7
"""


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "RETRY_SECONDS", 0.01)


def one_run(phase: str, code: int | None) -> list[dict[str, Any]]:
    running = step("1", "sh -c 'exit 3'", "Running", pod="p-1", started=0)
    ended = step("1", "sh -c 'exit 3'", phase, pod="p-1", exit_code=code, started=0, finished=2)
    return [
        pipeline("Pending", [], started=None, spec={}),
        pipeline("Running", [running], progress="0/1", spec={}),
        pipeline(phase, [ended], progress="1/1", finished=2, spec={}),
    ]


def project(tmp_path: Path) -> Path:
    (tmp_path / "codeship-services.yml").write_text(SERVICES)
    return tmp_path


def test_exec_runs_one_step_with_the_services_links_and_volumes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api = FakeApi(one_run("Failed", 3), {"p-1": "from the command\n"})
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    argv = ["exec", "--dir", str(project(tmp_path)), "--no-upload", "--name", "proj"]
    assert main([*argv, "app", "--", "sh", "-c", "exit 3"]) == 3
    assert "(step: sh -c 'exit 3') from the command" in capsys.readouterr().out
    assert api.created is not None
    spec = api.created["spec"]
    assert api.created["metadata"] == {"generateName": "proj-"}
    assert spec["steps"] == [{"service": "app", "command": ["sh", "-c", "exit 3"]}]
    assert spec["services"]["app"]["links"] == ["db"]
    assert spec["services"]["app"]["volumes"] == ["./data:/data"]
    assert spec["push"] is False


def test_exec_needs_no_steps_file_and_refuses_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api = FakeApi(one_run("Succeeded", 0))
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    directory = str(project(tmp_path))
    assert main(["exec", "--dir", directory, "--no-upload", "app"]) == 0
    assert api.created is not None
    assert api.created["spec"]["steps"] == [{"service": "app"}]  # the default command
    steps = tmp_path / "s.yml"
    steps.write_text("- service: app\n")
    assert main(["exec", "--dir", directory, "--steps-path", str(steps), "app"]) == 2
    assert "drop --steps-path" in capsys.readouterr().err


def test_an_unknown_service_is_refused_before_anything_is_created(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api = FakeApi(one_run("Succeeded", 0))
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    assert main(["exec", "--dir", str(project(tmp_path)), "nope", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "the command line" in err
    assert "nope" in err
    assert api.created is None


def test_one_step_keeps_every_argument_as_it_is() -> None:
    assert one_step("app", ["echo", "a b", "'c'", "&&"]) == [
        {"service": "app", "command": ["echo", "a b", "'c'", "&&"]}
    ]
    assert one_step("app", []) == [{"service": "app"}]


@pytest.mark.parametrize(
    ("phase", "code", "expected"),
    [
        ("Succeeded", 0, 0),
        ("Failed", 7, 7),
        ("Failed", None, 1),  # never ran to an exit: a failed build, a timeout
        ("Failed", 0, 1),  # exited 0 but the pipeline failed (the pod was lost after)
        ("Cancelled", 143, 143),
    ],
)
def test_the_exit_code_is_the_commands(phase: str, code: int | None, expected: int) -> None:
    assert exit_code(one_run(phase, code)[-1]) == expected


def test_a_pipeline_that_ended_before_its_step_exits_1() -> None:
    assert exit_code(pipeline("Failed", [], spec={})) == 1
