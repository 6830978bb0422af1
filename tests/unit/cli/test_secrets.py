"""The command line with Codeship's encrypted files and push steps: --aes-key, --secrets,
--dockercfg-secret, --push, and the Secrets ``shipway run`` creates for its Pipeline."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from shipway.cli import common, main
from shipway.codeship.jetcrypt import encrypt

from .client_builders import FakeApi
from .test_commands import serial_run

KEY = bytes(range(32))
SERVICES = "app:\n  image: busybox:1.36\n  encrypted_env_file: env.encrypted\n"
STEPS = "- service: app\n  command: make\n"


def project(tmp_path: Path, key: bytes = KEY, steps: str = STEPS) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "codeship-services.yml").write_text(SERVICES)
    (tmp_path / "codeship-steps.yml").write_text(steps)
    (tmp_path / "env.encrypted").write_text(encrypt(b"FOO=bar\nTOKEN=t0ps3cret\n", KEY))
    (tmp_path / "codeship.aes").write_text(base64.b64encode(key).decode())
    return tmp_path


class FakeCore:
    """CoreV1Api's Secret calls, recording what was asked."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self.secrets: dict[str, dict[str, Any]] = {n: {} for n in existing or ()}
        self.calls: list[tuple[str, str]] = []

    def create_namespaced_secret(self, namespace: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.calls.append(("create", name))
        if name in self.secrets:
            raise ApiException(status=409, reason="AlreadyExists")
        self.secrets[name] = body

    def delete_namespaced_secret(self, name: str, namespace: str) -> None:
        self.calls.append(("delete", name))
        self.secrets.pop(name, None)

    def patch_namespaced_secret(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("own", name))
        self.secrets[name].setdefault("owners", []).extend(body["metadata"]["ownerReferences"])


class Api(FakeApi):
    def __init__(self, core: FakeCore, fail: bool = False) -> None:
        super().__init__(serial_run("Succeeded", 0))
        self.core = core
        self.fail = fail

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            from shipway.cli.cluster import ClusterError

            raise ClusterError(422, "admission webhook denied the request")
        created = super().create(manifest)
        return {**created, "metadata": {**created["metadata"], "uid": "uid-9"}}


def use(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> FakeApi:
    monkeypatch.setattr(common, "connect_api", lambda args: api)
    return api


def test_convert_writes_the_secrets_only_to_the_file_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path / "p")
    out = tmp_path / "secrets.yaml"
    assert main(["convert", "--dir", str(directory), "--secrets", str(out)]) == 0
    captured = capsys.readouterr()
    assert "t0ps3cret" not in captured.out + captured.err
    assert base64.b64encode(b"t0ps3cret").decode() not in captured.out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (secret,) = yaml.safe_load_all(out.read_text())
    assert base64.b64decode(secret["data"]["TOKEN"]) == b"t0ps3cret"
    pipeline = yaml.safe_load(captured.out)
    assert pipeline["spec"]["services"]["app"]["envFrom"] == [
        {"secretRef": {"name": secret["metadata"]["name"]}}
    ]
    assert "wrote 1 Secret(s)" in captured.err
    assert main(["convert", "--dir", str(directory)]) == 0
    assert "were not written" in capsys.readouterr().err


def test_a_wrong_key_fails_before_anything_is_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = use(monkeypatch, Api(FakeCore()))
    directory = project(tmp_path, key=bytes(range(1, 33)))
    assert main(["run", "--dir", str(directory), "--no-upload", "-d"]) == 2
    err = capsys.readouterr().err
    assert "cannot be decrypted with this AES key (wrong key" in err
    assert api.created is None
    assert isinstance(api, Api)
    assert api.core.calls == []


def test_an_explicit_key_file_wins_and_a_bad_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path / "p", key=bytes(range(1, 33)))
    good = tmp_path / "good.aes"
    good.write_text(base64.b64encode(KEY).decode())
    assert main(["convert", "--dir", str(directory), "--aes-key", str(good)]) == 0
    bad = tmp_path / "bad.aes"
    bad.write_text("not base64!")
    capsys.readouterr()
    assert main(["convert", "--dir", str(directory), "--aes-key", str(bad)]) == 2
    assert f"{bad}: the AES key is not base64" in capsys.readouterr().err


def test_run_creates_the_secrets_then_the_pipeline_which_owns_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    core = FakeCore()
    api = use(monkeypatch, Api(core))
    assert main(["run", "--dir", str(project(tmp_path)), "--no-upload", "-d"]) == 0
    (name,) = core.secrets
    assert core.calls == [("create", name), ("own", name)]
    (owner,) = core.secrets[name]["owners"]
    assert owner["kind"] == "Pipeline"
    assert owner["uid"] == "uid-9"
    assert "controller" not in owner  # a later run of the same files owns it too
    assert api.created is not None
    assert "t0ps3cret" not in json.dumps(api.created)


def test_a_secret_of_an_earlier_run_is_shared_and_never_deleted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = project(tmp_path)
    first = FakeCore()
    use(monkeypatch, Api(first))
    assert main(["run", "--dir", str(directory), "--no-upload", "-d"]) == 0
    core = FakeCore(existing=set(first.secrets))
    use(monkeypatch, Api(core, fail=True))
    assert main(["run", "--dir", str(directory), "--no-upload", "-d"]) == 2
    (name,) = first.secrets
    assert core.calls == [("create", name)]  # it existed: not deleted when the run failed


def test_a_pipeline_that_cannot_be_created_leaves_no_new_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    core = FakeCore()
    use(monkeypatch, Api(core, fail=True))
    assert main(["run", "--dir", str(project(tmp_path)), "--no-upload", "-d"]) == 2
    assert "admission webhook denied" in capsys.readouterr().err
    assert core.secrets == {}
    assert [call for call, _ in core.calls] == ["create", "delete"]


def test_run_skips_pushes_unless_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = STEPS + (
        "- type: push\n  service: built\n  image_name: registry.example/team/app\n"
        "  dockercfg_service: app\n"
    )
    directory = project(tmp_path, steps=steps)
    (directory / "codeship-services.yml").write_text(SERVICES + "built:\n  build: .\n")
    api = use(monkeypatch, Api(FakeCore()))
    assert main(["run", "--dir", str(directory)]) == 0
    assert api.created is not None
    assert api.created["spec"]["push"] is False
    assert "1 push step(s) will be skipped: add --push to push" in capsys.readouterr().out
    api = use(monkeypatch, Api(FakeCore()))
    assert main(["run", "--dir", str(directory), "--push", "-d"]) == 0
    assert api.created is not None
    assert api.created["spec"]["push"] is True


def test_a_named_dockercfg_secret_needs_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "codeship-services.yml").write_text("app:\n  build: .\n")
    (tmp_path / "codeship-steps.yml").write_text(
        "- type: push\n  service: app\n  image_name: quay.io/team/app\n"
        "  encrypted_dockercfg_path: dockercfg.encrypted\n"
    )
    argv = ["convert", "--dir", str(tmp_path), "--upload"]
    assert main(argv) == 2
    assert "--dockercfg-secret NAME" in capsys.readouterr().err
    assert main([*argv, "--dockercfg-secret", "regcred"]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)["spec"]
    assert spec["steps"][0]["dockercfgSecret"] == "regcred"
    assert spec["dockercfgSecret"] == "regcred"  # pushes that name none use it too


def test_a_push_steps_log_is_its_push_container_and_its_row_shows_the_digest() -> None:
    from shipway.cli.follow import log_container
    from shipway.cli.statustree import step_detail
    from shipway.models import StepStatus

    digest = "sha256:" + "a" * 64
    push = StepStatus(
        id="2", name="publish", service="app", phase="Succeeded", image="r/app:v1", digest=digest
    )
    assert log_container(push) == "push"
    assert step_detail(push) == f"pushed r/app:v1 ({digest})"
    run = StepStatus(id="1", name="test", service="my_app", phase="Succeeded")
    assert log_container(run) == "my-app"
