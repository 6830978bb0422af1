"""``shipway exec SERVICE -- COMMAND``: one command in one service, as ``jet run`` does.

The project's services file is converted as ``run --dir`` converts it, with a one-step list
standing in for the steps file, so the command gets the service's image (built in the cluster
when it has ``build:``), environment, encrypted variables, volumes and linked services, and the
directory is uploaded as its workspace. Everything after creation is ``run``'s: the logs as they
are written, Ctrl-C cancels, the status tree. The exit code is the command's own.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from shipway.cli.common import FAILED, OK, CommandError, guarded
from shipway.cli.format import phase_of, pipeline_status
from shipway.cli.run import convert_for_run, create_run, follow_created, listed, run_masker


def register(sub: Any, conn: argparse.ArgumentParser, files: argparse.ArgumentParser) -> None:
    from shipway.cli.source import add_source_flags

    ex = sub.add_parser(
        "exec",
        parents=[conn, files],
        help="run one command in a service of the Codeship files (like jet run)",
        description="Run COMMAND (else the service's default command) in SERVICE, with its "
        "links, volumes and build, the directory uploaded as the workspace; put -- before "
        "the command so that its options are not taken as shipway's.",
    )
    add_source_flags(ex, run=True)
    ex.add_argument("service", metavar="SERVICE", help="a service of the services file")
    ex.add_argument("argv", metavar="COMMAND", nargs="*", help="the command and its arguments")
    ex.add_argument("--no-logs", action="store_true", help="progress and results only")
    ex.set_defaults(func=cmd_exec)


def one_step(service: str, command: Sequence[str]) -> list[dict[str, Any]]:
    """The steps file ``exec`` stands in: the command as a list, so no quoting is lost."""
    step: dict[str, Any] = {"service": service}
    if command:
        step["command"] = list(command)
    return [step]


def exit_code(pipeline: Mapping[str, Any]) -> int:
    """The command's exit code; 1 when it never ran to an exit (a failed build or upload,
    a cancel, a timeout), 0 when the pipeline succeeded."""
    if phase_of(pipeline) == "Succeeded":
        return OK
    steps = pipeline_status(pipeline).steps
    code = steps[0].exit_code if steps else None
    return code if code else FAILED


@guarded
def cmd_exec(args: argparse.Namespace, out: TextIO) -> int:
    if args.steps_path:
        raise CommandError("exec runs the command given, not a steps file: drop --steps-path")
    if args.source:
        raise CommandError("--source goes with run -f; exec uploads --dir's directory")
    conversion, upload = convert_for_run(args, steps=one_step(args.service, args.argv))
    entries = listed(upload)
    api, created, _ = create_run(args, conversion.manifest, conversion.secrets, {}, push=False)
    final = follow_created(
        api,
        created,
        out,
        upload=upload,
        entries=entries,
        detach=False,
        logs=not args.no_logs,
        masker=run_masker(api, conversion.manifest, conversion.secrets),
    )
    return final if isinstance(final, int) else exit_code(final)
