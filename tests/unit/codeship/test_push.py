"""Codeship push steps and registry credentials through the converter (steps and services)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shipway.codeship import ConversionError, Options, convert_directory
from shipway.codeship.jetcrypt import encrypt
from shipway.compiler.pipeline import compile_pipeline

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
UPLOAD: dict[str, Any] = {"upload": {}}
AUTH = base64.b64encode(b"ci:s3cret").decode()
CONFIG_JSON = {"auths": {"quay.io": {"auth": AUTH}}}
OLD_DOCKERCFG = {"https://index.docker.io/v1/": {"auth": AUTH, "email": ""}}


def project(
    tmp_path: Path, services: dict[str, Any], steps: list[Any], files: dict[str, str] | None = None
) -> Path:
    (tmp_path / "codeship-services.yml").write_text(json.dumps(services))
    (tmp_path / "codeship-steps.yml").write_text(json.dumps(steps))
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    return tmp_path


def convert(directory: Path, **options: Any) -> Any:
    return convert_directory(
        directory, options=Options(name="app", source=UPLOAD, **{"aes_key": KEY, **options})
    )


def errors(directory: Path, **options: Any) -> list[str]:
    with pytest.raises(ConversionError) as info:
        convert(directory, **options)
    return [str(e) for e in info.value.errors]


SERVICES = {"app": {"build": "."}, "gen": {"image": "codeship/ecr-dockercfg-generator"}}
PUSH = {
    "name": "push",
    "type": "push",
    "service": "app",
    "image_name": "quay.io/team/app",
    "image_tag": "{{ .Branch }}-{{ .CommitID }}",
    "registry": "quay.io",
    "encrypted_dockercfg_path": "dockercfg.encrypted",
}


def test_a_push_step_with_encrypted_credentials_becomes_a_dockercfg_secret(
    tmp_path: Path,
) -> None:
    files = {"dockercfg.encrypted": encrypt(json.dumps(CONFIG_JSON).encode(), KEY)}
    steps = [{"service": "app", "command": "true"}, PUSH, {**PUSH, "name": "again"}]
    conversion = convert(project(tmp_path, SERVICES, steps, files))
    (secret,) = conversion.secrets  # the same file, once
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert json.loads(base64.b64decode(secret["data"][".dockerconfigjson"])) == CONFIG_JSON
    name = secret["metadata"]["name"]
    assert name.startswith("app-dockercfg-")
    step = conversion.manifest["spec"]["steps"][1]
    assert step == {
        "name": "push",
        "type": "push",
        "service": "app",
        "image_name": "quay.io/team/app",
        "image_tag": "{{ .Branch }}-{{ .CommitID }}",
        "registry": "quay.io",
        "dockercfgSecret": name,
    }
    assert AUTH not in json.dumps(conversion.manifest)
    push = compile_pipeline(conversion.manifest["spec"]).runs[1].push
    assert push is not None
    assert push.credentials.secret == name


def test_the_old_dockercfg_form_is_stored_as_config_json(tmp_path: Path) -> None:
    files = {"dockercfg.encrypted": encrypt(json.dumps(OLD_DOCKERCFG).encode(), KEY)}
    (secret,) = convert(project(tmp_path, SERVICES, [PUSH], files)).secrets
    stored = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert stored == {"auths": OLD_DOCKERCFG}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (encrypt(json.dumps(CONFIG_JSON).encode(), OTHER_KEY), "wrong key"),
        (encrypt(b"FOO=bar\n", KEY), "not JSON"),
        (encrypt(b'["quay.io"]', KEY), "not a JSON object"),
    ],
)
def test_credentials_that_do_not_decrypt_to_a_dockercfg_are_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    found = errors(project(tmp_path, SERVICES, [PUSH], {"dockercfg.encrypted": content}))
    (error,) = found
    assert error.startswith(f"{tmp_path}/codeship-steps.yml: [0].encrypted_dockercfg_path: ")
    assert message in error
    assert AUTH not in error


def test_without_a_key_a_named_secret_stands_in_for_every_credential(tmp_path: Path) -> None:
    steps = [PUSH, {**PUSH, "name": "gen", "dockercfg_service": "gen"}]
    del steps[1]["encrypted_dockercfg_path"]
    directory = project(tmp_path, SERVICES, steps)
    (error,) = errors(directory, aes_key=None)
    assert "--dockercfg-secret NAME" in error
    conversion = convert(directory, aes_key=None, dockercfg_secret="regcred")
    assert conversion.secrets == ()
    assert [s.get("dockercfgSecret") for s in conversion.manifest["spec"]["steps"]] == [
        "regcred",
        "regcred",
    ]
    assert "dockercfg_service" not in conversion.manifest["spec"]["steps"][1]


def test_a_generator_service_is_kept_for_pushes_and_ignored_for_run_steps(tmp_path: Path) -> None:
    push = {k: v for k, v in PUSH.items() if k != "encrypted_dockercfg_path"}
    steps = [
        {"service": "app", "command": "true", "dockercfg_service": "gen"},
        {"type": "serial", "dockercfg_service": "gen", "steps": [push]},
        {**push, "name": "both", "dockercfg_service": "gen", "encrypted_dockercfg_path": "c.enc"},
    ]
    files = {"c.enc": encrypt(json.dumps(CONFIG_JSON).encode(), KEY)}
    conversion = convert(project(tmp_path, SERVICES, steps, files))
    run, group, both = conversion.manifest["spec"]["steps"]
    assert "dockercfg_service" not in run
    assert group["dockercfg_service"] == "gen"
    assert "dockercfg_service" not in both
    assert both["dockercfgSecret"].startswith("app-dockercfg-")
    warned = {w.where: w.message for w in conversion.warnings}
    assert "ignored on a run step" in warned["[0].dockercfg_service"]
    assert "takes precedence" in warned["[2].dockercfg_service"]
    compiled = compile_pipeline(conversion.manifest["spec"])
    pushed = compiled.runs[1].push
    assert pushed is not None
    assert pushed.credentials.generator == "gen"


def test_run_steps_and_services_pull_with_their_credentials(tmp_path: Path) -> None:
    files = {"c.enc": encrypt(json.dumps(CONFIG_JSON).encode(), KEY)}
    services = {
        "app": {"image": "quay.io/team/private", "encrypted_dockercfg_path": "c.enc"},
        "tool": {"image": "busybox"},
    }
    steps = [{"service": "tool", "command": "true", "encrypted_dockercfg_path": "c.enc"}]
    conversion = convert(project(tmp_path, services, steps, files))
    (secret,) = conversion.secrets
    name = secret["metadata"]["name"]
    spec = conversion.manifest["spec"]
    assert spec["imagePullSecrets"] == [{"name": name}]
    assert spec["steps"][0]["dockercfgSecret"] == name
    assert compile_pipeline(spec).runs[0].pull_secret == name


def test_encrypted_build_args_become_a_secret_the_build_reads(tmp_path: Path) -> None:
    services = {
        "app": {
            "build": {
                "args": {"PLAIN": "x"},
                "encrypted_args": encrypt(b"INLINE=1\n", KEY),
                "encrypted_args_file": "args.encrypted",
            }
        }
    }
    files = {"args.encrypted": encrypt(b"FROMFILE=supersecret\nINLINE=2\n", KEY)}
    steps = [{"service": "app", "command": "true"}]
    conversion = convert(project(tmp_path, services, steps, files))
    (secret,) = conversion.secrets
    assert secret["metadata"]["name"].startswith("app-app-args-")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"FROMFILE": "supersecret", "INLINE": "2"}  # the file wins, as on Codeship
    build = conversion.manifest["spec"]["services"]["app"]["build"]
    assert build["argsFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert build["args"] == {"PLAIN": "x"}
    assert "supersecret" not in json.dumps(conversion.manifest)
    (warning,) = [w for w in conversion.warnings if w.where == "app.build"]
    assert "BuildKit secret" in warning.message
    assert "supersecret" not in warning.message


def test_a_push_to_localhost_is_refused_where_it_is_written(tmp_path: Path) -> None:
    push = {k: v for k, v in PUSH.items() if k != "encrypted_dockercfg_path"}
    push["image_name"] = "localhost:5000/myapp"
    with pytest.raises(ConversionError) as caught:
        convert(project(tmp_path, SERVICES, [push]))
    (error,) = caught.value.errors
    assert error.where == "[0].image_name"
    assert "where localhost is the pod itself and no registry listens" in error.message
