"""``shipway convert | run | status | logs | cancel | list``: what a user types.

Exit codes: 0 success; 1 the pipeline failed or was cancelled (``run``), or a command's check
failed; 2 nothing could be done (bad input, invalid files, cluster errors); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import yaml

from shipway import GROUP, KIND
from shipway.cli.format import (
    Style,
    is_finished,
    log_line,
    phase_of,
    pipeline_status,
    pipeline_table,
    status_tree,
    summary_line,
)
from shipway.codeship import (
    ConversionError,
    ConversionWarning,
    FileError,
    Options,
    convert_directory,
    default_name,
)
from shipway.engine.naming import container_name
from shipway.models import CIContext, StepStatus
from shipway.spec.compiler import compile_pipeline
from shipway.spec.errors import InvalidSpecError
from shipway.spec.limits import TooDeepToReadError, read_deep

OK, FAILED, UNUSABLE, INTERRUPTED = 0, 1, 2, 130

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


class CommandError(Exception):
    """A problem to report on one line (exit code 2)."""


def _flag(field: str) -> str:
    return "--" + "".join(f"-{c.lower()}" if c.isupper() else c for c in field)


def _now() -> datetime:
    return datetime.now(UTC)


def style_for(out: TextIO) -> Style:
    return Style(colour=out.isatty() and "NO_COLOR" not in os.environ)


def _live(out: TextIO) -> bool:
    return out.isatty() and os.environ.get("TERM") != "dumb"


def _err(message: str) -> None:
    print(f"shipway: {message}", file=sys.stderr)


# -- arguments ----------------------------------------------------------------------------------


def _connection_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("cluster")
    group.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    group.add_argument("--context", help="kubeconfig context (default: the current one)")
    group.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    return parent


def _conversion_flags() -> argparse.ArgumentParser:
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
        help="run the image a build: names (build.image) instead of failing",
    )
    group.add_argument(
        "--env-secret",
        action="append",
        default=[],
        metavar="SERVICE=SECRET",
        help="a Secret standing in for a service's encrypted environment (repeatable)",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    ci = parent.add_argument_group("build context (spec.ci)")
    for field, help_text in CI_FLAGS.items():
        ci.add_argument(_flag(field), dest=f"ci_{field}", metavar="VALUE", help=help_text)
    return parent


def register(sub: Any) -> None:
    """Add the client's subcommands to the ``shipway`` parser's subparsers."""
    conn = _connection_flags()
    files = _conversion_flags()

    con = sub.add_parser(
        "convert", parents=[files], help="print the Pipeline for a project's Codeship files"
    )
    con.add_argument(
        "--generate-name",
        action="store_true",
        help="metadata.generateName instead of name (for kubectl create)",
    )
    con.add_argument("--namespace", help="set metadata.namespace")
    con.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    con.set_defaults(func=cmd_convert)

    run = sub.add_parser(
        "run", parents=[conn, files], help="create a Pipeline and follow it to the end"
    )
    run.add_argument(
        "-f",
        "--filename",
        help="a Pipeline manifest ('-' for standard input) instead of Codeship files",
    )
    run.add_argument("-d", "--detach", action="store_true", help="return once created")
    run.add_argument("--no-logs", action="store_true", help="progress and results only")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", parents=[conn], help="a Pipeline's groups and steps")
    status.add_argument("name")
    status.add_argument("-o", "--output", choices=("tree", "yaml", "json"), default="tree")
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", parents=[conn], help="the logs of a Pipeline's steps")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream until it finishes")
    logs.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="STEP",
        help="only this step (name or id; repeatable)",
    )
    logs.add_argument("--no-prefix", action="store_true", help="without (step: NAME)")
    logs.set_defaults(func=cmd_logs)

    cancel = sub.add_parser("cancel", parents=[conn], help="stop a running Pipeline")
    cancel.add_argument("name")
    cancel.add_argument("--wait", action="store_true", help="wait until it has stopped")
    cancel.set_defaults(func=cmd_cancel)

    lst = sub.add_parser("list", parents=[conn], help="Pipelines in the namespace")
    lst.add_argument("-A", "--all-namespaces", action="store_true")
    lst.add_argument("-l", "--selector", help="label selector")
    lst.set_defaults(func=cmd_list)


# -- conversion ---------------------------------------------------------------------------------


def _ci(args: argparse.Namespace) -> dict[str, str]:
    return {f: v for f in CI_FLAGS if (v := getattr(args, f"ci_{f}", None))}


def _env_secrets(values: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        service, sep, secret = value.partition("=")
        if not sep or not service or not secret:
            raise CommandError(f"--env-secret {value!r}: expected SERVICE=SECRET")
        result[service] = secret
    return result


def _print_warnings(warnings: tuple[ConversionWarning, ...], quiet: bool) -> None:
    if quiet:
        return
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _convert(args: argparse.Namespace, *, generate_name: bool, namespace: str | None) -> Any:
    directory = Path(args.dir or ".")
    options = Options(
        name=args.name or default_name(directory),
        generate_name=generate_name,
        namespace=namespace,
        ci=_ci(args),
        prebuilt=args.prebuilt,
        env_secrets=_env_secrets(args.env_secret),
    )
    try:
        conversion = convert_directory(
            directory,
            services_path=args.services_path,
            steps_path=args.steps_path,
            options=options,
        )
    except FileError as exc:
        raise CommandError(str(exc)) from None
    except ConversionError as exc:
        _print_warnings(exc.warnings, args.quiet)
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        raise CommandError(f"{len(exc.errors)} problem(s): no Pipeline written") from None
    _print_warnings(conversion.warnings, args.quiet)
    return conversion.manifest


def cmd_convert(args: argparse.Namespace, out: TextIO) -> int:
    try:
        manifest = _convert(args, generate_name=args.generate_name, namespace=args.namespace)
    except CommandError as exc:
        _err(str(exc))
        return UNUSABLE
    if args.output == "json":
        out.write(json.dumps(manifest, indent=2) + "\n")
    else:
        yaml.safe_dump(manifest, out, sort_keys=False, width=100, allow_unicode=True)
    return OK


# -- connecting ---------------------------------------------------------------------------------


def _api(args: argparse.Namespace) -> Any:
    from shipway.cli.cluster import PipelineApi, connect

    return PipelineApi(connect(args.kubeconfig, args.context, args.namespace))


@contextmanager
def _reporting() -> Iterator[None]:
    """Turn the expected failures into one line on stderr and exit code 2."""
    from urllib3.exceptions import HTTPError

    from shipway.cli.cluster import ClusterError

    try:
        yield
    except (ClusterError, CommandError) as exc:
        raise _ExitError(UNUSABLE, str(exc)) from None
    except HTTPError as exc:
        raise _ExitError(UNUSABLE, f"cannot reach the cluster: {exc}") from None


class _ExitError(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


def _guarded(fn: Any) -> Any:
    def wrapper(args: argparse.Namespace, out: TextIO) -> int:
        try:
            with _reporting():
                code: int = fn(args, out)
                return code
        except _ExitError as exc:
            _err(str(exc))
            return exc.code

    wrapper.__doc__ = fn.__doc__
    return wrapper


def _pipeline(api: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] | None = api.get(name)
    if found is None:
        raise CommandError(f"pipeline {name!r} not found in namespace {api.namespace!r}")
    return found


# -- run ----------------------------------------------------------------------------------------


def _manifest_file(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        docs = read_deep(lambda: list(yaml.safe_load_all(text)))
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise CommandError(f"{path}: not valid YAML: {exc}") from None
    except TooDeepToReadError as exc:
        raise CommandError(f"{path}: {exc}") from None
    found = [
        d
        for d in docs
        if isinstance(d, dict)
        and d.get("kind") == KIND
        and str(d.get("apiVersion", "")).startswith(f"{GROUP}/")
    ]
    if len(found) != 1:
        raise CommandError(
            f"{path}: expected one {KIND} (apiVersion {GROUP}/v1alpha1), found {len(found)}"
        )
    return found[0]


def prepare_manifest(
    manifest: Mapping[str, Any], ci: Mapping[str, str], namespace: str | None
) -> dict[str, Any]:
    """A manifest to create as a new run: generateName from its name, CI flags merged in."""
    meta = dict(manifest.get("metadata") or {})
    base = meta.get("generateName") or (f"{meta['name']}-" if meta.get("name") else "pipeline-")
    keep = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
    new_meta: dict[str, Any] = {"generateName": base, **keep}
    if namespace:
        new_meta["namespace"] = namespace
    spec = dict(manifest.get("spec") or {})
    if ci:
        spec["ci"] = {**(spec.get("ci") or {}), **ci}
    return {
        "apiVersion": manifest.get("apiVersion"),
        "kind": KIND,
        "metadata": new_meta,
        "spec": spec,
    }


def _validate(manifest: Mapping[str, Any]) -> None:
    try:
        compile_pipeline(manifest.get("spec"))
    except InvalidSpecError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        raise CommandError("the Pipeline is invalid: nothing was created") from None


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job being stopped) is handled like Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@_guarded
def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from shipway.cli.follow import Follower, Printer

    if args.filename and (args.dir or args.services_path or args.steps_path):
        raise CommandError(
            "use either -f or the Codeship files (--dir, --services-path, --steps-path)"
        )
    if args.filename:
        manifest = _manifest_file(args.filename)
    else:
        manifest = _convert(args, generate_name=True, namespace=None)
    api = _api(args)
    manifest = prepare_manifest(manifest, _ci(args), None)
    file_ns = (manifest.get("metadata") or {}).get("namespace")
    if file_ns and args.namespace and file_ns != args.namespace:
        raise CommandError(f"the manifest is for namespace {file_ns!r}, not {args.namespace!r}")
    manifest["metadata"].pop("namespace", None)
    _validate(manifest)
    created = api.create(manifest)
    name = created["metadata"]["name"]
    style = style_for(out)
    if args.detach:
        out.write(f"{name}\n")
        return OK
    printer = Printer(out, _live(out))
    printer.line(f"shipway: pipeline {api.namespace}/{name} created")
    follower = Follower(api, name, printer, style, logs=not args.no_logs)
    final = created
    with _terminate_as_interrupt():
        try:
            final = follower.follow(created)
        except KeyboardInterrupt:
            printer.clear_footer()
            printer.line(f"shipway: cancelling {name} (interrupt again to leave it running)")
            try:
                api.cancel(name)
                final = follower.follow()
            except KeyboardInterrupt:
                printer.clear_footer()
                _err(f"left {name} as it is; see: shipway status {name}")
                return INTERRUPTED
    printer.line("")
    for line in status_tree(final, _now(), style):
        printer.line(line)
    printer.line(summary_line(final, _now(), style))
    return OK if phase_of(final) == "Succeeded" else FAILED


# -- status, logs, cancel, list -------------------------------------------------------------------


@_guarded
def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    pipeline = _pipeline(_api(args), args.name)
    if args.output == "json":
        out.write(json.dumps(pipeline.get("status") or {}, indent=2) + "\n")
    elif args.output == "yaml":
        yaml.safe_dump(pipeline.get("status") or {}, out, sort_keys=False, allow_unicode=True)
    else:
        for line in status_tree(pipeline, _now(), style_for(out)):
            out.write(line + "\n")
    return OK


def select_steps(steps: list[StepStatus], wanted: list[str]) -> list[StepStatus]:
    """The steps named (by name or id) in ``wanted``, all when it is empty."""
    if not wanted:
        return steps
    chosen = [s for s in steps if s.name in wanted or s.id in wanted]
    missing = [w for w in wanted if not any(w in (s.name, s.id) for s in steps)]
    if missing:
        names = ", ".join(repr(s.name) for s in steps) or "none"
        raise CommandError(f"no step {', '.join(map(repr, missing))}; the steps are: {names}")
    return chosen


@_guarded
def cmd_logs(args: argparse.Namespace, out: TextIO) -> int:
    from shipway.cli.cluster import ClusterError, LogNotReadyError
    from shipway.cli.follow import Follower, Printer

    api = _api(args)
    pipeline = _pipeline(api, args.name)
    steps = select_steps(pipeline_status(pipeline).steps, args.step)
    style = style_for(out)
    if args.follow:
        ids = {s.id for s in steps}
        printer = Printer(out, False)
        Follower(
            api, args.name, printer, style, include=lambda s: s.id in ids, progress=False
        ).follow(pipeline)
        return OK
    for step in steps:
        pods = [a.pod for a in step.attempts] + ([step.pod] if step.pod else [])
        for pod in pods:
            try:
                text = api.read_log(pod, container_name(step.service))
            except LogNotReadyError:
                continue
            except ClusterError as exc:
                _err(f"step {step.name!r}: {exc}")
                continue
            for line in text.splitlines():
                out.write((line if args.no_prefix else log_line(step.name, line, style)) + "\n")
    return OK


@_guarded
def cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    api = _api(args)
    pipeline = _pipeline(api, args.name)
    if is_finished(pipeline):
        out.write(f"pipeline {args.name} has already {phase_of(pipeline).lower()}\n")
        return OK
    api.cancel(args.name)
    out.write(f"pipeline {args.name} cancelling\n")
    if args.wait:
        while not is_finished(pipeline):
            time.sleep(0.5)
            pipeline = _pipeline(api, args.name)
        out.write(f"pipeline {args.name} {phase_of(pipeline).lower()}\n")
    return OK


@_guarded
def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    api = _api(args)
    items = api.list(all_namespaces=args.all_namespaces, selector=args.selector)
    if not items:
        where = "any namespace" if args.all_namespaces else f"namespace {api.namespace}"
        _err(f"no pipelines in {where}")
        return OK
    items.sort(
        key=lambda p: (
            (p.get("metadata") or {}).get("creationTimestamp") or "",
            (p.get("metadata") or {}).get("name") or "",
        )
    )
    for line in pipeline_table(items, _now(), namespaces=args.all_namespaces, style=style_for(out)):
        out.write(line + "\n")
    return OK
