"""The shipway commands end to end against a scripted cluster (no Kubernetes needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipway.cli import common, follow, main
from shipway.cli.run import prepare_manifest

from .client_builders import FakeApi, failed_run, pipeline, step

RUN_SPEC: dict[str, Any] = {
    "services": {"app": {"image": "busybox:1.36"}},
    "steps": [
        {"name": "build", "service": "app", "command": "make"},
        {"name": "test", "service": "app", "command": "make test"},
    ],
}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "RETRY_SECONDS", 0.01)


def use(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> FakeApi:
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    return api


def serial_run(last: str, exit_code: int, message: str | None = None) -> list[dict[str, Any]]:
    build_done = step("1", "build", "Succeeded", pod="p-1", exit_code=0, started=0, finished=3)
    return [
        pipeline("Pending", [], started=None, spec=RUN_SPEC),
        pipeline(
            "Running",
            [step("1", "build", "Running", pod="p-1", started=0), step("2", "test")],
            progress="0/2",
            spec=RUN_SPEC,
        ),
        pipeline(
            "Running",
            [build_done, step("2", "test", "Running", pod="p-2", started=4)],
            progress="1/2",
            spec=RUN_SPEC,
        ),
        pipeline(
            last,
            [
                build_done,
                step(
                    "2",
                    "test",
                    last,
                    pod="p-2",
                    exit_code=exit_code,
                    started=4,
                    finished=9,
                    message=message,
                ),
            ],
            progress="2/2",
            finished=9,
            spec=RUN_SPEC,
            message=None if last == "Succeeded" else "failed: test",
        ),
    ]


LOGS = {"p-1": "compiling\ndone\n", "p-2": "ok 1\nok 2\npartial line without newline"}


def step_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("(step:")]


def test_run_streams_logs_in_order_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api = use(monkeypatch, FakeApi(serial_run("Succeeded", 0), LOGS))
    manifest = tmp_path / "p.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "shipway.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "demo"},
                "spec": RUN_SPEC,
            }
        )
    )
    assert main(["run", "-f", str(manifest), "--branch", "main"]) == 0
    out = capsys.readouterr().out
    assert step_lines(out) == [
        "(step: build)",
        "(step: build) compiling",
        "(step: build) done",
        "(step: build) success ✔",
        "(step: test)",
        "(step: test) ok 1",
        "(step: test) ok 2",
        "(step: test) partial line without newline",
        "(step: test) success ✔",
    ]
    assert "\x1b[" not in out  # not a terminal: no colours, no cursor movement
    assert out.splitlines()[-1] == "Pipeline ci/demo-x1 succeeded in 9s"
    assert api.created is not None
    assert api.created["metadata"] == {"generateName": "demo-"}
    assert api.created["spec"]["ci"] == {"branch": "main"}


def test_run_exits_non_zero_with_the_reason_when_a_step_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    use(monkeypatch, FakeApi(serial_run("Failed", 2, "container exited with a 2 code"), LOGS))
    manifest = tmp_path / "p.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "shipway.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "demo"},
                "spec": RUN_SPEC,
            }
        )
    )
    assert main(["run", "-f", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert step_lines(out)[-1] == "(step: test) error ✗ container exited with a 2 code"
    assert "│" not in out.split("Pipeline ci/demo-x1: Failed")[1]  # a flat tree: two steps
    assert out.splitlines()[-1] == "Pipeline ci/demo-x1 failed in 9s (failed: test)"


def test_run_from_codeship_files_with_detach(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "codeship-services.yml").write_text("app:\n  image: busybox:1.36\n  ports: [80]\n")
    (tmp_path / "codeship-steps.yml").write_text("- service: app\n  command: make\n")
    api = use(monkeypatch, FakeApi(serial_run("Succeeded", 0)))
    argv = ["run", "--dir", str(tmp_path), "--name", "proj", "--detach", "--no-upload"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == "demo-x1\n"
    assert "app.ports: ignored" in captured.err
    assert api.created is not None
    assert api.created["metadata"] == {"generateName": "proj-"}
    assert api.created["spec"]["steps"] == [{"service": "app", "command": "make"}]
    assert "source" not in api.created["spec"]


def test_run_refuses_an_invalid_pipeline_before_creating_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    api = use(monkeypatch, FakeApi(serial_run("Succeeded", 0)))
    bad = {**RUN_SPEC, "steps": [{"service": "nope", "command": "x"}]}
    manifest = tmp_path / "p.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "shipway.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "demo"},
                "spec": bad,
            }
        )
    )
    assert main(["run", "-f", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "error: spec.steps[0].service: unknown service 'nope'" in err
    assert api.created is None


def test_prepare_manifest_makes_a_fresh_run() -> None:
    manifest = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "demo", "resourceVersion": "7", "uid": "u", "labels": {"a": "b"}},
        "spec": {"ci": {"branch": "dev", "commitId": "abc"}},
        "status": {"phase": "Succeeded"},
    }
    assert prepare_manifest(manifest, {"branch": "main"}, "ci") == {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"generateName": "demo-", "labels": {"a": "b"}, "namespace": "ci"},
        "spec": {"ci": {"branch": "main", "commitId": "abc"}},
    }


# -- status, logs, cancel, list -----------------------------------------------------------------


def test_status_prints_the_tree(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, FakeApi([failed_run()]))
    assert main(["status", "demo-x1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Pipeline ci/demo-x1: Failed (4/4) in 42s"
    assert any("✗ lint" in line and "exit 1" in line for line in lines)
    assert main(["status", "demo-x1", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["phase"] == "Failed"


def test_status_of_an_unknown_pipeline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, FakeApi([failed_run()]))
    assert main(["status", "nope"]) == 2
    assert "pipeline 'nope' not found in namespace 'ci'" in capsys.readouterr().err


def test_logs_of_every_step_or_of_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(
        monkeypatch,
        FakeApi([failed_run()], {"p-1": "built\n", "p-3": "lint says no\n", "p-4": "sent\n"}),
    )
    assert main(["logs", "demo-x1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "(step: build) built",
        "(step: lint) lint says no",
        "(step: notify) sent",
    ]
    assert main(["logs", "demo-x1", "--step", "lint", "--no-prefix"]) == 0
    assert capsys.readouterr().out == "lint says no\n"
    assert main(["logs", "demo-x1", "--step", "lnt"]) == 2
    assert "no step 'lnt'; the steps are: 'build', 'unit'" in capsys.readouterr().err


def test_logs_follow_prints_results_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    states = serial_run("Succeeded", 0)
    use(monkeypatch, FakeApi(states[1:], LOGS))
    assert main(["logs", "demo-x1", "-f", "--step", "test"]) == 0
    assert step_lines(capsys.readouterr().out) == [
        "(step: test)",
        "(step: test) ok 1",
        "(step: test) ok 2",
        "(step: test) partial line without newline",
        "(step: test) success ✔",
    ]


def test_cancel_patches_a_running_pipeline_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    running = use(monkeypatch, FakeApi(serial_run("Succeeded", 0)[1:2]))
    assert main(["cancel", "demo-x1"]) == 0
    assert running.cancelled == ["demo-x1"]
    assert capsys.readouterr().out == "pipeline demo-x1 cancelling\n"
    done = use(monkeypatch, FakeApi([failed_run()]))
    assert main(["cancel", "demo-x1"]) == 0
    assert done.cancelled == []
    assert capsys.readouterr().out == "pipeline demo-x1 has already failed\n"


def test_list(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use(monkeypatch, FakeApi([failed_run()]))
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "PROGRESS", "STEP", "AGE"]
    assert lines[1].split()[:3] == ["demo-x1", "Failed", "4/4"]


# -- convert -------------------------------------------------------------------------------------


def test_convert_prints_the_manifest_and_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "codeship-services.yml").write_text("app:\n  image: busybox\n  cached: true\n")
    (tmp_path / "codeship-steps.yml").write_text("- service: app\n  tag: ^v1\\.\n")
    assert main(["convert", "--dir", str(tmp_path), "--name", "demo", "--tag", "v1.2"]) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out) == {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "demo"},
        "spec": {
            "services": {"app": {"image": "busybox"}},
            "steps": [{"service": "app", "tag": "^v1\\."}],
            "ci": {"tag": "v1.2"},
        },
    }
    assert captured.err.startswith("warning: ")
    assert main(["convert", "--dir", str(tmp_path), "-q", "-o", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["kind"] == "Pipeline"
    assert captured.err == ""


def test_convert_reports_every_error_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "codeship-services.yml").write_text(
        "app:\n  build: .\n  encrypted_env_file: env.encrypted\n"
    )
    (tmp_path / "codeship-steps.yml").write_text("- type: push\n  service: app\n")
    assert main(["convert", "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    # the first line names the flag a build needs (the directory is no git checkout); then
    # the encrypted file (no key) and the push without image_name
    assert captured.err.splitlines()[0] == errors[0]
    assert errors[0].endswith(
        "codeship-services.yml: a build needs the project's files (app build from the "
        "checkout): give a source, --git-remote (the directory's origin at its HEAD commit), "
        "--git-url URL, or --upload (shipway run --dir uploads the directory); --prebuilt "
        "runs build.image instead"
    )
    assert [e.split(": ")[2] for e in errors[1:]] == ["app.encrypted_env_file", "[0].image_name"]
    assert captured.err.splitlines()[-1] == "shipway: 3 problem(s): no Pipeline written"


def test_env_secret_needs_service_and_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["convert", "--dir", str(tmp_path), "--env-secret", "app"]) == 2
    assert "expected SERVICE=SECRET" in capsys.readouterr().err


def test_logs_show_a_pods_escapes_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 30: ESC[2K + CR erased a log line and wrote a fake one over it; OSC retitled."""
    hostile = "boom\x1b[2K\r(step: lint) success ✔\x1b]0;pwned\x07\r\nnext\n"
    use(monkeypatch, FakeApi([failed_run()], {"p-3": hostile}))
    for flags in ([], ["--no-prefix"]):
        assert main(["logs", "demo-x1", "--step", "lint", *flags]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out
        assert "\r" not in out
        assert "boom\\x1b[2K\\r(step: lint) success ✔\\x1b]0;pwned\\a\n" in out
        assert out.endswith("next\n")


def test_run_prints_the_values_of_the_secrets_it_names_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    logs = {**LOGS, "p-1": "using token hunter22-token\n"}
    api = use(monkeypatch, FakeApi(serial_run("Succeeded", 0), logs))
    api.secrets["ci-env"] = {"data": {"TOKEN": "aHVudGVyMjItdG9rZW4="}}  # hunter22-token
    spec = json.loads(json.dumps(RUN_SPEC))
    spec["services"]["app"]["envFrom"] = [{"secretRef": {"name": "ci-env"}}]
    manifest = tmp_path / "p.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "shipway.dev/v1alpha1",
                "kind": "Pipeline",
                "metadata": {"name": "demo"},
                "spec": spec,
            }
        )
    )
    assert main(["run", "-f", str(manifest)]) == 0
    out = capsys.readouterr().out
    assert "(step: build) using token ***" in out
    assert "hunter22" not in out
