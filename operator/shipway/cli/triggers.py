"""``shipway triggers``: the webhook receiver and commit-status reporter (issue 26)."""

from __future__ import annotations

import argparse
import logging
from typing import Any, TextIO


def cmd_triggers(args: argparse.Namespace, out: TextIO) -> int:
    from aiohttp import web

    from shipway.cli.cluster import connect
    from shipway.triggers.kube import TriggersApi
    from shipway.triggers.receiver import Receiver
    from shipway.triggers.reporter import Reporter
    from shipway.triggers.spares import Spares
    from shipway.triggers.worker import Settings, Worker

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")  # fmt: skip
    connection = connect(args.kubeconfig, args.context, None)
    api = TriggersApi(connection.api)
    namespaces = list(args.namespace or [connection.namespace])
    spares = Spares(api, namespaces)
    worker = Worker(api, Settings(run_url=args.run_url or ""), spares)

    api.start_caches(namespaces, on_repository=spares.poke, on_claim=spares.poke)
    if not api.wait_synced(30):
        out.write("shipway triggers: the Repository and Secret watches are not synced yet\n")
    receiver = Receiver(api, worker, namespaces)
    Reporter(api, worker, namespaces).start()
    spares.start()
    out.write(
        f"shipway triggers: listening on {args.address}:{args.port} for {', '.join(namespaces)}\n"
    )
    out.flush()
    web.run_app(receiver.app(), host=args.address, port=args.port, print=None,
                handle_signals=True, shutdown_timeout=2)  # fmt: skip
    return 0


def register(sub: Any) -> None:
    from shipway.cli.common import connection_flags

    conn = connection_flags()
    trig = sub.add_parser(
        "triggers",
        parents=[conn],
        conflict_handler="resolve",
        help="receive forge webhooks: Repositories' pushes create Pipelines (docs/triggers.md)",
    )
    trig.add_argument(
        "-n", "--namespace", action="append", help="serve this namespace (repeatable)"
    )
    trig.add_argument("--address", default="0.0.0.0", help="address to listen on")
    trig.add_argument("--port", type=int, default=8090, help="port to listen on")
    trig.add_argument(
        "--run-url",
        help="link of a run in commit statuses, {namespace} and {name} replaced (the dashboard)",
    )
    trig.add_argument("-v", "--verbose", action="store_true")
    trig.set_defaults(func=cmd_triggers)
