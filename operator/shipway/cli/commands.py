"""``shipway convert | run | status | logs | cancel | list``: what a user types.

The parser of every cluster subcommand, and ``status``, ``logs``, ``cancel`` and ``list``;
``convert``, ``run``, ``exec``, ``restart`` and ``encrypt | decrypt | keygen`` have modules of
their own. Exit codes: see :mod:`shipway.cli.common`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

import yaml

from shipway.cli import approve, common
from shipway.cli.archive import (
    archived_logs,
    archived_pipeline,
    gone_runs,
    history_flags,
    masker_for,
    open_history,
    register_history,
)
from shipway.cli.common import (
    OK,
    CommandError,
    connection_flags,
    err,
    get_pipeline,
    guarded,
    now,
    style_for,
)
from shipway.cli.convert import cmd_convert, conversion_flags
from shipway.cli.format import (
    is_finished,
    kind_of,
    log_line,
    phase_of,
    pipeline_status,
    pipeline_table,
)
from shipway.cli.run import cmd_run
from shipway.cli.sanitize import printable
from shipway.cli.source import add_source_flags
from shipway.cli.statustree import status_tree
from shipway.cli.tracker import every_step
from shipway.history.logs import Masker
from shipway.models import StepStatus


def register(sub: Any) -> None:
    """Add the client's subcommands to the ``shipway`` parser's subparsers."""
    conn = connection_flags()
    hist = history_flags()
    files = conversion_flags()

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
    con.add_argument(
        "--secrets",
        metavar="FILE",
        help="write the Secrets of decrypted files (--aes-key) there, mode 0600; never to "
        "standard output",
    )
    con.set_defaults(func=cmd_convert)

    add_source_flags(con, run=False)

    run = sub.add_parser(
        "run", parents=[conn, files], help="create a Pipeline and follow it to the end"
    )
    add_source_flags(run, run=True)
    run.add_argument(
        "-f",
        "--filename",
        help="a Pipeline manifest ('-' for standard input) instead of Codeship files",
    )
    run.add_argument("-d", "--detach", action="store_true", help="return once created")
    run.add_argument("--no-logs", action="store_true", help="progress and results only")
    run.add_argument(
        "--push",
        action="store_true",
        help="run push steps (like jet steps --push); without it they are skipped",
    )
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", parents=[conn, hist], help="a Pipeline's groups and steps")
    status.add_argument("name")
    status.add_argument("-o", "--output", choices=("tree", "yaml", "json"), default="tree")
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", parents=[conn, hist], help="the logs of a Pipeline's steps")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="stream until it finishes")
    logs.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="STEP",
        help="only this step (name or id; a build's id is build-SERVICE; repeatable)",
    )
    logs.add_argument("--no-prefix", action="store_true", help="without (step: NAME)")
    logs.set_defaults(func=cmd_logs)

    cancel = sub.add_parser("cancel", parents=[conn], help="stop a running Pipeline")
    cancel.add_argument("name")
    cancel.add_argument("--wait", action="store_true", help="wait until it has stopped")
    cancel.set_defaults(func=cmd_cancel)

    approve.register(sub, conn)

    lst = sub.add_parser("list", parents=[conn, hist], help="Pipelines in the namespace")
    lst.add_argument("-A", "--all-namespaces", action="store_true")
    lst.add_argument("-l", "--selector", help="label selector")
    lst.add_argument(
        "--all", action="store_true", help="also the runs whose Pipeline is gone (the history)"
    )
    lst.set_defaults(func=cmd_list)

    from shipway.cli import crypt, exec, restart

    exec.register(sub, conn, files)
    restart.register(sub, conn)
    crypt.register(sub)
    register_history(sub, conn, hist)


@guarded
def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    api = common.connect_api(args)
    pipeline = api.get(args.name) or archived_pipeline(
        open_history(args, api), api.namespace, args.name
    )
    if args.output == "json":
        out.write(json.dumps(pipeline.get("status") or {}, indent=2) + "\n")
    elif args.output == "yaml":
        yaml.safe_dump(pipeline.get("status") or {}, out, sort_keys=False, allow_unicode=True)
    else:
        for line in status_tree(pipeline, now(), style_for(out)):
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


@guarded
def cmd_logs(args: argparse.Namespace, out: TextIO) -> int:
    from shipway.cli.cluster import ClusterError, LogNotReadyError
    from shipway.cli.follow import Follower, Printer, log_container

    api = common.connect_api(args)
    store = open_history(args, api)
    pipeline = api.get(args.name)
    gone = pipeline is None
    if pipeline is None:
        pipeline = archived_pipeline(store, api.namespace, args.name)
    steps = select_steps(every_step(pipeline_status(pipeline)), args.step)
    style = style_for(out)
    masker = Masker([]) if gone else masker_for(api, pipeline)
    archived: dict[tuple[str, str], str] | None = None  # read once, when first needed
    if args.follow and not gone:
        ids = {s.id for s in steps}
        printer = Printer(out, False, masker.mask)
        Follower(
            api, args.name, printer, style, include=lambda s: s.id in ids, progress=False
        ).follow(pipeline)
        return OK
    for step in steps:
        pods = [a.pod for a in step.attempts] + ([step.pod] if step.pod else [])
        for pod in pods:
            text: str | None = None
            if not gone:
                try:
                    text = masker.mask(api.read_log(pod, log_container(step)))
                except LogNotReadyError:
                    pass  # not started yet, or the pod is gone: the archive may have it
                except ClusterError as exc:
                    err(f"step {step.name!r}: {exc}")
                    continue
            if text is None:
                if archived is None:
                    archived = archived_logs(store, pipeline)
                text = archived.get((pod, log_container(step)))
            if text is None:
                continue
            # Lines end at newlines only, as when following: a carriage return inside a line is
            # the pod's, shown escaped (splitlines would hide it by cutting the line there).
            lines = text.split("\n")
            if lines and not lines[-1]:
                lines.pop()
            for raw in lines:
                line = raw.removesuffix("\r")
                prefixed = log_line(step.name, line, style, kind_of(step))
                out.write((printable(line) if args.no_prefix else prefixed) + "\n")
    return OK


@guarded
def cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    api = common.connect_api(args)
    pipeline = get_pipeline(api, args.name)
    if is_finished(pipeline):
        out.write(f"pipeline {args.name} has already {phase_of(pipeline).lower()}\n")
        return OK
    api.cancel(args.name)
    out.write(f"pipeline {args.name} cancelling\n")
    if args.wait:
        while not is_finished(pipeline):
            time.sleep(0.5)
            pipeline = get_pipeline(api, args.name)
        out.write(f"pipeline {args.name} {phase_of(pipeline).lower()}\n")
    return OK


@guarded
def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    api = common.connect_api(args)
    items = api.list(all_namespaces=args.all_namespaces, selector=args.selector)
    if args.all:
        namespace = None if args.all_namespaces else api.namespace
        items += gone_runs(open_history(args, api), namespace, items, limit=500)
    if not items:
        where = "any namespace" if args.all_namespaces else f"namespace {api.namespace}"
        err(f"no pipelines in {where}")
        return OK
    items.sort(
        key=lambda p: (
            (p.get("metadata") or {}).get("creationTimestamp") or "",
            (p.get("metadata") or {}).get("name") or "",
        )
    )
    for line in pipeline_table(items, now(), namespaces=args.all_namespaces, style=style_for(out)):
        out.write(line + "\n")
    return OK
