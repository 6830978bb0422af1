"""The command line's ``spec.source`` flags, for ``convert`` and ``run``.

* ``--git-url URL [--revision REV] [--git-secret SECRET] [--git-depth N]``: a git checkout;
* ``--git-remote``: the same from the project directory's own repository: its ``origin``
  remote and the commit at HEAD (its branch becomes ``--branch`` unless given);
* ``run --dir`` with neither uploads the directory (``--no-upload``: the workspace starts
  empty), ``run -f FILE --source DIR`` uploads DIR, ``convert --upload`` writes a Pipeline
  that expects one.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path
from typing import Any

from shipway.models.source import GIT_URL_PATTERN


class SourceError(Exception):
    """The source flags cannot be used as given."""


def add_source_flags(parser: argparse.ArgumentParser, *, run: bool) -> None:
    group = parser.add_argument_group("source (spec.source: the workspace's files)")
    group.add_argument("--git-url", metavar="URL", help="check out this git repository")
    group.add_argument(
        "--revision", metavar="REV", help="branch, tag or commit to check out (with --git-url)"
    )
    group.add_argument(
        "--git-secret",
        metavar="SECRET",
        help="Secret with ssh-privatekey [known_hosts] or username/password",
    )
    group.add_argument(
        "--git-depth", type=int, metavar="N", help="commits of history (default 1; 0: all)"
    )
    group.add_argument(
        "--git-remote",
        action="store_true",
        help="check out the directory's own origin remote at its HEAD commit",
    )
    if run:
        group.add_argument(
            "--source",
            metavar="DIR",
            help="upload DIR into the workspace (with -f; --dir uploads its directory)",
        )
        group.add_argument(
            "--no-upload",
            action="store_true",
            help="with --dir: do not upload the directory (the workspace starts empty)",
        )
    else:
        group.add_argument(
            "--upload",
            action="store_true",
            help="a Pipeline that waits for an upload (shipway run -f FILE --source DIR)",
        )
        group.add_argument(
            "--no-source",
            action="store_true",
            help="no source, even when --dir is a git checkout (the workspace starts empty)",
        )


def _git(directory: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"--git-remote: cannot run git: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["failed"]
        raise SourceError(f"--git-remote: git {' '.join(args)}: {detail[0]}")
    return done.stdout.strip()


def git_remote(directory: Path) -> tuple[str, str, str | None, bool]:
    """(origin URL, HEAD commit, current branch or None, has uncommitted changes)."""
    url = _git(directory, "remote", "get-url", "origin")
    commit = _git(directory, "rev-parse", "HEAD")
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    dirty = bool(_git(directory, "status", "--porcelain", "--untracked-files=no"))
    return url, commit, None if branch == "HEAD" else branch, dirty


def checkout_source(
    directory: Path,
) -> tuple[dict[str, Any] | None, dict[str, str], list[str]]:
    """What ``--git-remote`` gives when ``directory`` is the top of a git checkout whose
    origin a cluster can fetch; (None, {}, []) when it is not (no error: then there is no
    source, and a build says which flag it needs)."""
    try:
        top = Path(_git(directory, "rev-parse", "--show-toplevel"))
        if top.resolve() != directory.resolve():
            return None, {}, []
        url = _git(directory, "remote", "get-url", "origin")
    except SourceError:
        return None, {}, []
    if not re.match(GIT_URL_PATTERN, url):
        return None, {}, []
    return git_source(argparse.Namespace(**{**_NO_GIT_FLAGS, "git_remote": True}), directory)


_NO_GIT_FLAGS: dict[str, Any] = {
    "git_url": None,
    "git_remote": False,
    "revision": None,
    "git_secret": None,
    "git_depth": None,
}


def git_flags_given(args: argparse.Namespace) -> bool:
    return bool(
        args.git_url
        or args.git_remote
        or args.revision
        or args.git_secret
        or args.git_depth is not None
    )


def git_source(
    args: argparse.Namespace, directory: Path
) -> tuple[dict[str, Any] | None, dict[str, str], list[str]]:
    """spec.source.git from the flags (None without any), CI fields learnt, warnings."""
    if not git_flags_given(args):
        return None, {}, []
    if args.git_url and args.git_remote:
        raise SourceError("use either --git-url or --git-remote")
    ci: dict[str, str] = {}
    warnings: list[str] = []
    url, revision = args.git_url, args.revision
    if args.git_remote:
        url, commit, branch, dirty = git_remote(directory)
        if not re.match(GIT_URL_PATTERN, url):
            raise SourceError(
                f"--git-remote: origin is {url!r}, which a cluster cannot fetch from "
                "(https://, ssh://, git:// or user@host:path): give --git-url"
            )
        revision = revision or commit
        if branch:
            ci["branch"] = branch
        if dirty:
            warnings.append(
                f"{directory} has uncommitted changes: the pipeline checks out {commit[:12]} "
                "from the remote without them"
            )
    if not url:
        raise SourceError("--revision, --git-secret and --git-depth need --git-url or --git-remote")
    git: dict[str, Any] = {"url": url}
    if revision:
        git["revision"] = revision
    if args.git_secret:
        git["secretName"] = args.git_secret
    if args.git_depth is not None:
        if args.git_depth < 0:
            raise SourceError("--git-depth must be 0 (all history) or more")
        git["depth"] = args.git_depth
    return {"git": git}, ci, warnings
