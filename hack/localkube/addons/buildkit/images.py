"""The BuildKit images, assembled like the other local images (no Docker, no registry needed).

* ``localkube.shipway.dev/buildkit:<version>``: buildkitd and buildctl (our Go build), Debian's
  runc (the OCI worker's runtime) with its libseccomp, and for rootless mode Debian's
  rootlesskit and the setuid ``newuidmap``/``newgidmap`` with ``/etc/subuid`` ranges for the
  image's ``user`` (uid 1000); a busybox shell for the probes.
* ``localkube.shipway.dev/buildctl:<version>``: the client for build pods: buildctl and a
  busybox shell, nothing else (``buildctl-shipway`` in it explains failures, see
  :mod:`localkube.addons.buildkit.client`).
* ``docker.io/docker/dockerfile:1``: BuildKit's Dockerfile frontend from the same module, laid
  out as upstream's image (``/bin/dockerfile-frontend``, the same labels), so a Dockerfile's
  ``# syntax=docker/dockerfile:1`` line resolves through the in-cluster docker.io mirror.

The first two are imported into containerd (cluster components, like local-path-provisioner);
the frontend is pushed to the registry with the mirrored base images.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from localkube import config
from localkube.addons.buildkit.client import CLIENT_SCRIPT
from localkube.config import Paths
from localkube.images.oci import ImageConfig
from localkube.images.recipes import (
    Recipe,
    _copy_with_libs,
    _file_digest,
    _install_busybox,
    dpkg_version,
)
from localkube.process import run
from localkube.toolchain import build

BUILDKIT_IMAGE = f"localkube.shipway.dev/buildkit:{config.BUILDKIT_VERSION}"
BUILDCTL_IMAGE = f"localkube.shipway.dev/buildctl:{config.BUILDKIT_VERSION}"
#: What ``# syntax=docker/dockerfile:1`` names; pushed under the mirror's docker.io names.
FRONTEND_IMAGE = "docker.io/docker/dockerfile:1"
FRONTEND_REPO = "docker/dockerfile"
FRONTEND_TAGS = ("1", "1.28")
#: Upstream's frontend image labels (frontend/dockerfile/cmd/dockerfile-frontend/Dockerfile).
FRONTEND_LABELS = {
    "moby.buildkit.frontend.network.none": "true",
    "moby.buildkit.frontend.caps": (
        "moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,"
        "moby.buildkit.frontend.contexts,moby.buildkit.frontend.gitquerystring"
    ),
}

#: The unprivileged user of rootless mode, and its subordinate id range (as upstream's image).
ROOTLESS_UID = 1000
SUBID = "user:100000:65536\n"
#: Debian packages copied into the buildkitd image: part of its cache key.
BUILDKITD_PACKAGES = ("runc", "libseccomp2", "rootlesskit", "uidmap", "busybox-static", "libc6")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _binary(paths: Paths, name: str) -> Path:
    return build.BUILDKIT.bin_dir(paths) / name


def _install(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    dest.chmod(0o755)


def _ca_bundle(root: Path) -> None:
    if CA_BUNDLE.is_file():
        dest = root / "etc/ssl/certs/ca-certificates.crt"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CA_BUNDLE, dest)


def _buildkitd_rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)
    for name in ("buildkitd", "buildctl"):
        _install(_binary(paths, name), root / "usr/bin" / name)
    _client_script(root)
    _copy_with_libs(root, Path("/usr/sbin/runc"), "/usr/bin/runc")
    _copy_with_libs(root, Path("/usr/bin/rootlesskit"), "/usr/bin/rootlesskit")
    for tool in ("newuidmap", "newgidmap"):
        _copy_with_libs(root, Path("/usr/bin") / tool, f"/usr/bin/{tool}")
        # File capabilities instead of Debian's setuid root: run as the calling user, the
        # owner of the namespace it maps, newuidmap needs only CAP_SETUID (CAP_SETGID); as
        # root it would also need CAP_SYS_ADMIN, which a pod's capability bounding set lacks.
        dest = root / "usr/bin" / tool
        dest.chmod(0o755)
        cap = "cap_setuid" if tool == "newuidmap" else "cap_setgid"
        run(["setcap", f"{cap}=ep", str(dest)])
    _ca_bundle(root)
    uid = ROOTLESS_UID
    with (root / "etc/passwd").open("a") as f:
        f.write(f"user:x:{uid}:{uid}:user:/home/user:/bin/sh\n")
    with (root / "etc/group").open("a") as f:
        f.write(f"user:x:{uid}:\n")
    (root / "etc/subuid").write_text(SUBID)
    (root / "etc/subgid").write_text(SUBID)
    for d in ("var/lib/buildkit", "run/buildkit", "etc/buildkit"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for d in ("home/user/.local/share/buildkit", "home/user/.local/tmp", f"run/user/{uid}"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for d in ("home/user", f"run/user/{uid}"):
        for dirpath, _dirs, _files in os.walk(root / d):
            os.chown(dirpath, uid, uid)
    (root / f"run/user/{uid}").chmod(0o700)


def _client_script(root: Path) -> None:
    script = root / "usr/bin/buildctl-shipway"
    script.write_text(CLIENT_SCRIPT)
    script.chmod(0o755)


def _buildctl_rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)
    _install(_binary(paths, "buildctl"), root / "usr/bin/buildctl")
    _client_script(root)
    _ca_bundle(root)


def _frontend_rootfs(root: Path, paths: Paths) -> None:
    _install(_binary(paths, "dockerfile-frontend"), root / "bin/dockerfile-frontend")


RECIPES: dict[str, Recipe] = {
    "buildkitd": Recipe(
        BUILDKIT_IMAGE,
        _buildkitd_rootfs,
        ImageConfig(entrypoint=["buildkitd"], volumes=["/var/lib/buildkit"]),
        lambda p: [
            *(_file_digest(_binary(p, n)) for n in ("buildkitd", "buildctl")),
            *(dpkg_version(pkg) for pkg in BUILDKITD_PACKAGES),
            CLIENT_SCRIPT,
            "newuidmap/newgidmap with file capabilities",
        ],
    ),
    "buildctl": Recipe(
        BUILDCTL_IMAGE,
        _buildctl_rootfs,
        ImageConfig(entrypoint=["buildctl-shipway"]),
        lambda p: [
            _file_digest(_binary(p, "buildctl")),
            CLIENT_SCRIPT,
            dpkg_version("busybox-static"),
        ],
    ),
    "dockerfile-frontend": Recipe(
        FRONTEND_IMAGE,
        _frontend_rootfs,
        ImageConfig(entrypoint=["/bin/dockerfile-frontend"], env={}, labels=FRONTEND_LABELS),
        lambda p: [_file_digest(_binary(p, "dockerfile-frontend"))],
    ),
}
