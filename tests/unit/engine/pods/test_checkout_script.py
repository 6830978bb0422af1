"""The checkout pod's script, run by busybox's shell with the host's Debian git (the same git
the image is built from) against real repositories on disk: what it checks out and reports."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from localkube.images.git import GIT_IMAGE
from shipway.engine.pods.scripts import CHECKOUT
from shipway.engine.settings import DEFAULT_GIT_IMAGE
from shipway.engine.termination import parse_report

BUSYBOX = shutil.which("busybox")
GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(
    BUSYBOX is None or GIT is None, reason="busybox-static and git are needed"
)


def test_the_operator_default_image_is_the_one_localkube_builds() -> None:
    assert DEFAULT_GIT_IMAGE == GIT_IMAGE


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ann Dev",
        "GIT_AUTHOR_EMAIL": "ann@example.org",
        "GIT_COMMITTER_NAME": "Carl Committer",
        "GIT_COMMITTER_EMAIL": "carl@example.org",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare repository: main (2 commits, tag v1 on the first), branch big (a 300 kB file)."""
    root = tmp_path_factory.mktemp("repo")
    bare = root / "origin.git"
    work = root / "work"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(root, "init", "-q", "-b", "main", str(work))
    (work / "a.txt").write_text("first\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "First commit\n\nwith a body")
    git(work, "tag", "v1")
    (work / "b.txt").write_text("second\n")
    git(work, "add", ".")
    git(work, "commit", "-qm", "Second commit")
    git(work, "push", "-q", str(bare), "main", "v1")
    git(work, "checkout", "-qb", "big")
    (work / "big.bin").write_bytes(os.urandom(300_000))
    git(work, "add", ".")
    git(work, "commit", "-qm", "Big")
    git(work, "push", "-q", str(bare), "big")
    return bare


def checkout(tmp_path: Path, url: str, **env: str) -> tuple[int, dict[str, str], Path, str]:
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    report = tmp_path / "report"
    done = subprocess.run(
        [str(BUSYBOX), "sh", "-c", CHECKOUT],
        env={
            "PATH": os.environ["PATH"],
            "GIT_URL": url,
            "SHIPWAY_WORKSPACE": str(workspace),
            "SHIPWAY_REPORT": str(report),
            "SHIPWAY_HOME": str(tmp_path / "home"),
            "SHIPWAY_GIT_SECRET": str(tmp_path / "no-secret"),
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.returncode, parse_report(report.read_text()), workspace, done.stdout


def test_the_default_branch_is_checked_out_and_reported(origin: Path, tmp_path: Path) -> None:
    code, facts, workspace, log = checkout(tmp_path, f"file://{origin}")
    assert code == 0, log
    assert (workspace / "b.txt").read_text() == "second\n"
    assert facts["commit"] == git(origin, "rev-parse", "main")
    assert facts["branch"] == "main"
    assert facts["message"] == "Second commit"
    assert (facts["committerName"], facts["committerEmail"]) == (
        "Carl Committer",
        "carl@example.org",
    )
    assert git(workspace, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(workspace, "rev-list", "--count", "HEAD") == "1", "depth 1 by default"


def test_a_tag_and_a_commit_id_are_checked_out(origin: Path, tmp_path: Path) -> None:
    code, facts, workspace, _ = checkout(tmp_path / "tag", f"file://{origin}", GIT_REVISION="v1")
    assert code == 0
    assert facts["tag"] == "v1"
    assert not facts.get("branch")
    assert not (workspace / "b.txt").exists()
    assert facts["message"] == "First commit\n\nwith a body"
    first = git(origin, "rev-parse", "v1")
    code, facts, workspace, _ = checkout(
        tmp_path / "sha", f"file://{origin}", GIT_REVISION=first, GIT_DEPTH="0"
    )
    assert code == 0
    assert facts["commit"] == first
    assert (workspace / "a.txt").exists()
    assert not (workspace / "b.txt").exists()


def test_a_missing_revision_fails_with_gits_message(origin: Path, tmp_path: Path) -> None:
    code, facts, workspace, _ = checkout(tmp_path, f"file://{origin}", GIT_REVISION="nope")
    assert code != 0
    assert facts["reason"] == "RevisionNotFound"
    assert facts["message"] == "fatal: couldn't find remote ref nope"
    assert not (workspace / "a.txt").exists()


def test_an_unreachable_server_fails_with_gits_message(tmp_path: Path) -> None:
    code, facts, _, _ = checkout(tmp_path, "http://127.0.0.1:9/org/app.git")
    assert code != 0
    assert facts["reason"] == "CheckoutFailed"
    assert facts["message"].startswith("fatal: unable to access 'http://127.0.0.1:9/org/app.git/'")


def test_a_repository_over_the_size_limit_fails(origin: Path, tmp_path: Path) -> None:
    code, facts, _, _ = checkout(
        tmp_path, f"file://{origin}", GIT_REVISION="big", SHIPWAY_MAX_SIZE="100000"
    )
    assert code != 0
    assert facts["reason"] == "SourceTooLarge"
    assert "size limit (100000 bytes)" in facts["message"]
    code, facts, workspace, _ = checkout(
        tmp_path / "fits", f"file://{origin}", GIT_REVISION="big", SHIPWAY_MAX_SIZE="2000000"
    )
    assert code == 0
    assert (workspace / "big.bin").stat().st_size == 300_000


def test_basic_auth_credentials_come_from_files_for_the_repositorys_host_only(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "username").write_text("bob")
    (secret / "password").write_text("hunter2")
    code, facts, _, log = checkout(
        tmp_path, "http://127.0.0.1:9/org/app.git", SHIPWAY_GIT_SECRET=str(secret)
    )
    assert code != 0
    assert "hunter2" not in log
    assert "hunter2" not in facts.get("message", "")
    config = (tmp_path / "home" / ".gitconfig").read_text()
    assert "credential.http://127.0.0.1:9" in config.replace('"', "").replace(" ", ".")
    assert "hunter2" not in config, "the helper reads the mounted file, git's config has no secret"


def test_submodules_are_checked_out_when_asked(tmp_path: Path) -> None:
    lib_bare, app_bare = tmp_path / "lib.git", tmp_path / "app.git"
    for bare in (lib_bare, app_bare):
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    lib = tmp_path / "lib"
    git(tmp_path, "init", "-q", "-b", "main", str(lib))
    (lib / "lib.txt").write_text("from the submodule\n")
    git(lib, "add", ".")
    git(lib, "commit", "-qm", "lib")
    git(lib, "push", "-q", str(lib_bare), "main")
    app = tmp_path / "app"
    git(tmp_path, "init", "-q", "-b", "main", str(app))
    git(
        app,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        f"file://{lib_bare}",
        "vendor/lib",
    )
    git(app, "commit", "-qm", "app with a submodule")
    git(app, "push", "-q", str(app_bare), "main")
    allow_file = {  # git refuses file:// submodules unless told (real ones are https or ssh)
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "protocol.file.allow",
        "GIT_CONFIG_VALUE_0": "always",
    }
    code, _, workspace, log = checkout(tmp_path / "without", f"file://{app_bare}", **allow_file)
    assert code == 0, log
    assert not (workspace / "vendor/lib/lib.txt").exists()
    code, _, workspace, log = checkout(
        tmp_path / "with", f"file://{app_bare}", GIT_SUBMODULES="1", **allow_file
    )
    assert code == 0, log
    assert (workspace / "vendor/lib/lib.txt").read_text() == "from the submodule\n"
