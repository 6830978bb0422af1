"""``shipway dashboard``: serve the dashboard.

On a laptop it listens on 127.0.0.1 only and acts with the kubeconfig's user, like
``kubectl proxy``. In the cluster (``--in-cluster``, the chart's ``dashboard.enabled``) it holds
no power of its own: each request brings its user's bearer token (TokenReview), or comes from
the authenticating proxy whose client certificate ``--proxy-ca`` verifies and
``--trusted-proxy`` names.
"""

from __future__ import annotations

import argparse
import ssl
from typing import Any, TextIO

from aiohttp import web

from shipway.dashboard import kube
from shipway.dashboard.app import make_app
from shipway.dashboard.context import Settings
from shipway.dashboard.reader import SqlRunReader
from shipway.history.store import SqlStore, store_url


def register(sub: Any) -> None:
    cmd = sub.add_parser(
        "dashboard", help="serve the web dashboard: runs, step trees, live logs, actions"
    )
    cmd.add_argument("--address", default="127.0.0.1", help="listen here (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    cmd.add_argument("--kubeconfig", help="the kubeconfig whose user acts (default: kubectl's)")
    cmd.add_argument("--context", help="the kubeconfig context")
    cmd.add_argument(
        "--history", metavar="URL", help="the history store (default: $SHIPWAY_HISTORY)"
    )
    cmd.add_argument(
        "--in-cluster",
        action="store_true",
        help="users come with bearer tokens or through the trusted proxy; the dashboard's own "
        "account (the pod's, or --kubeconfig's user) only reviews them",
    )
    cmd.add_argument("--tls-cert", help="serve HTTPS with this certificate (in the cluster)")
    cmd.add_argument("--tls-key", help="its key")
    cmd.add_argument("--proxy-ca", help="CA of the authenticating proxy's client certificate")
    cmd.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CN",
        help="common name of the proxy's client certificate whose user headers count",
    )
    cmd.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace, out: TextIO) -> int:
    import os

    url = store_url(args.history or os.environ.get("SHIPWAY_HISTORY"))
    if url is None:
        out.write("shipway dashboard: the history is off (SHIPWAY_HISTORY=off): nothing to show\n")
        return 1
    if args.trusted_proxy and not (args.proxy_ca and args.tls_cert):
        out.write("shipway dashboard: --trusted-proxy needs --proxy-ca and --tls-cert (mTLS)\n")
        return 1
    # The dashboard's own account: the kubeconfig's user on a laptop (it acts as that user);
    # in the cluster the pod's service account, or a kubeconfig's user when --kubeconfig is
    # given (the mode tried out of a pod), which only reviews the users' identities and rights
    if args.in_cluster and not args.kubeconfig:
        credentials = kube.in_cluster()
    else:
        credentials = kube.from_kubeconfig(args.kubeconfig, args.context)
    settings = Settings(
        reader=SqlRunReader(SqlStore(url)),
        credentials=credentials,
        in_cluster=args.in_cluster,
        trusted_proxies=tuple(args.trusted_proxy),
    )
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.proxy_ca:
            context.load_verify_locations(args.proxy_ca)
            context.verify_mode = ssl.CERT_OPTIONAL  # bearer tokens come without a certificate
    scheme = "https" if context else "http"
    out.write(f"shipway dashboard on {scheme}://{args.address}:{args.port}/\n")
    out.flush()
    web.run_app(
        make_app(settings),
        host=args.address,
        port=args.port,
        ssl_context=context,
        print=None,
        access_log=None,
    )
    return 0
