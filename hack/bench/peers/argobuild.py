"""Argo Workflows' ``workflow-controller`` and ``argoexec``, built from the Go module proxy.

The module's ``go.mod`` has no ``replace`` or ``exclude`` directives, so ``go install
module@version`` builds the controller as published. ``argoexec`` does not build that way:
upstream's ``workflow/executor/osspecific/signal_linux.go`` is a symlink to
``signal_darwin.go``, and module zips drop symlinks, so on Linux ``Setpgid`` and friends are
undefined. It is built inside a copy of the module in the cache with that one symlink put back
(the module's own ``go.mod`` and ``go.sum``, nothing else changed). Both binaries are cached by
version under the cluster's cache like every other binary, so a rerun reuses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from pathlib import Path

from localkube import progress
from localkube.config import Paths
from localkube.process import run
from localkube.toolchain import build

ARGO_VERSION = "v4.0.5"
ARGO_MODULE = "github.com/argoproj/argo-workflows/v4"
_LDFLAGS = (
    f"-s -w -X {ARGO_MODULE}.version={ARGO_VERSION}"
    f" -X {ARGO_MODULE}.gitTag={ARGO_VERSION} -X {ARGO_MODULE}.gitTreeState=clean"
)
ARGO = build.Target(
    f"argo-workflows-{ARGO_VERSION}",
    (
        build.Binary("workflow-controller", f"{ARGO_MODULE}/cmd/workflow-controller"),
        build.Binary("argoexec", "./cmd/argoexec"),
    ),
    install_version=ARGO_VERSION,
    ldflags=_LDFLAGS,
)
#: The symlinks upstream has and the module zip lacks: (link, its target in the same folder).
SYMLINKS = (("workflow/executor/osspecific/signal_linux.go", "signal_darwin.go"),)
_ENV = {"CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local"}


def module_dir(paths: Paths) -> Path:
    """The module's files in Go's module cache (downloaded if needed)."""
    go = build.go_command(paths)
    out = run([go, "mod", "download", "-json", f"{ARGO_MODULE}@{ARGO_VERSION}"])
    return Path(json.loads(out.stdout)["Dir"])


def _source_copy(paths: Paths) -> Path:
    """A writable copy of the module with upstream's symlinks restored."""
    src = ARGO.bin_dir(paths).parent / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(module_dir(paths), src)
    for root, dirs, files in os.walk(src):  # the module cache's files are read-only
        for name in dirs + files:
            p = Path(root) / name
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    for link, target in SYMLINKS:
        path = src / link
        if not path.exists():
            path.symlink_to(target)
    return src


def ensure_built(paths: Paths) -> Path:
    """The directory holding both binaries, building them first on a cold cache."""
    gover = build.go_version(paths)
    bin_dir = ARGO.bin_dir(paths)
    if build.is_built(ARGO, paths, gover):
        return bin_dir
    go = build.go_command(paths)
    bin_dir.mkdir(parents=True, exist_ok=True)
    stamp = bin_dir.parent / "build.json"
    timings: dict[str, float] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        timings = json.loads(stamp.read_text()).get("binaries", {})
    name = progress.family(ARGO.name)
    print(f"bench-peers: building {ARGO.name} from the Go module proxy (cold: ~35 min on 2 cores)")
    controller, executor = ARGO.binaries
    if not (bin_dir / controller.name).is_file():
        t0 = time.monotonic()
        run(
            [go, "install", "-trimpath", "-ldflags", ARGO.ldflags,
             f"{controller.package}@{ARGO_VERSION}"],
            env={**_ENV, "GOBIN": str(bin_dir)},
        )  # fmt: skip
        timings[controller.name] = round(time.monotonic() - t0, 1)
    if not (bin_dir / executor.name).is_file():
        t0 = time.monotonic()
        src = _source_copy(paths)
        run(
            [go, "build", "-trimpath", "-ldflags", ARGO.ldflags,
             "-o", str(bin_dir / executor.name), executor.package],
            env=_ENV,
            cwd=src,
        )  # fmt: skip
        shutil.rmtree(src)
        timings[executor.name] = round(time.monotonic() - t0, 1)
    total = round(sum(timings.values()), 1)
    stamp.write_text(
        json.dumps(
            {
                "key": ARGO.key(gover),
                "go": gover,
                "seconds": total,
                "binaries": timings,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )
    progress.record(paths.cache, name, total)
    return bin_dir
