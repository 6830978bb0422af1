"""Container images without a registry or a Docker engine, in pure Python.

A root filesystem directory plus an :class:`ImageConfig` becomes a single-layer OCI image
archive (``oci-layout``, ``index.json``, ``blobs/sha256/...``), which ``ctr images import``
loads into containerd. The layer is reproducible: entries sorted, times fixed, user and
group names dropped (numeric ids kept), so the same rootfs always gives the same digest.

Reusable API::

    from localkube.images.oci import ImageConfig, build_image
    build_image(rootfs, "example.com/shipway/operator:dev", ImageConfig(entrypoint=["/app"]))
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from localkube.errors import LocalkubeError
from localkube.process import run

#: The ``created_by`` of every image's history: part of the config blob, so of every digest
#: (archives are cached by content and tests compare digests). It names the module's first home,
#: ``localkube/images.py``; keep it when the module moves.
CREATED_BY = "localkube.images"
#: Fixed modification time of every layer entry: 2020-01-01T00:00:00Z.
EPOCH = 1577836800
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an OCI image config (what ``docker inspect`` shows as Config)."""

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Mapping[str, str] = field(
        default_factory=lambda: {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        }
    )
    user: str = ""
    workdir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: Sequence[str] = ()
    volumes: Sequence[str] = ()
    stop_signal: str = ""
    architecture: str = "amd64"
    os: str = "linux"

    def to_oci(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in self.env.items()]}
        if self.entrypoint:
            cfg["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            cfg["Cmd"] = list(self.cmd)
        if self.user:
            cfg["User"] = self.user
        if self.workdir:
            cfg["WorkingDir"] = self.workdir
        if self.labels:
            cfg["Labels"] = dict(self.labels)
        if self.exposed_ports:
            cfg["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.volumes:
            cfg["Volumes"] = {v: {} for v in self.volumes}
        if self.stop_signal:
            cfg["StopSignal"] = self.stop_signal
        return cfg


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    archive: Path
    manifest_digest: str
    #: The config digest: what ``crictl images`` and the kubelet call the image id.
    image_id: str


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = EPOCH
    info.uname = ""
    info.gname = ""
    return info


def write_layer(rootfs: Path, out: IO[bytes]) -> None:
    """Write ``rootfs`` as an uncompressed, reproducible tar stream to ``out``."""
    if not rootfs.is_dir():
        raise LocalkubeError(f"image rootfs {rootfs} is not a directory")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(rootfs.iterdir()):
            tar.add(child, arcname=child.name, recursive=True,
                    filter=lambda info: _file_capabilities(rootfs, _normalize(info)))  # fmt: skip


#: The extended attribute of file capabilities (``setcap``), kept in layers as containerd reads
#: it: a PAX ``SCHILY.xattr.`` record (BuildKit's rootless image uses it for newuidmap).
CAPABILITY_XATTR = "security.capability"


def _file_capabilities(rootfs: Path, info: tarfile.TarInfo) -> tarfile.TarInfo:
    if info.isfile():
        try:
            value = os.getxattr(rootfs / info.name, CAPABILITY_XATTR, follow_symlinks=False)
        except OSError:
            return info
        # Binary values travel through tarfile's surrogateescape (hdrcharset=BINARY).
        info.pax_headers = {
            **info.pax_headers,
            "SCHILY.xattr." + CAPABILITY_XATTR: value.decode("utf-8", "surrogateescape"),
        }
    return info


class _HashingWriter(io.RawIOBase):
    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.sha.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)


def _blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_oci_archive(rootfs: Path, ref: str, config: ImageConfig, out: Path) -> ImageInfo:
    """Write the OCI image archive of ``rootfs`` named ``ref`` to ``out`` (atomically)."""
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".oci-") as tmp:
        layout = Path(tmp)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layer_tmp = blobs / "layer.partial"
        with layer_tmp.open("wb") as sink:
            writer = _HashingWriter(sink)
            write_layer(rootfs, writer)  # type: ignore[arg-type]
        layer_digest = writer.sha.hexdigest()
        layer_tmp.rename(blobs / layer_digest)
        layer_size = writer.size
        image_config = {
            "architecture": config.architecture,
            "os": config.os,
            "created": "2020-01-01T00:00:00Z",
            "config": config.to_oci(),
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            "history": [{"created": "2020-01-01T00:00:00Z", "created_by": CREATED_BY}],
        }
        config_digest, config_size = _blob(blobs, _canonical(image_config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [
                {"mediaType": MEDIA_LAYER, "digest": f"sha256:{layer_digest}", "size": layer_size}
            ],
        }
        manifest_digest, manifest_size = _blob(blobs, _canonical(manifest))
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": manifest_digest,
                    "size": manifest_size,
                    "platform": {"architecture": config.architecture, "os": config.os},
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
        (layout / "index.json").write_bytes(_canonical(index))
        (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(layout / name, arcname=name, filter=_normalize)
        os.replace(partial, out)
    return ImageInfo(ref, out, manifest_digest, config_digest)


def read_archive_info(archive: Path) -> ImageInfo:
    """The name and digests recorded in an archive written by :func:`write_oci_archive`."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise LocalkubeError(f"{archive} has no index.json")
        index = json.load(member)
        desc = index["manifests"][0]
        manifest_file = tar.extractfile("blobs/sha256/" + desc["digest"].split(":", 1)[1])
        if manifest_file is None:
            raise LocalkubeError(f"{archive} lacks its manifest blob")
        manifest = json.load(manifest_file)
    return ImageInfo(
        desc["annotations"]["io.containerd.image.name"],
        archive,
        desc["digest"],
        manifest["config"]["digest"],
    )


def import_archive(archive: Path, *, address: Path, namespace: str = "k8s.io") -> None:
    """Load an OCI archive into containerd (and unpack it for the default snapshotter)."""
    run(["ctr", "--address", str(address), "-n", namespace, "images", "import", str(archive)])


def image_digests(*, address: Path, namespace: str = "k8s.io") -> dict[str, str]:
    """Every image name in containerd's namespace, with its manifest digest."""
    out = run(["ctr", "--address", str(address), "-n", namespace, "images", "ls"]).stdout
    result: dict[str, str] = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3:
            result[cols[0]] = cols[2]
    return result


def build_image(
    rootfs: Path,
    ref: str,
    config: ImageConfig,
    *,
    archive: Path | None = None,
    address: Path | None = None,
    namespace: str = "k8s.io",
) -> ImageInfo:
    """Build ``rootfs`` into the image ``ref`` and import it into containerd.

    ``archive`` keeps the OCI archive (default: a temporary file); ``address`` is
    containerd's socket (default: the local cluster's).
    """
    if address is None:
        from localkube.config import Paths

        address = Paths.default().containerd_socket
    if archive is not None:
        info = write_oci_archive(rootfs, ref, config, archive)
        import_archive(archive, address=address, namespace=namespace)
        return info
    with tempfile.TemporaryDirectory(prefix="localkube-image-") as tmp:
        info = write_oci_archive(rootfs, ref, config, Path(tmp) / "image.tar")
        import_archive(info.archive, address=address, namespace=namespace)
        return info
