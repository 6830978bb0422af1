"""``python -m localkube``: the command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from localkube import config
from localkube.addons import kwok
from localkube.addons.registry import mirror, retention
from localkube.cluster import cleanup, host, pki
from localkube.cluster import lifecycle as cluster
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images import recipes as imageset
from localkube.toolchain import build, hostdeps


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localkube",
        description=(
            f"A real single-node Kubernetes {config.KUBERNETES_VERSION} cluster, built offline"
            " from the Go module proxy and Debian packages. Needs Linux and root."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("up", help="build what is missing and start the cluster (idempotent)")
    p.add_argument("--core-only", action="store_true", help="skip building helm and kwok")
    p.add_argument(
        "--for",
        dest="profile",
        choices=sorted(cluster.PROFILES),
        help="build only what this use needs (demo: no kwok); default all",
    )
    p.add_argument("--kwok-nodes", type=int, default=0, metavar="N", help="add N fake nodes")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only list what this use builds (on a fresh machine, and here) and start nothing",
    )
    p = sub.add_parser("down", help="stop the cluster and clean the host")
    p.add_argument("--verify", action="store_true", help="then check nothing was left behind")
    sub.add_parser("status", help="show the components and nodes; exit 1 unless up")
    p = sub.add_parser("build", help="build (or reuse) binaries in the cache")
    p.add_argument("targets", nargs="*", help=f"default: all of {', '.join(build.TARGETS)}")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("images", help="build (or reuse) the image archives; import them if up")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path")
    sub.add_parser("env", help="print shell exports: KUBECONFIG and PATH with kubectl/helm")
    p = sub.add_parser("kwok-nodes", help="run kwok and scale the fake nodes to N")
    p.add_argument("count", type=int)
    sub.add_parser("verify-clean", help="exit 1 if the host holds anything of the cluster")
    p = sub.add_parser(
        "host-deps",
        help="install the Debian packages the cluster needs (apt-get, as root) and Go if missing",
    )
    p.add_argument("packages", nargs="*", help="only these packages (default: all, and Go)")
    p = sub.add_parser("mirror", help="push the base images into the in-cluster registry")
    p.add_argument("images", nargs="*", help="recipe names (default: all)")
    sub.add_parser(
        "registry-gc", help="garbage-collect the registry (read-only meanwhile): untagged images"
    )
    p = sub.add_parser(
        "registry-prune", help="delete every image of the repositories under a prefix"
    )
    p.add_argument("prefix", help="repository prefix, e.g. shipway/my-namespace/my-pipeline")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = Paths.default()
    try:
        return _dispatch(args, paths)
    except LocalkubeError as exc:
        print(f"localkube: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, paths: Paths) -> int:
    cmd: str = args.command
    if cmd == "kubeconfig":
        print(paths.kubeconfig)
        return 0
    if cmd == "env":
        print(f"export KUBECONFIG={paths.kubeconfig}")
        print(f'export PATH="{paths.bin}:$PATH"')
        return 0
    if cmd == "host-deps":
        installed = hostdeps.ensure(args.packages or hostdeps.PACKAGES)
        if not args.packages:
            hostdeps.ensure_go(paths.cache)
        print(
            f"localkube: installed {' '.join(installed)}"
            if installed
            else "localkube: host packages present"
        )
        return 0
    if cmd == "up" and args.dry_run:
        profile = args.profile or ("core" if args.core_only else "all")
        for line in build.dry_run(paths, cluster.PROFILES[profile]):
            print(f"localkube: up --for {profile}: {line}")
        return 0
    host.check_platform()
    if cmd == "up":
        cluster.up(paths, build_all=not args.core_only, profile=args.profile)
        if args.kwok_nodes:
            kwok.scale(paths, args.kwok_nodes)
        print(f"export KUBECONFIG={paths.kubeconfig}")
        return 0
    if cmd == "down":
        started = time.monotonic()
        cleanup.down(paths)
        cluster.log(f"down took {time.monotonic() - started:.1f}s")
        return _verify(paths) if args.verify else 0
    if cmd == "status":
        healthy, text = cluster.status(paths)
        print(text)
        return 0 if healthy else 1
    if cmd == "build":
        build.build_all(paths, args.targets or None, force=args.force)
        print(f"binaries: {paths.bin}")
        return 0
    if cmd == "images":
        address = paths.containerd_socket if cluster.is_up(paths) else None
        for info in imageset.ensure_all(paths, import_into=address):
            print(f"{info.ref}  {info.manifest_digest}  {info.archive}")
        return 0
    if cmd in ("mirror", "registry-gc", "registry-prune") and not cluster.is_up(paths):
        raise LocalkubeError("the cluster is not running: `python -m localkube up` first")
    if cmd == "mirror":
        for ref, digest in mirror.push_all(paths, args.images or None):
            print(f"{ref}  {digest}")
        return 0
    if cmd == "registry-gc":
        keys = pki.Pki(paths.pki, "", "")
        print(retention.gc(paths, keys))
        return 0
    if cmd == "registry-prune":
        for ref in retention.prune(paths, args.prefix):
            print(f"deleted {ref}")
        return 0
    if cmd == "kwok-nodes":
        kwok.scale(paths, args.count)
        return 0
    if cmd == "verify-clean":
        return _verify(paths)
    raise LocalkubeError(f"unknown command {cmd}")


def _verify(paths: Paths) -> int:
    problems = cleanup.verify(paths)
    if problems:
        print("localkube: the host is NOT clean:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(
        "localkube: the host is clean (no process, mount, iptables rule, veth, bridge,"
        " network namespace, cgroup, log link or changed sysctl of the cluster)"
    )
    return 0
