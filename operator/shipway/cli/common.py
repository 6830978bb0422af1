"""What every cluster subcommand shares: exit codes, one-line errors, the connection flags.

Exit codes: 0 success; 1 the pipeline failed or was cancelled (``run``), or a command's check
failed; 2 nothing could be done (bad input, invalid files, cluster errors); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from shipway.cli.format import Style

OK, FAILED, UNUSABLE, INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A problem to report on one line (exit code 2)."""


def now() -> datetime:
    return datetime.now(UTC)


def style_for(out: TextIO) -> Style:
    return Style(colour=out.isatty() and "NO_COLOR" not in os.environ)


def live(out: TextIO) -> bool:
    return out.isatty() and os.environ.get("TERM") != "dumb"


def err(message: str) -> None:
    print(f"shipway: {message}", file=sys.stderr)


def connection_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("cluster")
    group.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    group.add_argument("--context", help="kubeconfig context (default: the current one)")
    group.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    return parent


def connect_api(args: argparse.Namespace) -> Any:
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


def guarded(fn: Any) -> Any:
    def wrapper(args: argparse.Namespace, out: TextIO) -> int:
        try:
            with _reporting():
                code: int = fn(args, out)
                return code
        except _ExitError as exc:
            err(str(exc))
            return exc.code

    wrapper.__doc__ = fn.__doc__
    return wrapper


def get_pipeline(api: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] | None = api.get(name)
    if found is None:
        raise CommandError(f"pipeline {name!r} not found in namespace {api.namespace!r}")
    return found
