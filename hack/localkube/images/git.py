"""The git images, built offline from Debian's packages like localkube's other images.

* ``localkube.shipway.dev/git:2.39``: the operator's checkout and upload-receiver image:
  Debian's git (``/usr/lib/git-core``, its https helper with libcurl), the ssh client, the CA
  certificates and busybox's shell and tools (the default of ``SHIPWAY_GIT_IMAGE``);
* ``localkube.shipway.dev/git-server:2.39``: the tests' git server: the same plus Debian's
  sshd (from the openssh-server package, downloaded with ``apt-get download`` and unpacked,
  never installed on the host) and an entrypoint that serves ``/srv/git`` three ways:
  ``git daemon`` (git://, public repositories), busybox ``httpd`` running ``git
  http-backend`` as CGI (http://, ``/cgi-bin/public/...`` open, ``/cgi-bin/private/...``
  behind basic auth) and sshd (``git@host:/srv/git/...``, key only, ``git-shell``).

Archives are cached by their inputs (package versions) and imported into containerd the way
``imageset`` does it; ``ensure`` is called by ``localkube up`` and by the e2e fixtures.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from localkube.config import Paths
from localkube.errors import LocalkubeError
from localkube.images.oci import ImageConfig, ImageInfo, image_digests, import_archive

# The small-image helpers of imageset (copy a binary with its libraries; busybox applets).
from localkube.images.recipes import (
    Recipe,
    _copy_with_libs,
    _install_busybox,
    dpkg_version,
    ensure_archive,
)

GIT_IMAGE = "localkube.shipway.dev/git:2.39"
"""Must equal shipway.engine.settings.DEFAULT_GIT_IMAGE (a unit test checks)."""
GIT_SERVER_IMAGE = "localkube.shipway.dev/git-server:2.39"
GIT_CORE = Path("/usr/lib/git-core")
SSHD_PACKAGE = "openssh-server"
EXTRA_PASSWD = """sshd:x:101:65534::/run/sshd:/usr/sbin/nologin
git:x:1000:1000:git:/home/git:/usr/lib/git-core/git-shell
"""

SERVER_ENTRYPOINT = r"""#!/bin/sh
# The tests' git server: repositories under /srv/git/{public,private} (the tests stream
# them in with kubectl exec), served by git daemon (public), httpd + git http-backend
# (public, and private behind basic auth: $GIT_HTTP_USER / $GIT_HTTP_PASSWORD) and sshd
# (keys from /etc/git-server/authorized_keys, user git, git-shell).
set -e
mkdir -p /srv/git/public /srv/git/private /run/sshd /home/git/.ssh /srv/www/cgi-bin
chmod 755 /run/sshd
git config --system uploadpack.allowReachableSHA1InWant true
git config --system --add safe.directory '*'
ssh-keygen -A >/dev/null
if [ -f /etc/git-server/authorized_keys ]; then
  cp /etc/git-server/authorized_keys /home/git/.ssh/authorized_keys
fi
chown -R 1000:1000 /home/git
chmod 700 /home/git/.ssh
for area in public private; do
  cat >/srv/www/cgi-bin/$area <<EOF
#!/bin/sh
export GIT_PROJECT_ROOT=/srv/git/$area GIT_HTTP_EXPORT_ALL=1
exec /usr/lib/git-core/git-http-backend
EOF
  chmod 755 /srv/www/cgi-bin/$area
done
echo "/cgi-bin/private:${GIT_HTTP_USER:-git}:${GIT_HTTP_PASSWORD:-secret}" >/etc/httpd.conf
git daemon --reuseaddr --export-all --base-path=/srv/git/public --port=9418 \
  --informative-errors /srv/git/public &
httpd -f -p 80 -h /srv/www -c /etc/httpd.conf &
cat >/etc/ssh/sshd_config <<EOF
Port 22
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
StrictModes no
AuthorizedKeysFile .ssh/authorized_keys
EOF
exec /usr/sbin/sshd -D -e
"""


def _copy_tree_with_libs(root: Path, source: Path) -> None:
    """A directory of programs: symlinks as they are, ELF files with their libraries."""
    for path in sorted(source.rglob("*")):
        dest = root / str(path).lstrip("/")
        if path.is_symlink():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(os.readlink(path))
        elif path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif path.read_bytes()[:4] == b"\x7fELF":
            _copy_with_libs(root, path, str(path))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


def _git_rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)
    _copy_tree_with_libs(root, GIT_CORE)
    (root / "usr/bin/git").unlink(missing_ok=True)
    (root / "usr/bin/git").symlink_to("../lib/git-core/git")
    shutil.copytree("/usr/share/git-core/templates", root / "usr/share/git-core/templates")
    for program in ("ssh", "ssh-keygen"):
        target = root / "usr/bin" / program
        target.unlink(missing_ok=True)
        _copy_with_libs(root, Path("/usr/bin") / program, f"/usr/bin/{program}")
    certs = root / "etc/ssl/certs"
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy2("/etc/ssl/certs/ca-certificates.crt", certs / "ca-certificates.crt")
    (root / "etc/nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")


def sshd_deb(paths: Paths) -> Path:
    """Debian's openssh-server package, downloaded once into the cache (not installed)."""
    cache = paths.cache / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(glob.glob(str(cache / f"{SSHD_PACKAGE}_*.deb")))
    if found:
        return Path(found[-1])
    done = subprocess.run(
        ["apt-get", "download", SSHD_PACKAGE],
        cwd=cache,
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(glob.glob(str(cache / f"{SSHD_PACKAGE}_*.deb")))
    if done.returncode != 0 or not found:
        raise LocalkubeError(
            f"apt-get download {SSHD_PACKAGE} failed (run apt-get update first?): "
            + done.stderr.strip()[-500:]
        )
    return Path(found[-1])


def _server_rootfs(root: Path, paths: Paths) -> None:
    _git_rootfs(root, paths)
    with tempfile.TemporaryDirectory() as unpacked:
        subprocess.run(["dpkg-deb", "-x", str(sshd_deb(paths)), unpacked], check=True)
        _copy_with_libs(root, Path(unpacked) / "usr/sbin/sshd", "/usr/sbin/sshd")
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write(EXTRA_PASSWD)
    with (root / "etc/group").open("a") as group:
        group.write("git:x:1000:\n")
    (root / "etc/shadow").write_text("git:*:19000:0:99999:7:::\n")
    (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (root / "home/git").mkdir(parents=True, exist_ok=True)
    entry = root / "usr/local/bin/git-server"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(SERVER_ENTRYPOINT)
    entry.chmod(0o755)


def _git_inputs(paths: Paths) -> list[str]:
    return [
        "git-image-2",
        dpkg_version("git"),
        dpkg_version("openssh-client"),
        dpkg_version("busybox-static"),
        dpkg_version("ca-certificates"),
        dpkg_version("libc6"),
    ]


def _server_inputs(paths: Paths) -> list[str]:
    return [*_git_inputs(paths), sshd_deb(paths).name, SERVER_ENTRYPOINT]


RECIPES = {
    "git": Recipe(GIT_IMAGE, _git_rootfs, ImageConfig(cmd=["sh"]), _git_inputs),
    "git-server": Recipe(
        GIT_SERVER_IMAGE,
        _server_rootfs,
        ImageConfig(entrypoint=["/usr/local/bin/git-server"], exposed_ports=["22/tcp", "80/tcp"]),
        _server_inputs,
    ),
}


def ensure(
    paths: Paths, *, import_into: Path | None = None, names: tuple[str, ...] = tuple(RECIPES)
) -> list[ImageInfo]:
    """Build (or reuse) the archives; import those containerd lacks or has older."""
    infos = [ensure_archive(RECIPES[name], paths) for name in names]
    if import_into is not None:
        present = image_digests(address=import_into)
        for info in infos:
            if present.get(info.ref) != info.manifest_digest:
                import_archive(info.archive, address=import_into)
    return infos


if __name__ == "__main__":
    import sys

    built = ensure(Paths.default(), import_into=Paths.default().containerd_socket)
    for info in built:
        sys.stdout.write(f"{info.ref} {info.manifest_digest}\n")
