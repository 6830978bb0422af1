"""The ``argoexec`` image, assembled the way localkube assembles its images.

A Debian busybox-static shell (``sh``, ``cp``) and the ``argoexec`` binary built from the module
proxy. Argo's emissary executor runs ``argoexec init`` in an init container that copies the
binary into ``/var/run/argo``, then wraps each main container's command with it, and runs
``argoexec wait`` beside it to report the result. The archive is cached under the cache's
``images`` folder by a key over the binary, and imported straight into the node's containerd.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.peers.argobuild import ARGO, ARGO_VERSION
from localkube.config import Paths
from localkube.images import recipes as imageset
from localkube.images.oci import ImageConfig, image_digests, import_archive
from localkube.images.recipes import _file_digest, _install_busybox

IMAGE = f"localkube.shipway.dev/argoexec:{ARGO_VERSION}"


def _rootfs(root: Path, paths: Paths) -> None:
    _install_busybox(root)
    dest = root / "bin" / "argoexec"
    shutil.copy2(ARGO.bin_dir(paths) / "argoexec", dest)
    dest.chmod(0o755)


RECIPE = imageset.Recipe(
    IMAGE,
    _rootfs,
    ImageConfig(entrypoint=["argoexec"]),
    lambda p: [
        _file_digest(ARGO.bin_dir(p) / "argoexec"),
        imageset.dpkg_version("busybox-static"),
    ],
)


def ensure_image(paths: Paths) -> str:
    """Build (or reuse) the archive and import it into containerd if it is not there yet."""
    info = imageset.ensure_archive(RECIPE, paths)
    address = paths.containerd_socket
    if image_digests(address=address).get(info.ref) != info.manifest_digest:
        import_archive(info.archive, address=address)
    return IMAGE
