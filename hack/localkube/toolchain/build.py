"""Go builds from the module proxy into the version-keyed cache.

* Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kube-proxy,
  kubelet) and etcd, from a small module (``gomod/kubernetes``) that requires
  ``k8s.io/kubernetes`` and pins every staging module to its ``v0.x.y`` twin; built with the
  version ldflags so ``kubectl version`` and the node's kubelet version are honest.
* helm, kwok and local-path-provisioner with ``go install module@version``.
* the sandbox ``pause`` program (``gomod/pause``).

A target is rebuilt only when its key (Go version, sources, flags) changes. ``bin/`` in the
cache holds a symlink to every binary.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localkube import config, progress
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.process import run
from localkube.toolchain import hostdeps

GOMOD = Path(__file__).parent / "gomod"


def go_command(paths: Paths) -> str:
    """The ``go`` to build with: on PATH if recent enough, else the one ``host-deps`` fetched."""
    found = hostdeps.find_go(paths.cache)
    if found is None:
        major, minor = config.GO_MINIMUM
        raise LocalkubeError(
            f"Go {major}.{minor} or later is needed to build the cluster: run `make host-deps`"
            " (it fetches Go from the Go module proxy), or put a recent `go` on PATH"
        )
    return found


def go_version(paths: Paths) -> str:
    return run([go_command(paths), "env", "GOVERSION"], env={"GOTOOLCHAIN": "local"}).stdout.strip()


def _k8s_ldflags() -> str:
    """The version ldflags (the same string, in the same order, as the first manual build)."""
    v = config.KUBERNETES_VERSION
    major, minor = v[1:].split(".")[:2]
    cb, cg = "k8s.io/component-base/version", "k8s.io/client-go/pkg/version"
    return (
        f"-s -w -X {cb}.gitVersion={v} -X {cb}.gitMajor={major} -X {cb}.gitMinor={minor}"
        f" -X {cb}.gitTreeState=clean -X {cb}.buildDate=2026-01-01T00:00:00Z"
        f" -X {cg}.gitVersion={v} -X {cg}.gitMajor={major} -X {cg}.gitMinor={minor}"
    )


def _helm_ldflags() -> str:
    """As helm's Makefile: its version, and the Kubernetes version of its client-go."""
    major, minor = config.HELM_K8S_VERSION
    flags = [
        f"-X helm.sh/helm/v3/internal/version.version={config.HELM_VERSION}",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
    ]
    for pkg in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        flags += [f"-X {pkg}.k8sVersionMajor={major}", f"-X {pkg}.k8sVersionMinor={minor}"]
    return " ".join(["-s -w", *flags])


@dataclass(frozen=True)
class Binary:
    name: str
    package: str
    cgo: bool = False
    #: Go build tags, and link flags replacing the target's (BuildKit's frontend differs).
    tags: str = ""
    ldflags: str = ""


@dataclass(frozen=True)
class Target:
    """A set of binaries built together and cached under ``<cache>/<name>/bin``."""

    name: str
    binaries: tuple[Binary, ...]
    #: ``go build`` inside this copied module directory, or ``go install pkg@version``.
    module_dir: Path | None = None
    install_version: str = ""
    ldflags: str = "-s -w"
    extra: tuple[str, ...] = field(default=())

    def bin_dir(self, paths: Paths) -> Path:
        return paths.cache / self.name / "bin"

    def key(self, gover: str) -> str:
        h = hashlib.sha256()
        h.update(json.dumps([self.name, gover, self.ldflags, self.install_version]).encode())
        h.update(json.dumps([b.__dict__ for b in self.binaries]).encode())
        if self.module_dir is not None:
            for f in sorted(self.module_dir.rglob("*")):
                if f.is_file():
                    h.update(str(f.relative_to(self.module_dir)).encode())
                    h.update(f.read_bytes())
        return h.hexdigest()[:16]


KUBERNETES = Target(
    f"kubernetes-{config.KUBERNETES_VERSION}",
    (
        Binary("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
        Binary("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
        Binary("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
        Binary("kubectl", "k8s.io/kubernetes/cmd/kubectl"),
        Binary("kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy"),
        # As upstream: the kubelet is the one dynamically linked binary.
        Binary("kubelet", "k8s.io/kubernetes/cmd/kubelet", cgo=True),
        Binary("etcd", "./etcd"),
    ),
    module_dir=GOMOD / "kubernetes",
    ldflags=_k8s_ldflags(),
)
PAUSE = Target(
    f"pause-{config.PAUSE_VERSION}",
    (Binary("pause", "."),),
    module_dir=GOMOD / "pause",
)
HELM = Target(
    f"helm-{config.HELM_VERSION}-k8s{'.'.join(config.HELM_K8S_VERSION)}",
    (Binary("helm", "helm.sh/helm/v3/cmd/helm"),),
    install_version=config.HELM_VERSION,
    ldflags=_helm_ldflags(),
)
KWOK = Target(
    f"kwok-{config.KWOK_VERSION}",
    (Binary("kwok", "sigs.k8s.io/kwok/cmd/kwok"),),
    install_version=config.KWOK_VERSION,
    ldflags=f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={config.KWOK_VERSION.lstrip('v')}",
)
LOCAL_PATH = Target(
    f"local-path-provisioner-{config.LOCAL_PATH_PROVISIONER_VERSION}",
    (Binary("local-path-provisioner", "github.com/rancher/local-path-provisioner"),),
    install_version=config.LOCAL_PATH_PROVISIONER_VERSION,
    ldflags=f"-s -w -X main.VERSION={config.LOCAL_PATH_PROVISIONER_VERSION}",
)
# -- BuildKit (issue #14): buildkitd, buildctl and the Dockerfile frontend, tagged as upstream's
# Dockerfile builds them, from the wrapper module gomod/buildkit (its go.mod copies BuildKit's
# `exclude` directives, which is why `go install …@version` refuses the module). No revision
# flag: the module proxy does not say which commit v0.34.2 is.
_BK = "github.com/moby/buildkit"
_BK_LDFLAGS = (
    f"-s -w -X {_BK}/version.Version={config.BUILDKIT_VERSION} -X {_BK}/version.Package={_BK}"
)
BUILDKIT = Target(
    f"buildkit-{config.BUILDKIT_VERSION}",
    (
        Binary("buildkitd", f"{_BK}/cmd/buildkitd", tags="osusergo netgo static_build seccomp"),
        Binary("buildctl", f"{_BK}/cmd/buildctl"),
        Binary(
            "dockerfile-frontend",
            f"{_BK}/frontend/dockerfile/cmd/dockerfile-frontend",
            tags="netgo static_build osusergo",
            ldflags=(
                f"-s -w -X main.Version={config.DOCKERFILE_FRONTEND_VERSION}"
                f" -X main.Package={_BK}/frontend/dockerfile/cmd/dockerfile-frontend"
            ),
        ),
    ),
    module_dir=GOMOD / "buildkit",
    ldflags=_BK_LDFLAGS,
)

REGISTRY = Target(
    f"registry-{config.REGISTRY_VERSION}",
    (Binary("registry", "."),),
    module_dir=GOMOD / "registry",
    ldflags=(
        "-s -w -X github.com/distribution/distribution/v3/version.version="
        f"{config.REGISTRY_VERSION}"
    ),
)
COREDNS = Target(
    f"coredns-{config.COREDNS_VERSION}",
    (Binary("coredns", "."),),
    module_dir=GOMOD / "coredns",
    ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=localkube",
)
CRANE = Target(
    f"crane-{config.CRANE_VERSION}",
    (Binary("crane", "github.com/google/go-containerregistry/cmd/crane"),),
    install_version=config.CRANE_VERSION,
    ldflags=(
        "-s -w -X github.com/google/go-containerregistry/cmd/crane/cmd.Version="
        f"{config.CRANE_VERSION}"
    ),
)
# -- Gitea (issue 26): the forge of the triggers e2e tests, from the wrapper module gomod/gitea
# (Gitea's go.mod has `replace` directives, which apply only in the main module, and declares
# its path as gitea.dev). SQLite is built in (the pure-Go modernc driver is Gitea's default
# since 1.26, so no cgo); no `bindata`: the API needs no embedded web assets. Not in TARGETS:
# built only when an add-on asks (localkube.addons.gitea.server), never by every `localkube up`.
GITEA = Target(
    f"gitea-{config.GITEA_VERSION}",
    (Binary("gitea", "gitea.dev", tags="netgo osusergo sqlite sqlite_unlock_notify"),),
    module_dir=GOMOD / "gitea",
    ldflags=(
        f"-s -w -X main.Version={config.GITEA_VERSION.lstrip('v')}"
        " -X 'main.Tags=netgo osusergo sqlite sqlite_unlock_notify'"
    ),
)
#: In build order: what ``up`` needs first.
TARGETS: dict[str, Target] = {
    "kubernetes": KUBERNETES,
    "pause": PAUSE,
    "local-path-provisioner": LOCAL_PATH,
    "coredns": COREDNS,
    "registry": REGISTRY,
    "crane": CRANE,
    "helm": HELM,
    "kwok": KWOK,
    "buildkit": BUILDKIT,
}


def _go_env(cgo: bool) -> dict[str, str]:
    return {
        "CGO_ENABLED": "1" if cgo else "0",
        "GOFLAGS": "-buildvcs=false",
        "GOTOOLCHAIN": "local",
    }


def is_built(target: Target, paths: Paths, gover: str | None = None) -> bool:
    stamp = target.bin_dir(paths).parent / "build.json"
    try:
        data = json.loads(stamp.read_text())
    except (FileNotFoundError, ValueError):
        return False
    if gover is not None and data.get("key") != target.key(gover):
        return False
    return all((target.bin_dir(paths) / b.name).is_file() for b in target.binaries)


def build(
    target: Target,
    paths: Paths,
    *,
    force: bool = False,
    log: bool = True,
    step: tuple[int, int] = (1, 1),
) -> Path:
    """Build ``target`` unless its cached binaries match; return its bin directory.

    ``step``: (k, N), its place among the components being built, for the progress lines.
    """
    gover = go_version(paths)
    go = go_command(paths)
    bin_dir = target.bin_dir(paths)
    if not force and is_built(target, paths, gover):
        _link(target, paths)
        return bin_dir
    k, n = step
    name = progress.family(target.name)
    records = progress.read_records(paths.cache)
    if log:
        print(f"localkube: {progress.start_line(k, n, name, records)}", flush=True)
    clock = progress.Clock()
    bin_dir.mkdir(parents=True, exist_ok=True)
    root = bin_dir.parent
    started = time.monotonic()
    timings: dict[str, float] = {}
    if target.module_dir is not None:
        src = root / "src"
        if src.exists():
            shutil.rmtree(src)
        shutil.copytree(target.module_dir, src)
    for b in target.binaries:
        t0 = time.monotonic()
        with progress.ticking(
            progress.ticker(k, n, name, clock, records=records, detail=b.name),
            _say if log else _quiet,
        ):
            _build_binary(target, b, paths, go, root=root)
        timings[b.name] = round(time.monotonic() - t0, 1)
    total = round(time.monotonic() - started, 1)
    (root / "build.json").write_text(
        json.dumps(
            {
                "key": target.key(gover),
                "go": gover,
                "seconds": total,
                "binaries": timings,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )
    progress.record(paths.cache, name, total)
    if log:
        print(f"localkube: {progress.done_line(k, n, name, total)}", flush=True)
    _link(target, paths)
    return bin_dir


def _say(line: str) -> None:
    print(f"localkube: {line}", flush=True)


def _quiet(line: str) -> None:
    return None


def _build_binary(target: Target, b: Binary, paths: Paths, go: str, *, root: Path) -> None:
    bin_dir = target.bin_dir(paths)
    argv: Sequence[str]
    if target.module_dir is not None:
        argv = [go, "build", "-trimpath", "-ldflags", b.ldflags or target.ldflags]
        argv += [f"-tags={b.tags}"] if b.tags else []
        argv += ["-o", str(bin_dir / b.name), b.package]
        run(argv, env=_go_env(b.cgo), cwd=root / "src")
    else:
        argv = [go, "install", "-trimpath", "-ldflags", target.ldflags]
        argv += [f"{b.package}@{target.install_version}"]
        run(argv, env={**_go_env(b.cgo), "GOBIN": str(bin_dir)})
        installed = bin_dir / b.package.rsplit("/", 1)[-1]
        if installed.name != b.name:
            installed.rename(bin_dir / b.name)


def _link(target: Target, paths: Paths) -> None:
    paths.bin.mkdir(parents=True, exist_ok=True)
    for b in target.binaries:
        link = paths.bin / b.name
        dest = target.bin_dir(paths) / b.name
        if link.is_symlink() and link.readlink() == dest:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(dest)


def build_all(paths: Paths, names: Iterable[str] | None = None, *, force: bool = False) -> None:
    wanted = list(names) if names else list(TARGETS)
    unknown = [n for n in wanted if n not in TARGETS]
    if unknown:
        raise LocalkubeError(f"unknown build target(s) {unknown}; known: {sorted(TARGETS)}")
    gover = go_version(paths)
    todo = [n for n in wanted if force or not is_built(TARGETS[n], paths, gover)]
    if todo:
        names = [progress.family(TARGETS[n].name) for n in todo]
        line = progress.plan_line(names, progress.read_records(paths.cache))
        print(f"localkube: {line}", flush=True)
    for name in wanted:
        step = (todo.index(name) + 1, len(todo)) if name in todo else (0, 0)
        build(TARGETS[name], paths, force=force, step=step)


def dry_run(paths: Paths, names: Iterable[str]) -> list[str]:
    """What :func:`build_all` of ``names`` would build on a fresh machine (with the expected
    times), and what it would build here; builds nothing."""
    wanted = list(names)
    records = progress.read_records(paths.cache)
    gover = go_version(paths)
    missing = [n for n in wanted if not is_built(TARGETS[n], paths, gover)]
    families = [progress.family(TARGETS[n].name) for n in wanted]
    return [
        f"on a fresh machine, {progress.plan_line(families, records)}",
        f"here: {', '.join(missing) + ' to build' if missing else 'all built (cached)'}",
    ]


def binary(paths: Paths, name: str) -> Path:
    """The cached binary ``name`` (kubectl, kubelet, helm, ...); error if not built."""
    for target in TARGETS.values():
        for b in target.binaries:
            if b.name == name:
                path = target.bin_dir(paths) / name
                if not path.is_file():
                    raise LocalkubeError(
                        f"{name} is not built yet: run `python -m localkube build`"
                    )
                return path
    raise LocalkubeError(f"unknown binary {name}")
