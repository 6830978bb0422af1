"""The ``shipway`` command: run the operator, validate and render Pipelines without a cluster.

The other subcommands (convert, run, status, logs, cancel, list) live in ``commands``; they
load the Kubernetes client only when they run, so ``shipway validate`` and ``render`` stay quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from shipway import GROUP, KIND, __version__
from shipway.compiler.document import compile_doc, display_name, problem_lines
from shipway.compiler.errors import InvalidSpecError
from shipway.compiler.limits import OPERATOR_RECURSION_LIMIT, TooDeepToReadError, read_deep
from shipway.engine.objects import PipelineRef

PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


class UsageError(Exception):
    """Bad command-line input (a missing file, no Pipeline in it)."""


def _read(path: str) -> str:
    """The file's text decoded as kubectl does: bytes that are not UTF-8 become U+FFFD, which
    the compiler then reports naming the field (instead of a UnicodeDecodeError here)."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        return raw.decode("utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None


def pipelines_in(path: str) -> Iterator[dict[str, Any]]:
    """Every Pipeline document in a YAML file (other kinds are ignored)."""
    text = _read(path)
    try:
        docs = read_deep(lambda: list(yaml.safe_load_all(text)))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from None
    except TooDeepToReadError as exc:
        raise UsageError(f"{path}: {exc}") from None
    found = False
    for doc in docs:
        if (
            isinstance(doc, dict)
            and doc.get("kind") == KIND
            and str(doc.get("apiVersion", "")).startswith(f"{GROUP}/")
        ):
            found = True
            yield doc
    if not found:
        raise UsageError(f"{path}: no {KIND} (apiVersion {GROUP}/v1alpha1) found")


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    failed = 0
    for path in args.files:
        for doc in pipelines_in(path):
            try:
                compiled = compile_doc(doc)
            except InvalidSpecError as exc:
                failed += 1
                for line in problem_lines(doc, exc):
                    print(line if line.startswith(" ") else f"{path}: {line}", file=out)
                continue
            steps = sum(1 for run in compiled.runs if run.on_fail_of is None)
            print(f"{path}: Pipeline {display_name(doc)} is valid ({steps} steps)", file=out)
    return 1 if failed else 0


def cmd_render(args: argparse.Namespace, out: TextIO) -> int:
    from shipway.engine.pods.manifests import all_manifests

    documents: list[dict[str, Any]] = []
    for doc in pipelines_in(args.file):
        try:
            compiled = compile_doc(doc)
        except InvalidSpecError as exc:
            for line in problem_lines(doc, exc):
                print(line if line.startswith(" ") else f"{args.file}: {line}", file=sys.stderr)
            return 1
        meta = doc.get("metadata") or {}
        name = meta.get("name") or f"{meta.get('generateName', 'pipeline-')}xxxxx"
        namespace = args.namespace or meta.get("namespace") or "default"
        ref = PipelineRef(name, namespace, PLACEHOLDER_UID, 1, None)
        documents.extend(all_manifests(ref, compiled))
    yaml.safe_dump_all(documents, out, sort_keys=False, width=100)
    return 0


def cmd_crd(args: argparse.Namespace, out: TextIO) -> int:
    from shipway.compiler.crd import render

    out.write(render())
    return 0


def cmd_operator(args: argparse.Namespace, out: TextIO) -> int:
    import kopf

    import shipway.controller.handlers  # noqa: F401  (importing registers them)
    from shipway.controller.config import ConfigError, OperatorConfig

    if not args.namespace and not args.all_namespaces:
        raise UsageError("choose namespaces: -n NAMESPACE (repeatable) or -A/--all-namespaces")
    try:  # a bad setting stops the operator here, not in a retry loop
        config = OperatorConfig.from_env(os.environ).with_flags(
            namespaces=tuple(args.namespace or ()),
            clusterwide=args.all_namespaces,
            metrics_port=args.metrics_port,
        )
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    sys.setrecursionlimit(max(sys.getrecursionlimit(), OPERATOR_RECURSION_LIMIT))
    if args.webhook_port is not None or args.webhook_url is not None:
        from shipway.controller import admission

        try:
            webhook = admission.options(
                port=args.webhook_port,
                url=args.webhook_url,
                cert=args.webhook_cert,
                key=args.webhook_key,
                failure_policy=args.webhook_failure_policy,
                config_name=args.webhook_config,
                namespaces=tuple(args.namespace or ()),
                clusterwide=args.all_namespaces,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        admission.register(webhook, config.pods.docker)
    kopf.configure(verbose=args.verbose, debug=args.debug)
    kopf.run(
        memo=kopf.Memo(config=config),
        clusterwide=args.all_namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=args.liveness,
        standalone=None if args.peering else True,
        peering_name=args.peering,
        priority=args.priority,
    )
    return 0


def parser(*, everything: bool = True) -> argparse.ArgumentParser:
    """The command line; ``everything=False``: the built-in commands only (the operator's)."""
    top = argparse.ArgumentParser(
        prog="shipway", description="Codeship Pro pipelines, run natively on Kubernetes."
    )
    top.add_argument("--version", action="version", version=f"shipway {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    op = sub.add_parser("operator", help="run the operator")
    op.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    op.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    op.add_argument(
        "--liveness", help="serve kopf's health probe, e.g. http://0.0.0.0:8080/healthz"
    )
    op.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (or set SHIPWAY_METRICS_PORT)",
    )
    hook = op.add_argument_group(
        "admission webhook", "refuse bad Pipelines at kubectl apply (docs/pipeline-api.md)"
    )
    hook.add_argument(
        "--webhook-port", type=int, help="serve the validating webhook on this port (9443)"
    )
    hook.add_argument(
        "--webhook-url",
        help="where the API server reaches this process, e.g. https://127.0.0.1:9443: the "
        "operator then keeps its own webhook configuration, scoped to its namespaces",
    )
    hook.add_argument("--webhook-cert", help="serving certificate (PEM); else a self-signed one")
    hook.add_argument("--webhook-key", help="its private key (PEM)")
    hook.add_argument(
        "--webhook-failure-policy",
        choices=("Fail", "Ignore"),
        default="Fail",
        help="of the configuration --webhook-url makes: refuse (Fail) or admit (Ignore) "
        "Pipelines while the webhook cannot be reached",
    )
    hook.add_argument(
        "--webhook-config", help="name of that configuration (default: one per scope and URL)"
    )
    op.add_argument("--peering", help="KopfPeering name for several replicas (HA)")
    op.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    op.add_argument("-v", "--verbose", action="store_true")
    op.add_argument("--debug", action="store_true")
    op.set_defaults(func=cmd_operator)

    val = sub.add_parser("validate", help="check Pipeline files as the operator would")
    val.add_argument("files", nargs="+", help="YAML files ('-' for standard input)")
    val.set_defaults(func=cmd_validate)

    ren = sub.add_parser("render", help="print the PVC and Pods the operator would create")
    ren.add_argument("file", help="YAML file ('-' for standard input)")
    ren.add_argument("-n", "--namespace", help="namespace to render into")
    ren.set_defaults(func=cmd_render)

    crd = sub.add_parser("crd", help="print the Pipeline CustomResourceDefinition")
    crd.set_defaults(func=cmd_crd)
    if not everything:
        return top

    from shipway.cli.commands import register
    from shipway.cli.dashboard import register as register_dashboard
    from shipway.cli.registrytoken import register as register_registry_token
    from shipway.cli.triggers import register as register_triggers

    register(sub)
    register_registry_token(sub)
    register_dashboard(sub)
    register_triggers(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The operator runs for weeks: the other commands' modules (the history's SQLAlchemy, the
    # dashboard's web stack, the converter) are not loaded into it, ~20 MB resident.
    args = parser(everything=argv[:1] != ["operator"]).parse_args(argv)
    try:
        result: int = args.func(args, sys.stdout)
        sys.stdout.flush()
    except UsageError as exc:
        print(f"shipway: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader left (shipway render ... | head): as cat does, stop quietly; point
        # stdout at /dev/null so that the interpreter's own flush at exit does not complain
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
    return result
