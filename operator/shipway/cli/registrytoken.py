"""``shipway registry-token``: the registry's token service and its credentials.

``serve`` runs the token endpoint distribution's ``auth: token:`` points at (its ``realm``);
``password`` prints a namespace's password (what the operator mints into the namespace);
``jwks`` prints the key set the registry's ``jwks`` option reads; ``signing-key`` makes a key.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from shipway.registryauth.credentials import check_key, namespace_password
from shipway.registryauth.policy import MIRROR_PREFIXES
from shipway.registryauth.server import load_settings, make_server
from shipway.registryauth.service import DEFAULT_TTL
from shipway.registryauth.tokens import Signer, new_key_pem


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    settings = load_settings(
        key_file=Path(args.key_file),
        signing_key_file=Path(args.signing_key_file),
        service=args.service,
        issuer=args.issuer,
        admin_password_file=Path(args.admin_password_file) if args.admin_password_file else None,
        prefix=args.prefix,
        ttl=args.ttl,
        public_prefixes=tuple(
            p if p.endswith("/") else f"{p}/" for p in (args.public_prefix or MIRROR_PREFIXES)
        ),
    )
    host, _, port = args.listen.rpartition(":")
    server = make_server(
        settings,
        host or "0.0.0.0",
        int(port),
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
    )
    print(f"shipway registry-token: serving {args.service} on {args.listen}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _password(args: argparse.Namespace, out: TextIO) -> int:
    key = check_key(Path(args.key_file).read_bytes().strip())
    print(namespace_password(key, args.namespace), file=out)
    return 0


def _jwks(args: argparse.Namespace, out: TextIO) -> int:
    print(json.dumps(Signer(Path(args.signing_key_file).read_bytes()).jwks()), file=out)
    return 0


def _signing_key(args: argparse.Namespace, out: TextIO) -> int:
    out.write(new_key_pem().decode())
    return 0


def register(sub: Any) -> None:
    top = sub.add_parser("registry-token", help="the registry's per-namespace token service")
    cmds = top.add_subparsers(dest="registry_command", required=True)
    serve = cmds.add_parser("serve", help="serve the token endpoint (the registry's realm)")
    serve.add_argument("--key-file", required=True, help="the key namespace passwords derive from")
    serve.add_argument("--signing-key-file", required=True, help="EC P-256 private key (PEM)")
    serve.add_argument("--service", required=True, help="the registry's auth.token.service")
    serve.add_argument("--issuer", required=True, help="the registry's auth.token.issuer")
    serve.add_argument("--admin-password-file", help="the admin's password (everything allowed)")
    serve.add_argument("--prefix", default="", help="path before <namespace>/ in repositories")
    serve.add_argument(
        "--public-prefix",
        action="append",
        help="repositories anyone may pull, nobody but the admin push (repeatable; default "
        + " and ".join(MIRROR_PREFIXES)
        + ": the docker.io mirror)",
    )
    serve.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="token lifetime, seconds")
    serve.add_argument("--listen", default="0.0.0.0:5001", help="host:port")
    serve.add_argument("--tls-cert", help="serving certificate (PEM); plain HTTP without")
    serve.add_argument("--tls-key", help="its private key (PEM)")
    serve.set_defaults(func=_serve)
    pw = cmds.add_parser("password", help="print a namespace's registry password")
    pw.add_argument("namespace")
    pw.add_argument("--key-file", required=True)
    pw.set_defaults(func=_password)
    jwks = cmds.add_parser("jwks", help="print the key set the registry trusts")
    jwks.add_argument("--signing-key-file", required=True)
    jwks.set_defaults(func=_jwks)
    key = cmds.add_parser("signing-key", help="print a new EC P-256 signing key (PEM)")
    key.set_defaults(func=_signing_key)
