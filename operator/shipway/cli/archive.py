"""The command line's reach into the history: archived runs and logs, and masking.

``shipway status``, ``logs`` and ``list --all`` fall back to the history store when the
Pipeline or a pod is gone, and ``shipway history`` pages through it. The store is the one
the operator writes: ``--history URL`` or ``SHIPWAY_HISTORY`` (a SQLAlchemy URL: the
operator's PostgreSQL), else the SQLite file a host-run operator (``make demo``, the
end-to-end tests) writes on this machine when there is one, else the cluster's history read
API (``history.shipway.dev``, served by an operator in the cluster) with the user's own
kubeconfig; ``SHIPWAY_HISTORY=api`` asks for the API whatever files there are.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from shipway.cli import common
from shipway.cli.common import OK, CommandError, err, guarded, now, style_for
from shipway.cli.format import Style, format_age, phase_table
from shipway.history.api import ApiReader
from shipway.history.logs import Masker
from shipway.history.masking import masked_values, referenced_secrets
from shipway.history.reader import RunReader, StoreReader
from shipway.history.records import RunRecord, body_of
from shipway.history.store import SqlStore, cursor, default_url, store_url


def history_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--history",
        metavar="URL",
        help=(
            "the history store, or `api` for the cluster's history API (default: "
            "$SHIPWAY_HISTORY, else the local operator's file, else the API)"
        ),
    )
    return parent


def open_history(args: argparse.Namespace, api: Any = None) -> RunReader | None:
    """Where past runs are read, or None when there is nowhere (never creates a store).

    An explicit store URL wins; else the local file a host-run operator writes; else the
    cluster's history API through ``api`` (the user's own connection)."""
    given = getattr(args, "history", None) or os.environ.get("SHIPWAY_HISTORY")
    through_api = ApiReader(api.get_path) if hasattr(api, "get_path") else None
    if given and given.strip().lower() == "api":
        return through_api
    url = store_url(given)
    if url is None:
        return None
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return through_api if url == default_url() else None
    try:
        return StoreReader(SqlStore(url))
    except Exception as exc:  # a down store must not break what the cluster can answer
        err(f"the history store cannot be read: {exc}")
        return None


def archived_pipeline(store: RunReader | None, namespace: str, name: str) -> dict[str, Any]:
    """The newest archived run of that name, as a Pipeline object; or the live 'not found'."""
    record = store.run(namespace, name) if store is not None else None
    if record is None:
        raise CommandError(f"pipeline {name!r} not found in namespace {namespace!r}")
    return body_of(record)


def archived_logs(
    store: RunReader | None, pipeline: Mapping[str, Any]
) -> dict[tuple[str, str], str]:
    """(pod, container) → the archived log of every pod of the run."""
    meta = pipeline.get("metadata") or {}
    uid = meta.get("uid") or ""
    if store is None or not uid:
        return {}
    logs = store.logs(meta.get("namespace") or "", meta.get("name") or "", uid)
    return {(item.pod, item.container): item.text for item in logs}


def masker_for(api: Any, pipeline: Mapping[str, Any]) -> Masker:
    """The values of the Secrets the Pipeline names, those the user may read: a live log
    prints masked as the archived one does (reading them is the user's own right)."""
    secrets = []
    for name in sorted(referenced_secrets(pipeline.get("spec") or {})):
        found = api.read_secret(name)
        if found is not None:
            secrets.append(found)
    return Masker(masked_values(secrets))


def history_table(
    records: Sequence[RunRecord], now: datetime, style: Style, namespaces: bool
) -> list[str]:
    """``shipway history``: one run a line, newest first."""
    header = (["NAMESPACE"] if namespaces else []) + [
        "NAME",
        "PROJECT",
        "BRANCH",
        "COMMIT",
        "PHASE",
        "STEPS",
        "DURATION",
        "AGE",
    ]
    rows = []
    for record in records:
        duration = ""
        if record.started_at and record.finished_at:
            duration = format_age((record.finished_at - record.started_at).total_seconds())
        age = format_age((now - record.created_at).total_seconds()) if record.created_at else "?"
        row = [
            record.name,
            record.project,
            record.branch,
            record.commit[:12],
            record.phase,
            str(record.steps),
            duration,
            age,
        ]
        rows.append(([record.namespace] if namespaces else []) + row)
    return phase_table(header, rows, style)


def gone_runs(
    store: RunReader | None, namespace: str | None, live: Iterable[Mapping[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """``list --all``: archived runs whose Pipeline object is gone, as objects."""
    if store is None:
        return []
    uids = {(item.get("metadata") or {}).get("uid") for item in live}
    return [body_of(r) for r in store.page(namespace, limit=limit) if r.uid not in uids]


def next_page(records: Sequence[RunRecord], limit: int) -> str | None:
    return cursor(records[-1]) if len(records) == limit and records else None


def register_history(
    sub: Any, conn: argparse.ArgumentParser, hist: argparse.ArgumentParser
) -> None:
    cmd = sub.add_parser(
        "history", parents=[conn, hist], help="past runs from the history, newest first"
    )
    cmd.add_argument("-A", "--all-namespaces", action="store_true")
    cmd.add_argument("--project", help="only this project (repository or directory)")
    cmd.add_argument("--branch", help="only this branch (or tag)")
    cmd.add_argument("--phase", choices=("Succeeded", "Failed", "Cancelled", "Running", "Pending"))
    cmd.add_argument("--limit", type=int, default=20, help="runs per page (default 20)")
    cmd.add_argument("--before", metavar="CURSOR", help="the page after this cursor")
    cmd.set_defaults(func=cmd_history)


@guarded
def cmd_history(args: argparse.Namespace, out: TextIO) -> int:
    if args.limit < 1:
        raise CommandError(f"--limit must be at least 1, not {args.limit}")
    api = common.connect_api(args)
    store = open_history(args, api)
    if store is None:
        raise CommandError(
            "no history store: set --history or SHIPWAY_HISTORY to the operator's (SQLAlchemy "
            "URL), or `api` for the cluster's history API"
        )
    namespace = None if args.all_namespaces else api.namespace
    try:
        records = store.page(
            namespace,
            project=args.project,
            branch=args.branch,
            phase=args.phase,
            limit=args.limit,
            before=args.before,
        )
    except ValueError as exc:
        raise CommandError(f"--before: not a cursor of shipway history: {exc}") from None
    if not records:
        err(f"no runs in {'any namespace' if namespace is None else f'namespace {namespace}'}")
        return OK
    for line in history_table(records, now(), style_for(out), args.all_namespaces):
        out.write(line + "\n")
    more = next_page(records, args.limit)
    if more:
        err(f"more: shipway history --before {more}")
    return OK
