"""``shipway convert``, and the Codeship-file flags ``run`` shares with it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from shipway.cli.common import OK, UNUSABLE, CommandError, err
from shipway.cli.source import SourceError, checkout_source, git_flags_given, git_source
from shipway.codeship import (
    Conversion,
    ConversionError,
    ConversionWarning,
    FileError,
    Options,
    convert_directory,
    default_name,
    read_aes_key,
)
from shipway.codeship.convert import GENERATE_SUFFIX, MAX_NAME
from shipway.engine.naming import dns_label
from shipway.models import CIContext

CI_FLAGS = {
    "branch": "CI_BRANCH; the build tag unless --tag is given",
    "tag": "the git tag being built (the build tag for tag/exclude filters)",
    "commitId": "CI_COMMIT_ID",
    "commitMessage": "CI_COMMIT_MESSAGE",
    "commitDescription": "CI_COMMIT_DESCRIPTION",
    "committerName": "CI_COMMITTER_NAME",
    "committerEmail": "CI_COMMITTER_EMAIL",
    "committerUsername": "CI_COMMITTER_USERNAME",
    "repoName": "CI_REPO_NAME",
    "projectId": "CI_PROJECT_ID",
    "buildId": "CI_BUILD_ID (default: the Pipeline's UID)",
    "prNumber": "CI_PR_NUMBER",
    "pullRequest": "CI_PULL_REQUEST",
}
assert set(CI_FLAGS) == set(CIContext.model_fields)


def _flag(field: str) -> str:
    return "--" + "".join(f"-{c.lower()}" if c.isupper() else c for c in field)


def conversion_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("Codeship files")
    group.add_argument("--dir", help="project directory with the Codeship files (default: .)")
    group.add_argument(
        "--services-path",
        help="services file (default: codeship-services.yml, else docker-compose.yml, in --dir)",
    )
    group.add_argument(
        "--steps-path",
        help="steps file (default: codeship-steps.yml, else codeship-steps.json, in --dir)",
    )
    group.add_argument("--name", help="Pipeline name (default: the directory's name)")
    group.add_argument(
        "--prebuilt",
        action="store_true",
        help="run the image a build: names (build.image) instead of building it",
    )
    group.add_argument(
        "--env-secret",
        action="append",
        default=[],
        metavar="SERVICE=SECRET",
        help="a Secret standing in for a service's encrypted environment (repeatable)",
    )
    group.add_argument(
        "--args-secret",
        action="append",
        default=[],
        metavar="SERVICE=SECRET",
        help="a Secret standing in for a build's encrypted args (build.argsFrom; repeatable)",
    )
    group.add_argument(
        "--aes-key",
        metavar="FILE",
        help="the project's AES key, to decrypt Codeship's encrypted files into Secrets "
        "(default: codeship.aes in --dir, as jet reads it)",
    )
    group.add_argument(
        "--dockercfg-secret",
        metavar="NAME",
        help="a kubernetes.io/dockerconfigjson Secret: the registry credentials of push steps "
        "that name none, standing in for every encrypted_dockercfg_path and dockercfg_service",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    ci = parent.add_argument_group("build context (spec.ci)")
    for field, help_text in CI_FLAGS.items():
        ci.add_argument(_flag(field), dest=f"ci_{field}", metavar="VALUE", help=help_text)
    return parent


def ci_flags(args: argparse.Namespace) -> dict[str, str]:
    return {f: v for f in CI_FLAGS if (v := getattr(args, f"ci_{f}", None))}


def _service_secrets(values: list[str], flag: str = "--env-secret") -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        service, sep, secret = value.partition("=")
        if not sep or not service or not secret:
            raise CommandError(f"{flag} {value!r}: expected SERVICE=SECRET")
        result[service] = secret
    return result


def _pipeline_name(
    args: argparse.Namespace, directory: Path, quiet: bool, generate_name: bool
) -> str:
    """``--name``, written the way the directory's name would be (``My_App`` → ``my-app``,
    cut to what fits, with the API server's suffix for ``generateName``)."""
    if not args.name:
        return default_name(directory)
    name: str = args.name
    written = dns_label(name, MAX_NAME - (GENERATE_SUFFIX + 1 if generate_name else 0))
    if written != name and written != "x":
        if not quiet:
            print(
                f"warning: --name {name!r} written as {written!r} (a Pipeline name is "
                "lower-case letters, digits and '-')",
                file=sys.stderr,
            )
        return written
    return name


def _in_dir(directory: Path, given: str | None) -> str | None:
    """``--services-path``/``--steps-path``: relative to ``--dir`` (where the default files
    are looked up too), else as given (relative to the working directory)."""
    if given is None or Path(given).is_absolute():
        return given
    inside = directory / given
    if inside.is_file() or not Path(given).is_file():
        return str(inside)
    return given


def _print_warnings(warnings: tuple[ConversionWarning, ...], quiet: bool) -> None:
    if quiet:
        return
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def source_flags(
    args: argparse.Namespace, directory: Path, upload: bool, checkout: bool = False
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """spec.source from the flags (git, else an upload when ``upload``) and CI fields learnt.

    ``checkout``: without a source flag, a directory that is a git checkout with a usable
    origin is its own source (what ``--git-remote`` gives), and a note says so.
    """
    try:
        git, learnt, warnings = git_source(args, directory)
        if git is None and checkout and not upload:
            git, learnt, warnings = checkout_source(directory)
            if git is not None:
                print(
                    f"shipway: source: {git['git']['url']} at {git['git']['revision'][:12]}, "
                    f"the commit {directory} has checked out (as --git-remote; --upload or "
                    "--no-source for another)",
                    file=sys.stderr,
                )
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    for warning in [] if args.quiet else warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if git is not None:
        return git, learnt
    return ({"upload": {}} if upload else None), {}


def convert(
    args: argparse.Namespace,
    *,
    generate_name: bool,
    namespace: str | None,
    upload: bool = False,
    checkout: bool = False,
    steps: Any = None,
) -> Conversion:
    """The Codeship files converted (the Pipeline and the Secrets of decrypted files), or a
    CommandError after printing every problem: nothing is created before this succeeds.
    ``steps`` (parsed steps) stands in for the steps file (``shipway exec``)."""
    directory = Path(args.dir or ".")
    try:
        aes_key = read_aes_key(directory, args.aes_key)
    except FileError as exc:
        raise CommandError(str(exc)) from None
    source, learnt = source_flags(args, directory, upload, checkout=checkout)
    options = Options(
        name=_pipeline_name(args, directory, args.quiet, generate_name),
        generate_name=generate_name,
        namespace=namespace,
        ci={**learnt, **ci_flags(args)},
        prebuilt=args.prebuilt,
        env_secrets=_service_secrets(args.env_secret),
        args_secrets=_service_secrets(args.args_secret, "--args-secret"),
        source=source,
        aes_key=aes_key,
        dockercfg_secret=args.dockercfg_secret,
    )
    try:
        conversion = convert_directory(
            directory,
            services_path=_in_dir(directory, args.services_path),
            steps_path=_in_dir(directory, args.steps_path),
            options=options,
            steps=steps,
        )
    except FileError as exc:
        raise CommandError(str(exc)) from None
    except ConversionError as exc:
        for error in exc.errors:  # what stops it first, then what to know
            print(f"error: {error}", file=sys.stderr)
        _print_warnings(exc.warnings, args.quiet)
        raise CommandError(f"{len(exc.errors)} problem(s): no Pipeline written") from None
    _print_warnings(conversion.warnings, args.quiet)
    return conversion


def write_secrets(path: str, secrets: tuple[dict[str, Any], ...]) -> None:
    """The Secrets of decrypted files, readable by the user only (they hold the plaintext)."""
    text = yaml.safe_dump_all(secrets, sort_keys=False, width=100)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None


def cmd_convert(args: argparse.Namespace, out: TextIO) -> int:
    try:
        if args.no_source and (args.upload or git_flags_given(args)):
            raise CommandError("--no-source goes with no other source flag")
        conversion = convert(
            args,
            generate_name=args.generate_name,
            namespace=args.namespace,
            upload=args.upload,
            checkout=not args.no_source,
        )
        if conversion.secrets and args.secrets:
            write_secrets(args.secrets, conversion.secrets)
    except CommandError as exc:
        err(str(exc))
        return UNUSABLE
    count = len(conversion.secrets)
    if count and args.secrets:
        err(
            f"wrote {count} Secret(s) to {args.secrets} (mode 0600): they hold the decrypted "
            "values, base64-encoded, not encrypted; apply them before the Pipeline"
        )
    elif count:
        err(
            f"{count} Secret(s) of decrypted files were not written (the Pipeline refers to "
            "them): give --secrets FILE, or use shipway run, which creates them"
        )
    manifest = conversion.manifest
    if args.output == "json":
        out.write(json.dumps(manifest, indent=2) + "\n")
    else:
        yaml.safe_dump(manifest, out, sort_keys=False, width=100, allow_unicode=True)
    return OK
