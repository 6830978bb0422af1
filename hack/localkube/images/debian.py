"""Base images assembled from Debian for the docker.io mirror: ``debian`` (a real
debootstrap), ``postgres`` and ``ruby`` (Debian's packages installed into that rootfs).
(``docker/dockerfile:1``, BuildKit's Dockerfile frontend, is built with BuildKit: issue #14.)

Slow steps are cached: the debootstrapped rootfs as a tarball keyed by suite, mirror,
debootstrap version and recipe, and every image archive by its inputs (``imageset.Recipe``).
Every chroot runs in a private mount namespace (``unshare --mount``), so its /proc and /dev
mounts vanish with it and never reach the host. What each image contains, and where it
differs from Docker Hub's, is in docs/registry.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

from localkube.cluster.runtime import log
from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images.oci import ImageConfig
from localkube.images.recipes import Mirrored, Recipe, dpkg_version
from localkube.process import run

#: Bump when a recipe changes in a way its inputs do not show.
RECIPE_VERSION = "1"
SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
BOOTSTRAP_TIMEOUT = 1800
INSTALL_TIMEOUT = 1200
HERE = Path(__file__).resolve().parent

SOURCES = f"""Types: deb
URIs: {DEBIAN_MIRROR}
Suites: {SUITE} {SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY_MIRROR}
Suites: {SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
#: As Docker Hub's debian image (debuerreotype): no daemons start in a build, no .debs kept.
APT_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
CLEAN = (
    "apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log"
    " /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old"
)


def debian_key() -> str:
    return "-".join([SUITE, RECIPE_VERSION, dpkg_version("debootstrap").replace(":", "_")])


def rootfs_tarball(paths: Paths) -> Path:
    """The cached debootstrapped (and updated) rootfs that every image here starts from."""
    return paths.cache / "debian" / f"{debian_key()}.tar"


def chroot(root: Path, script: str, *, timeout: float = INSTALL_TIMEOUT) -> None:
    """Run ``script`` (sh -e) chrooted in ``root`` with /proc, /dev and the host's resolv.conf,
    inside a private mount namespace."""
    r = shlex.quote(str(root))
    outer = (
        "set -e\n"
        f"mount -t proc proc {r}/proc\n"
        f"mount --rbind /dev {r}/dev\n"
        f"cp /etc/resolv.conf {r}/etc/resolv.conf\n"
        f"exec chroot {r} /bin/sh -ec {shlex.quote(script)}\n"
    )
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    try:
        run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", outer],
            env=env,
            timeout=timeout,
        )
    finally:
        for sub in ("proc", "dev"):
            if os.path.ismount(root / sub):  # never: the namespace took them along
                raise LocalkubeError(f"{root / sub} is still mounted on the host; unmount it")
        if (root / "etc").is_dir():
            (root / "etc" / "resolv.conf").write_text("")  # the runtime provides its own


def _empty_dev(root: Path) -> None:
    for entry in (root / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def ensure_rootfs(paths: Paths) -> Path:
    """Debootstrap (minbase) the suite, point apt at the same sources as Docker Hub's image,
    apply the suite's updates, and cache the result as a tarball."""
    tarball = rootfs_tarball(paths)
    if tarball.is_file():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    for stale in tarball.parent.glob(f"{SUITE}-*.tar"):
        stale.unlink()
    log(f"debootstrapping Debian {SUITE} (minbase) from {DEBIAN_MIRROR}: a few minutes, once")
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix=".debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        run(
            ["unshare", "--mount", "--propagation", "private", "--", "debootstrap",
             "--variant=minbase", "--arch=amd64", SUITE, str(root), DEBIAN_MIRROR],
            timeout=BOOTSTRAP_TIMEOUT,
        )  # fmt: skip
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        (root / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES)
        for name, text in APT_CONF.items():
            (root / "etc/apt/apt.conf.d" / name).write_text(text)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        chroot(root, f"apt-get update -qq && apt-get -y -qq upgrade && {CLEAN}")
        for f in ("etc/hostname", "etc/machine-id"):
            (root / f).write_text("")
        _empty_dev(root)
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(tarball)
    return tarball


def unpack(paths: Paths, root: Path) -> None:
    run(["tar", "-C", str(root), "--numeric-owner", "-xpf", str(ensure_rootfs(paths))])


def _debian_rootfs(root: Path, paths: Paths) -> None:
    unpack(paths, root)


def _postgres_rootfs(root: Path, paths: Paths) -> None:
    unpack(paths, root)
    # As the official image: uid/gid 999, no cluster created by the package, C.UTF-8.
    chroot(
        root,
        "groupadd -r postgres --gid=999\n"
        "useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash"
        " postgres\n"
        "mkdir -p /var/lib/postgresql /etc/postgresql-common/createcluster.d\n"
        "chown postgres:postgres /var/lib/postgresql\n"
        "echo 'create_main_cluster = false'"
        " > /etc/postgresql-common/createcluster.d/docker.conf\n"
        "apt-get update -qq\n"
        "apt-get install -y -qq --no-install-recommends postgresql-15\n"
        "sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\""
        " /usr/share/postgresql/15/postgresql.conf.sample\n"
        "grep -F \"listen_addresses = '*'\" /usr/share/postgresql/15/postgresql.conf.sample\n"
        "mkdir -p /docker-entrypoint-initdb.d /var/lib/postgresql/data /var/run/postgresql\n"
        "chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql\n"
        "chmod 3777 /var/run/postgresql\n"
        "chmod 1777 /var/lib/postgresql/data\n" + CLEAN,
    )
    entry = root / "usr/local/bin/docker-entrypoint.sh"
    shutil.copy2(HERE / "postgres-entrypoint.sh", entry)
    entry.chmod(0o755)


def _ruby_rootfs(root: Path, paths: Paths) -> None:
    unpack(paths, root)
    chroot(
        root,
        "apt-get update -qq\n"
        "apt-get install -y -qq --no-install-recommends ruby ruby-rspec bundler"
        " ca-certificates\n"
        "mkdir -p /usr/local/bundle && chmod 1777 /usr/local/bundle\n"
        "ruby -e 'require \"rspec/core\"' && rspec --version\n" + CLEAN,
    )


DEBIAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
PG_BIN = "/usr/lib/postgresql/15/bin"

RECIPES: dict[str, Recipe] = {
    "debian": Recipe(
        "docker.io/library/debian:12",
        _debian_rootfs,
        ImageConfig(cmd=["bash"], env=DEBIAN_ENV),
        lambda p: [debian_key()],
    ),
    "postgres": Recipe(
        "docker.io/library/postgres:15",
        _postgres_rootfs,
        ImageConfig(
            entrypoint=["docker-entrypoint.sh"],
            cmd=["postgres"],
            env={
                "PATH": f"{DEBIAN_ENV['PATH']}:{PG_BIN}",
                "LANG": "C.UTF-8",
                "PG_MAJOR": "15",
                "PGDATA": "/var/lib/postgresql/data",
            },
            exposed_ports=["5432/tcp"],
            volumes=["/var/lib/postgresql/data"],
            stop_signal="SIGINT",
        ),
        lambda p: [debian_key(), (HERE / "postgres-entrypoint.sh").read_text()],
    ),
    "ruby": Recipe(
        "docker.io/library/ruby:3.1",
        _ruby_rootfs,
        ImageConfig(
            cmd=["irb"],
            env={
                "PATH": f"/usr/local/bundle/bin:{DEBIAN_ENV['PATH']}",
                "LANG": "C.UTF-8",
                "GEM_HOME": "/usr/local/bundle",
                "BUNDLE_SILENCE_ROOT_WARNING": "1",
                "BUNDLE_APP_CONFIG": "/usr/local/bundle",
            },
        ),
        lambda p: [debian_key()],
    ),
}

MIRRORED: tuple[Mirrored, ...] = (
    Mirrored("library/debian", ("12", "bookworm", "latest", "12-slim", "bookworm-slim"), "debian"),
    Mirrored("library/postgres", ("15", "latest"), "postgres"),
    Mirrored("library/ruby", ("3.1", "latest"), "ruby"),
)
