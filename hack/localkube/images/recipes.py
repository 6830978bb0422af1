"""The images the local cluster provides, built from Debian packages and our own Go builds.

* ``registry.k8s.io/pause:3.10``: the sandbox image, exactly as containerd's CRI config names it;
* ``docker.io/library/busybox:1.36``: Debian's busybox-static with every applet linked;
* ``docker.io/library/redis:7.0``: Debian's redis-server and redis-cli with their shared
  libraries, a busybox shell, an entrypoint like the official image's (``redis-server`` by
  default, protected mode off, data in ``/data``, listening on 0.0.0.0:6379);
* the local-path-provisioner, CoreDNS and registry images, from their Go modules;
* ``localkube.shipway.dev/crane:<version>``: crane and a busybox shell, for pods that copy,
  tag or inspect images in the registry (the e2e tests push with it).

These are imported into the node's containerd directly (the registry cannot serve itself);
``mirror`` pushes the base images users build from into the in-cluster registry.

Each archive is cached under ``<cache>/images`` by a key over its recipe and inputs (Debian
package versions, binary contents), so warm runs only import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localkube import config, progress
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images.oci import ImageConfig, ImageInfo, image_digests, import_archive
from localkube.images.oci import write_oci_archive as _write
from localkube.process import run
from localkube.toolchain import build

CRANE_IMAGE = f"localkube.shipway.dev/crane:{config.CRANE_VERSION}"
#: Bump when a recipe changes in a way its inputs do not show.
RECIPE_VERSION = "1"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
redis:x:999:999:redis:/data:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
redis:x:999:
nogroup:x:65534:
nobody:x:65534:
"""

REDIS_ENTRYPOINT = """#!/bin/sh
# Like the official redis image's entrypoint: a first argument that is an option or a
# .conf file means redis-server; plain `redis-server` gets `--protected-mode no` unless a
# given config file sets protected-mode itself.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
  protected=1
  if [ -f "${2:-}" ] && grep -q '^protected-mode' "$2"; then protected=; fi
  for arg in "$@"; do
    case "$arg" in --protected-mode) protected= ;; esac
  done
  if [ -n "$protected" ]; then
    shift
    set -- redis-server "$@" --protected-mode no
  fi
fi
exec "$@"
"""


def dpkg_version(package: str) -> str:
    out = run(["dpkg-query", "-W", "-f=${Version}", package], check=False)
    if out.returncode != 0 or not out.stdout.strip():
        raise LocalkubeError(
            f"Debian package {package} is not installed: apt-get install -y {package}"
        )
    return out.stdout.strip()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _base_dirs(root: Path) -> None:
    for d in ("bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr/bin", "var/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "var" / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)


def _install_busybox(root: Path) -> None:
    _base_dirs(root)
    shutil.copy2(config.BUSYBOX_BINARY, root / "bin" / "busybox")
    applets = run([str(config.BUSYBOX_BINARY), "--list-full"]).stdout.split()
    for applet in applets:
        link = root / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")


def _copy_with_libs(root: Path, binary: Path, dest: str) -> None:
    """Copy a dynamically linked ``binary`` to ``dest`` in ``root``, with every library."""
    target = root / dest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary.resolve(), target)
    for line in run(["ldd", str(binary)]).stdout.splitlines():
        parts = line.split()
        lib: str | None = None
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                lib = parts[i + 1]
        elif parts and parts[0].startswith("/"):
            lib = parts[0]
        if lib is None:
            continue
        lib_dest = root / lib.lstrip("/")
        if not lib_dest.exists():
            lib_dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(lib).resolve(), lib_dest)


@dataclass(frozen=True)
class Recipe:
    ref: str
    make_rootfs: Callable[[Path, Paths], None]
    image_config: ImageConfig
    inputs: Callable[[Paths], list[str]]

    def key(self, paths: Paths) -> str:
        h = hashlib.sha256()
        for part in [RECIPE_VERSION, self.ref, repr(self.image_config), *self.inputs(paths)]:
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]

    def archive(self, paths: Paths) -> Path:
        safe = self.ref.split("/")[-1].replace(":", "-")
        return paths.images / f"{safe}-{self.key(paths)}.tar"


@dataclass(frozen=True)
class Mirrored:
    """A repository of the docker.io mirror, its tags, and the recipe of its one image."""

    repo: str
    tags: tuple[str, ...]
    recipe: str


def _pause_rootfs(root: Path, paths: Paths) -> None:
    shutil.copy2(build.binary(paths, "pause"), root / "pause")


def _busybox_rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)


def _redis_rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)
    _copy_with_libs(root, Path("/usr/bin/redis-server"), "/usr/local/bin/redis-server")
    _copy_with_libs(root, Path("/usr/bin/redis-cli"), "/usr/local/bin/redis-cli")
    for alias in ("redis-check-aof", "redis-check-rdb", "redis-sentinel"):
        (root / "usr/local/bin" / alias).symlink_to("redis-server")
    entry = root / "usr/local/bin/docker-entrypoint.sh"
    entry.write_text(REDIS_ENTRYPOINT)
    entry.chmod(0o755)
    data = root / "data"
    data.mkdir()
    data.chmod(0o777)


def _local_path_rootfs(root: Path, paths: Paths) -> None:
    _base_dirs(root)
    dest = root / "usr/bin/local-path-provisioner"
    shutil.copy2(build.binary(paths, "local-path-provisioner"), dest)
    dest.chmod(dest.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _binary_rootfs(binary: str, dest: str) -> Callable[[Path, Paths], None]:
    """A rootfs with ``/etc/passwd`` and friends and one static binary at ``dest``."""

    def make(root: Path, paths: Paths) -> None:
        _base_dirs(root)
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build.binary(paths, binary), target)
        target.chmod(0o755)

    return make


def _crane_rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)
    dest = root / "usr/local/bin/crane"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(build.binary(paths, "crane"), dest)
    dest.chmod(0o755)


def _binary_inputs(binary: str) -> Callable[[Paths], list[str]]:
    return lambda p: [_file_digest(build.binary(p, binary))]


RECIPES: dict[str, Recipe] = {
    "pause": Recipe(
        config.PAUSE_IMAGE,
        _pause_rootfs,
        ImageConfig(entrypoint=["/pause"], user="65535:65535", env={}),
        lambda p: [_file_digest(build.binary(p, "pause"))],
    ),
    "busybox": Recipe(
        config.BUSYBOX_IMAGE,
        _busybox_rootfs,
        ImageConfig(cmd=["sh"]),
        lambda p: [dpkg_version("busybox-static")],
    ),
    "redis": Recipe(
        config.REDIS_IMAGE,
        _redis_rootfs,
        ImageConfig(
            entrypoint=["docker-entrypoint.sh"],
            cmd=["redis-server"],
            workdir="/data",
            volumes=["/data"],
            exposed_ports=["6379/tcp"],
        ),
        lambda p: [
            dpkg_version("redis-server"),
            dpkg_version("redis-tools"),
            dpkg_version("busybox-static"),
            dpkg_version("libc6"),
        ],
    ),
    "local-path-provisioner": Recipe(
        config.LOCAL_PATH_IMAGE,
        _local_path_rootfs,
        ImageConfig(entrypoint=["local-path-provisioner"]),
        lambda p: [_file_digest(build.binary(p, "local-path-provisioner"))],
    ),
    "coredns": Recipe(
        config.COREDNS_IMAGE,
        _binary_rootfs("coredns", "/coredns"),
        ImageConfig(entrypoint=["/coredns"], exposed_ports=["53/tcp", "53/udp"]),
        _binary_inputs("coredns"),
    ),
    "registry": Recipe(
        config.REGISTRY_IMAGE,
        _binary_rootfs("registry", "/bin/registry"),
        ImageConfig(
            entrypoint=["/bin/registry"],
            cmd=["serve", "/etc/distribution/config.yml"],
            exposed_ports=["5000/tcp"],
            volumes=["/var/lib/registry"],
        ),
        _binary_inputs("registry"),
    ),
    "crane": Recipe(
        CRANE_IMAGE,
        _crane_rootfs,
        ImageConfig(cmd=["sh"]),
        lambda p: [_file_digest(build.binary(p, "crane")), dpkg_version("busybox-static")],
    ),
}


def ensure_archive(recipe: Recipe, paths: Paths) -> ImageInfo:
    """The cached OCI archive of ``recipe``, built now if missing."""
    archive = recipe.archive(paths)
    if archive.is_file():
        from localkube.images.oci import read_archive_info

        return read_archive_info(archive)
    paths.images.mkdir(parents=True, exist_ok=True)
    for stale in paths.images.glob(archive.name.rsplit("-", 1)[0] + "-*.tar"):
        stale.unlink()
    started = time.monotonic()
    print(f"localkube: building image {recipe.ref} ...", flush=True)
    with tempfile.TemporaryDirectory(dir=paths.images, prefix=".rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir()
        os.chmod(root, 0o755)
        clock = progress.Clock()
        say = progress.ticker(0, 0, f"image {recipe.ref}", clock, records={})
        with progress.ticking(say, lambda line: print(f"localkube: {line}", flush=True)):
            recipe.make_rootfs(root, paths)
            info = _write(root, recipe.ref, recipe.image_config, archive)
    size = archive.stat().st_size / 2**20
    took = time.monotonic() - started
    print(f"localkube: built image {recipe.ref} ({size:.0f} MiB) in {took:.0f}s", flush=True)
    return info


def ensure_all(paths: Paths, *, import_into: Path | None = None) -> list[ImageInfo]:
    """Build (or reuse) every archive; import those containerd lacks or has older."""
    infos = [ensure_archive(r, paths) for r in RECIPES.values()]
    if import_into is not None:
        present = image_digests(address=import_into)
        for info in infos:
            if present.get(info.ref) != info.manifest_digest:
                import_archive(info.archive, address=import_into)
    return infos
