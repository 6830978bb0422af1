"""The Shipway operator image for the local cluster: the Dockerfile's layout, without Docker.

The repository's ``Dockerfile`` installs Debian 12's Python 3.11 and a virtualenv at
``/opt/shipway`` (the pinned ``docker/requirements.txt`` plus the Shipway wheel, pruned by
``docker/prune_venv.py``) and runs ``/opt/shipway/bin/python -m shipway`` as uid 65532. There is
no Docker engine and no registry here, so this module assembles the same tree from the host's
own Debian packages (the host is Debian 12 too) and wheels from PyPI:

* the interpreter and standard library: the files of ``python3.11-minimal``,
  ``libpython3.11-minimal`` and ``libpython3.11-stdlib`` (what the Dockerfile's runtime stage
  installs), with every shared library they and the wheels link against;
* the virtualenv: made by that interpreter's ``venv``, filled with the same wheels, pruned by
  the same script;
* bytecode compiled with ``unchecked-hash`` invalidation, because image layers reset file
  times (timestamp-checked ``.pyc`` files would be stale and recompiled at every start on
  the read-only root filesystem).

What the Dockerfile image has and this one lacks: Debian's base utilities (shell, coreutils,
apt); the operator uses none of them.

The archive is cached under ``<cache>/images`` by a key over the Debian package versions, the
lock file, the pruning script and the operator's sources; wheels under ``<cache>/wheels`` by
the lock file. ``python -m localkube.operator_image`` builds (or reuses) and imports it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from localkube import cluster
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images import ImageConfig, ImageInfo, image_digests, import_archive
from localkube.imageset import Recipe, ensure_archive
from localkube.process import run

ROOT = Path(__file__).resolve().parents[2]
#: The name the Helm chart's default values use (charts/shipway/values.yaml: image.*).
REPOSITORY = "ghcr.io/shipway-dev/shipway"
TAG = "0.1.0"
REF = f"{REPOSITORY}:{TAG}"
#: Bump when the recipe changes in a way its inputs do not show.
RECIPE_VERSION = "1"

VENV = "/opt/shipway"
PYTHON = "/usr/bin/python3.11"
UID = 65532
#: The Debian packages the Dockerfile's runtime stage installs.
PYTHON_PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib")
#: Their library dependencies (and glibc's libgcc_s, loaded at thread exit): part of the key.
LIBRARY_PACKAGES = (
    "libc6",
    "libgcc-s1",
    "libssl3",
    "libffi8",
    "zlib1g",
    "libexpat1",
    "libbz2-1.0",
    "liblzma5",
    "libsqlite3-0",
    "libuuid1",
    "libncursesw6",
    "libtinfo6",
    "libreadline8",
    "libcrypt1",
    "libdb5.3",
    "libnsl2",
    "libtirpc3",
)
#: Debian files an image does not need.
SKIP_PREFIXES = (
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/lintian/",
    "/usr/share/binfmts/",
    "/usr/lib/binfmt.d/",
)
#: Libraries loaded with dlopen, which ldd does not show.
DLOPENED = ("libgcc_s.so.1",)
MULTIARCH = "/usr/lib/x86_64-linux-gnu"

IMAGE_CONFIG = ImageConfig(
    entrypoint=[f"{VENV}/bin/python", "-m", "shipway"],
    cmd=["--help"],
    env={
        "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    },
    user=f"{UID}:{UID}",
    workdir=VENV,
    labels={
        "org.opencontainers.image.title": "shipway",
        "org.opencontainers.image.description": "Codeship Pro pipelines run natively on Kubernetes",
        "org.opencontainers.image.source": "https://github.com/shipway-dev/shipway",
        "org.opencontainers.image.licenses": "Apache-2.0",
    },
)

PASSWD = f"""root:x:0:0:root:/root:/usr/sbin/nologin
nonroot:x:{UID}:{UID}::/nonexistent:/usr/sbin/nologin
"""
GROUP = f"""root:x:0:
nonroot:x:{UID}:
"""
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"


def lock_file(repo: Path = ROOT) -> Path:
    return repo / "docker" / "requirements.txt"


def prune_script(repo: Path = ROOT) -> Path:
    return repo / "docker" / "prune_venv.py"


def _digest_files(files: Iterable[Path], base: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(base)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def source_files(repo: Path = ROOT) -> list[Path]:
    """What the Dockerfile copies into its builder: the wheel's inputs and the docker/ files."""
    files = [repo / "pyproject.toml", repo / "README.md", lock_file(repo), prune_script(repo)]
    for f in sorted((repo / "operator").rglob("*")):
        if not f.is_file() or "__pycache__" in f.parts or f.suffix == ".pyc":
            continue
        if any(part.endswith(".egg-info") for part in f.parts):
            continue
        files.append(f)
    return files


def debian_versions(packages: Iterable[str]) -> list[str]:
    names = list(packages)
    out = run(["dpkg-query", "-W", "-f=${Package}=${Version}\n", *names], check=False)
    found = sorted(line for line in out.stdout.splitlines() if line.strip())
    if out.returncode != 0 or len(found) != len(names):
        raise LocalkubeError(
            f"Debian packages missing for the operator image: apt-get install -y {' '.join(names)}"
        )
    return found


def recipe_inputs(repo: Path, paths: Paths) -> list[str]:
    return [
        *debian_versions(PYTHON_PACKAGES + LIBRARY_PACKAGES),
        _digest_files(source_files(repo), repo),
    ]


def _pip(*args: str, cwd: Path | None = None) -> None:
    if sys.version_info[:2] != (3, 11):
        raise LocalkubeError("build the operator image with a Python 3.11 interpreter (make venv)")
    run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd)


def wheelhouse(paths: Paths, repo: Path = ROOT) -> Path:
    """The pinned dependencies' wheels, downloaded once per lock file into the cache."""
    key = hashlib.sha256(lock_file(repo).read_bytes()).hexdigest()[:16]
    target = paths.cache / "wheels" / f"operator-{key}"
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".wheels-") as tmp:
        _pip(
            "download",
            "--only-binary=:all:",
            "--no-deps",
            "--dest",
            tmp,
            "-r",
            str(lock_file(repo)),
        )
        (Path(tmp) / ".complete").write_text("")
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    return target


def build_wheel(repo: Path, out: Path) -> Path:
    """The Shipway wheel, built from a copy of exactly what the Dockerfile copies."""
    with tempfile.TemporaryDirectory(prefix="shipway-src-") as tmp:
        src = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(repo / name, src / name)
        shutil.copytree(
            repo / "operator",
            src / "operator",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
        )
        _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(src))
    wheels = sorted(out.glob("shipway-*.whl"))
    if len(wheels) != 1:
        raise LocalkubeError(f"expected one shipway wheel in {out}, found {wheels}")
    return wheels[0]


def _dest(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _copy(src: str, root: Path) -> None:
    """Copy a host file (or symlink, as a symlink) to the same path under ``root``."""
    dest = _dest(root, src)
    if dest.exists() or dest.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(src):
        dest.symlink_to(os.readlink(src))
    else:
        shutil.copy2(src, dest)


def _skeleton(root: Path) -> None:
    """Debian's merged-/usr layout, the few /etc files a process needs, /tmp."""
    for d in ("usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "etc", "dev", "proc",
              "sys", "tmp", "var/tmp", "run"):  # fmt: skip
        (root / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):  # fmt: skip
        (root / link).symlink_to(target)
    (root / "tmp").chmod(0o1777)
    (root / "var/tmp").chmod(0o1777)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/nsswitch.conf").write_text(NSSWITCH)


def debian_files(packages: Iterable[str]) -> Iterator[str]:
    out = run(["dpkg-query", "-L", *packages]).stdout
    for line in out.splitlines():
        path = line.strip()
        if not path.startswith("/") or path.startswith(SKIP_PREFIXES):
            continue
        if os.path.islink(path) or os.path.isfile(path):
            yield path


def _ldd(binary: Path) -> list[str]:
    result = run(["ldd", str(binary)], check=False)
    if result.returncode != 0:  # "not a dynamic executable"
        return []
    libs: list[str] = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                libs.append(parts[i + 1])
            elif i + 1 < len(parts) and parts[i + 1] == "not":
                raise LocalkubeError(f"{binary}: {line.strip()}")
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def _copy_library(lib: str, root: Path) -> None:
    """A host library to the path ldd reported (the rootfs's /lib, /lib64 link into /usr)."""
    dest = _dest(root, lib)
    if dest.exists() or dest.is_symlink():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(lib), dest)


def add_libraries(root: Path) -> None:
    """Every shared library the ELF files under ``root`` need, from the host."""
    elves = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    seen: set[str] = set()
    for elf in elves:
        for lib in _ldd(elf):
            if lib.startswith(str(root)) or lib in seen:
                continue
            seen.add(lib)
            _copy_library(lib, root)
    for name in DLOPENED:
        _copy_library(f"{MULTIARCH}/{name}", root)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def make_rootfs(root: Path, paths: Paths, *, repo: Path = ROOT) -> None:
    _skeleton(root)
    for path in debian_files(PYTHON_PACKAGES):
        _copy(path, root)
    venv = _dest(root, VENV)
    run([PYTHON, "-m", "venv", "--without-pip", str(venv)])
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace(str(venv), VENV))
    site = venv / "lib" / "python3.11" / "site-packages"
    wheels = sorted(wheelhouse(paths, repo).glob("*.whl"))
    with tempfile.TemporaryDirectory(prefix="shipway-wheel-") as tmp:
        own = build_wheel(repo, Path(tmp))
        _pip("install", "--no-index", "--no-deps", "--no-compile", "--target", str(site),
             *map(str, wheels), str(own))  # fmt: skip
    shutil.rmtree(site / "bin", ignore_errors=True)  # --target's scripts; prune drops bin/ too
    run([PYTHON, str(prune_script(repo)), str(venv)])
    for cache in root.rglob("__pycache__"):
        shutil.rmtree(cache)
    run([PYTHON, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(root), "-p", "/", str(root / "usr/lib/python3.11"), str(site)])  # fmt: skip
    add_libraries(root)
    smoke_test(root)


def smoke_test(root: Path) -> None:
    """Run the image's entrypoint inside the rootfs (chroot, as the image's user)."""
    if os.geteuid() != 0:
        return
    probe = "import shipway.controller.handlers, shipway.cli, ssl, kopf; print(shipway.__version__)"
    result = subprocess.run(
        [
            shutil.which("chroot") or "/usr/sbin/chroot",
            f"--userspec={UID}:{UID}",
            str(root),
            f"{VENV}/bin/python",
            "-c",
            probe,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    if result.returncode != 0:
        raise LocalkubeError(f"the operator image does not start:\n{result.stderr.strip()}")


def recipe(repo: Path = ROOT) -> Recipe:
    return Recipe(
        REF,
        functools.partial(make_rootfs, repo=repo),
        IMAGE_CONFIG,
        functools.partial(recipe_inputs, repo),
    )


def ensure_operator_image(
    paths: Paths | None = None, *, repo: Path = ROOT, import_into: Path | None = None
) -> ImageInfo:
    """Build (or reuse) the operator image archive; import it into containerd if given."""
    paths = paths or Paths.default()
    info = ensure_archive(recipe(repo), paths)
    if (
        import_into is not None
        and image_digests(address=import_into).get(REF) != info.manifest_digest
    ):
        import_archive(info.archive, address=import_into)
    return info


LOCK_HEADER = """\
# Exact versions of the operator's runtime dependencies, installed into the image by the
# Dockerfile and by hack/localkube/operator_image.py (the local cluster's build of it).
# Regenerate after changing pyproject.toml's dependencies: make image-lock
"""


def write_lock(repo: Path = ROOT) -> Path:
    """Resolve pyproject.toml's dependencies in a scratch venv; pin them in the lock file."""
    with tempfile.TemporaryDirectory(prefix="shipway-lock-") as tmp:
        venv = Path(tmp) / "venv"
        run([PYTHON, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        run([*pip, "install", "-q", str(repo)])
        frozen = run([*pip, "freeze", "--exclude", "shipway"]).stdout
    lock_file(repo).write_text(LOCK_HEADER + frozen)
    return lock_file(repo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.operator_image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--no-import", action="store_true", help="only build the archive")
    parser.add_argument("--lock", action="store_true", help="re-pin docker/requirements.txt")
    args = parser.parse_args(argv)
    if args.lock:
        print(f"wrote {write_lock()}")
        return 0
    paths = Paths.default()
    address = None if args.no_import or not cluster.is_up(paths) else paths.containerd_socket
    try:
        info = ensure_operator_image(paths, import_into=address)
    except LocalkubeError as exc:
        print(f"operator_image: error: {exc}", file=sys.stderr)
        return 1
    size = info.archive.stat().st_size
    where = "imported into containerd" if address else "not imported (cluster down or --no-import)"
    print(f"{info.ref}  {info.manifest_digest}  {size / 1e6:.1f} MB  {info.archive}  ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
