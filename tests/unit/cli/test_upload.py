"""Uploads: what is sent (ignore rules, no .git), and the receiver's end-marker handshake.

The receiver is the real script run by busybox's shell and tar, as in the receiver pod.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipway.cli import main
from shipway.cli.ignore import IgnoreRules
from shipway.cli.upload import list_tree, write_tar
from shipway.engine.pods.scripts import RECEIVE, UPLOAD_MARKER
from shipway.engine.termination import parse_report

from .client_builders import FakeApi
from .test_commands import serial_run, use

BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="busybox (busybox-static) is needed")


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*.log"], "app.log", True),
        (["*.log"], "logs/app.log", False),  # * stays within one path element
        (["**/*.log"], "logs/deep/app.log", True),
        (["node_modules"], "node_modules/x/index.js", True),  # a directory's contents
        (["/build"], "build/out.o", True),
        (["./tmp/"], "tmp/a", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["!README.md", "*.md"], "README.md", True),  # the last matching line wins
        (["docs/?.txt"], "docs/a.txt", True),
        (["docs/?.txt"], "docs/ab.txt", False),
        (["[ab].txt"], "b.txt", True),
        (["# comment", ""], "# comment", False),
        (["a.b"], "axb", False),  # a dot is a dot
    ],
)
def test_shipwayignore_follows_dockerignore_matching(
    patterns: list[str], path: str, ignored: bool
) -> None:
    assert IgnoreRules(patterns).ignored(path) is ignored


def project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.rb").write_text("puts 1\n")
    script = root / "artifact.sh"
    script.write_text("#!/bin/sh\necho built\n")
    script.chmod(0o755)
    (root / "debug.log").write_text("noise\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "node_modules" / "left").mkdir(parents=True)
    (root / "node_modules" / "left" / "pad.js").write_text("x")
    (root / ".shipwayignore").write_text("*.log\nnode_modules\n")
    os.symlink("/etc/passwd", root / "outside")
    return root


def tar_of(root: Path) -> bytes:
    sent = bytearray()
    write_tar(root, list_tree(root), sent.extend)
    return bytes(sent)


def test_an_upload_sends_the_tree_as_jet_steps_sees_it_marker_last(tmp_path: Path) -> None:
    root = project(tmp_path / "proj")
    data = tar_of(root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[-1] == UPLOAD_MARKER
    assert set(names[:-1]) == {"src", "src/app.rb", "artifact.sh", ".shipwayignore", "outside"}
    by_name = {m.name: m for m in members}
    assert by_name["artifact.sh"].mode & 0o111, "modes are kept"
    assert by_name["outside"].issym()
    assert by_name["outside"].linkname == "/etc/passwd"
    assert {(m.uid, m.gid, m.uname) for m in members} == {(0, 0, "")}
    marker = tar_extract(data, UPLOAD_MARKER)
    sizes = sum((root / name).stat().st_size for name in ("src/app.rb", "artifact.sh"))
    sizes += (root / ".shipwayignore").stat().st_size
    assert marker == f"3 {sizes}\n".encode()


def tar_extract(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def receive(tmp_path: Path, stream: bytes) -> tuple[int, dict[str, str], Path]:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    report = tmp_path / "report"
    done = subprocess.run(
        [str(BUSYBOX), "sh", "-c", RECEIVE],
        input=stream,
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "SHIPWAY_WORKSPACE": str(workspace),
            "SHIPWAY_REPORT": str(report),
        },
        capture_output=True,
        check=False,
        timeout=30,
    )
    return done.returncode, parse_report(report.read_text()), workspace


@pytest.fixture
def busybox_tar(tmp_path: Path) -> None:
    """The receiver pod's tar: busybox's, not the host's GNU tar."""
    assert BUSYBOX is not None
    (tmp_path / "bin").mkdir()
    for applet in ("tar", "rm", "cat", "tee", "head", "tail", "base64", "tr"):
        (tmp_path / "bin" / applet).symlink_to(BUSYBOX)


@needs_busybox
def test_the_receiver_unpacks_a_complete_upload_and_reports_it(
    tmp_path: Path, busybox_tar: None
) -> None:
    root = project(tmp_path / "proj")
    code, facts, workspace = receive(tmp_path, tar_of(root))
    assert code == 0, facts
    assert facts["files"] == "3"
    assert (workspace / "src" / "app.rb").read_text() == "puts 1\n"
    assert os.access(workspace / "artifact.sh", os.X_OK)
    assert not (workspace / UPLOAD_MARKER).exists()
    assert not (workspace / "debug.log").exists()
    assert os.readlink(workspace / "outside") == "/etc/passwd"


@needs_busybox
@pytest.mark.parametrize("cut", ["mid-file", "member-boundary", "nothing"])
def test_a_cut_upload_fails_the_receiver(tmp_path: Path, busybox_tar: None, cut: str) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(200_000))
    (root / "small.txt").write_text("x")
    data = tar_of(root)
    if cut == "mid-file":
        stream = data[:100_000]
    elif cut == "member-boundary":
        # everything before the marker's header: a tar that ends cleanly, without the marker
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            marker = tar.getmember(UPLOAD_MARKER)
        stream = data[: marker.offset]
    else:
        stream = b""
    code, facts, _ = receive(tmp_path, stream)
    assert code != 0
    assert facts["reason"] == "UploadInterrupted"
    assert "interrupted" in facts["message"] or "cut short" in facts["message"]


def test_run_dir_uploads_the_directory_to_the_receiver(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = project(tmp_path / "proj")
    (root / "codeship-services.yml").write_text(
        "app:\n  image: busybox:1.36\n  volumes: [./:/src]\n"
    )
    (root / "codeship-steps.yml").write_text("- service: app\n  command: make\n")
    api: Any = use(monkeypatch, FakeApi(serial_run("Succeeded", 0)))
    assert main(["run", "--dir", str(root), "--name", "proj", "--detach"]) == 0
    assert api.created["spec"]["source"] == {"upload": {}}
    socket = api.attached
    assert socket is not None
    assert socket.container == "upload"
    assert socket.stdin_closed, "the end of the input is signalled"
    with tarfile.open(fileobj=io.BytesIO(bytes(socket.data))) as tar:
        names = tar.getnames()
    assert "codeship-services.yml" in names
    assert names[-1] == UPLOAD_MARKER
    err = capsys.readouterr().err
    assert "workspace starts empty" not in err


def test_run_f_with_an_upload_needs_source_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "p.yaml"
    manifest.write_text(
        "apiVersion: shipway.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: p}\n"
        "spec:\n  source: {upload: {}}\n  services: {app: {image: busybox:1.36}}\n"
        "  steps: [{service: app, command: make}]\n"
    )
    api: Any = use(monkeypatch, FakeApi(serial_run("Succeeded", 0)))
    assert main(["run", "-f", str(manifest), "--detach"]) == 2
    assert "expects an upload: give --source DIR" in capsys.readouterr().err
    assert api.created is None


def test_convert_git_remote_takes_origin_and_head_and_warns_of_local_changes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "codeship-services.yml").write_text(
        "app:\n  image: busybox:1.36\n  volumes: [./:/src]\n"
    )
    (root / "codeship-steps.yml").write_text("- service: app\n  command: make\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
    }
    env["GIT_COMMITTER_EMAIL"] = "a@b"
    for args in (
        ["init", "-q", "-b", "feature/x"],
        ["add", "-A"],
        ["commit", "-qm", "one"],
        ["remote", "add", "origin", "git@git.example.org:org/app.git"],
    ):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    (root / "codeship-steps.yml").write_text("- service: app\n  command: make all\n")
    assert main(["convert", "--dir", str(root), "--git-remote", "-o", "json"]) == 0
    out, err = capsys.readouterr()
    spec = json.loads(out)["spec"]
    assert spec["source"] == {"git": {"url": "git@git.example.org:org/app.git", "revision": head}}
    assert spec["ci"] == {"branch": "feature/x"}
    assert "uncommitted changes" in err
    assert "workspace starts empty" not in err
    subprocess.run(["git", "remote", "set-url", "origin", "/srv/app.git"], cwd=root, check=True)
    assert main(["convert", "--dir", str(root), "--git-remote"]) == 2
    assert "which a cluster cannot fetch from" in capsys.readouterr().err


def _checkout(root: Path, origin: str | None) -> str:
    """A git checkout of ``root`` (with ``origin`` as its remote); its HEAD commit."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b"}
    env |= {"GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    steps: list[list[str]] = [["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "1"]]
    if origin is not None:
        steps.append(["remote", "add", "origin", origin])
    for args in steps:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def _built_project(root: Path) -> Path:
    root.mkdir()
    (root / "codeship-services.yml").write_text("app:\n  build: .\n")
    (root / "codeship-steps.yml").write_text("- service: app\n  command: make\n")
    return root


def test_convert_dir_of_a_git_checkout_uses_it_as_the_source_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue #28: `shipway convert --dir .`, the command the docs show first, converts a
    project that builds: the checkout is the source, at the commit checked out."""
    root = _built_project(tmp_path / "proj")
    head = _checkout(root, "https://git.example.org/org/app.git")
    assert main(["convert", "--dir", str(root), "-o", "json"]) == 0
    out, err = capsys.readouterr()
    spec = json.loads(out)["spec"]
    assert spec["source"] == {
        "git": {"url": "https://git.example.org/org/app.git", "revision": head}
    }
    assert spec["ci"] == {"branch": "main"}
    assert f"source: https://git.example.org/org/app.git at {head[:12]}" in err
    assert main(["convert", "--dir", str(root), "--no-source"]) == 2
    assert capsys.readouterr().err.splitlines()[0].startswith("error: ")
    assert main(["convert", "--dir", str(root), "--upload", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["source"] == {"upload": {}}


@pytest.mark.parametrize("origin", [None, "/srv/app.git"])
def test_convert_dir_without_a_usable_remote_first_names_the_flag_missing(
    origin: str | None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = _built_project(tmp_path / "proj")
    _checkout(root, origin)
    assert main(["convert", "--dir", str(root)]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert (
        "a build needs the project's files (app build from the checkout): give a source, " in first
    )
    assert "--git-remote" in first
    assert "--upload" in first


def test_a_subdirectory_of_a_checkout_is_not_its_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Its ./ would not be the checkout's root: no guess, the flag is asked for."""
    (tmp_path / "README").write_text("x")
    project = _built_project(tmp_path / "sub")
    _checkout(tmp_path, "https://git.example.org/org/app.git")
    assert main(["convert", "--dir", str(project)]) == 2
    assert "give a source" in capsys.readouterr().err.splitlines()[0]


def test_services_path_is_relative_to_dir_and_name_is_written_as_a_pipeline_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "proj"
    (root / "ci").mkdir(parents=True)
    (root / "ci" / "services.yml").write_text("app:\n  image: busybox:1.36\n")
    (root / "ci" / "steps.yml").write_text("- service: app\n  command: make\n")
    monkeypatch.chdir(tmp_path)
    argv = ["convert", "--dir", "proj", "--services-path", "ci/services.yml"]
    argv += ["--steps-path", "ci/steps.yml", "--name", "My_App", "-o", "json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["metadata"] == {"name": "my-app"}
    assert "--name 'My_App' written as 'my-app'" in err
    # a name too long for generateName (shipway run) is cut as the directory's name would be
    long = "Project_" + "x" * 60
    assert (
        main(
            [
                "convert",
                "--dir",
                "proj",
                "--services-path",
                "ci/services.yml",
                "--steps-path",
                "ci/steps.yml",
                "--name",
                long,
                "--generate-name",
            ]
        )
        == 0
    )
    assert len(yaml.safe_load(capsys.readouterr().out)["metadata"]["generateName"]) == 58
    # a path given from the working directory still works
    argv = ["convert", "--dir", "proj", "--services-path", "proj/ci/services.yml"]
    assert main([*argv, "--steps-path", "proj/ci/steps.yml"]) == 0


def test_render_into_a_reader_that_leaves_ends_quietly(tmp_path: Path) -> None:
    """`shipway render FILE | head` ended in a BrokenPipeError traceback."""
    many = {
        "apiVersion": "shipway.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "many"},
        "spec": {
            "services": {"app": {"image": "busybox:1.36"}},
            "steps": [{"service": "app", "command": f"echo {n}"} for n in range(150)],
        },
    }
    path = tmp_path / "many.yaml"
    path.write_text(json.dumps(many))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        f"{sys.executable} -m shipway render {path} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.stdout == "apiVersion: v1\n"
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
