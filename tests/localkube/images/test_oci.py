"""Images in pure Python: the OCI archive's layout, reproducible digests, file capabilities kept,
and the history's ``created_by`` pinned (it is part of every digest)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from localkube.images import oci as images


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    tool = root / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    (root / "bin" / "alias").symlink_to("tool")
    (root / "data").mkdir()
    return root


def test_an_oci_archive_has_the_layout_ctr_imports(tmp_path: Path) -> None:
    config = images.ImageConfig(
        entrypoint=["/bin/tool"], cmd=["--x"], user="1000:1000", workdir="/data"
    )
    info = images.write_oci_archive(
        _rootfs(tmp_path), "example.com/shipway/tool:1.0", config, tmp_path / "a.tar"
    )
    with tarfile.open(info.archive) as tar:
        names = set(tar.getnames())
        assert {"oci-layout", "index.json"} <= names

        def blob(digest: str) -> bytes:
            member = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
            assert member is not None
            return member.read()

        member = tar.extractfile("index.json")
        assert member is not None
        index = json.load(member)
        desc = index["manifests"][0]
        assert desc["annotations"]["io.containerd.image.name"] == "example.com/shipway/tool:1.0"
        assert desc["annotations"]["org.opencontainers.image.ref.name"] == "1.0"
        manifest = json.loads(blob(desc["digest"]))
        image_config = json.loads(blob(manifest["config"]["digest"]))
        layer = blob(manifest["layers"][0]["digest"])
    assert image_config["config"]["Entrypoint"] == ["/bin/tool"]
    assert image_config["config"]["User"] == "1000:1000"
    assert image_config["config"]["WorkingDir"] == "/data"
    assert image_config["architecture"] == "amd64"
    with tarfile.open(fileobj=io.BytesIO(layer)) as layer_tar:
        entries = {m.name: m for m in layer_tar.getmembers()}
    assert entries["bin/alias"].issym()
    assert entries["bin/alias"].linkname == "tool"
    assert entries["bin/tool"].mode & 0o111
    assert {m.mtime for m in entries.values()} == {images.EPOCH}
    assert info == images.read_archive_info(info.archive)


def test_the_same_rootfs_gives_the_same_image(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    config = images.ImageConfig(cmd=["sh"])
    first = images.write_oci_archive(root, "x/y:1", config, tmp_path / "1.tar")
    os.utime(root / "bin" / "tool", (1, 1))
    second = images.write_oci_archive(root, "x/y:1", config, tmp_path / "2.tar")
    assert first.manifest_digest == second.manifest_digest
    assert first.image_id == second.image_id


def _blob(tar: tarfile.TarFile, digest: str) -> bytes:
    member = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
    assert member is not None
    return member.read()


def test_the_history_names_the_first_home_of_the_image_writer(tmp_path: Path) -> None:
    """``created_by`` is in the config blob, so in every image digest: the cached archives and
    the digests the tests compare stay valid only while it stays ``localkube.images``, wherever
    the module lives (it moved to ``localkube/images/oci.py``)."""
    assert images.CREATED_BY == "localkube.images"
    info = images.write_oci_archive(
        _rootfs(tmp_path), "x/y:1", images.ImageConfig(cmd=["sh"]), tmp_path / "a.tar"
    )
    with tarfile.open(info.archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        manifest = json.loads(_blob(tar, json.load(member)["manifests"][0]["digest"]))
        image_config = json.loads(_blob(tar, manifest["config"]["digest"]))
    assert image_config["history"] == [
        {"created": "2020-01-01T00:00:00Z", "created_by": "localkube.images"}
    ]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setcap") is None, reason="setcap needs root")
def test_a_layer_keeps_file_capabilities_as_a_pax_xattr_record(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    tool, plain = root / "usr/bin/newuidmap", root / "usr/bin/plain"
    for f in (tool, plain):
        f.write_bytes(b"\x7fELF")
        f.chmod(0o755)
    subprocess.run(["setcap", "cap_setuid=ep", str(tool)], check=True)
    raw = os.getxattr(tool, "security.capability")
    buf = io.BytesIO()
    images.write_layer(root, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
    key = "SCHILY.xattr.security.capability"
    kept = members["usr/bin/newuidmap"].pax_headers[key]
    assert kept.encode("utf-8", "surrogateescape") == raw
    assert key not in members["usr/bin/plain"].pax_headers
    assert members["usr/bin/newuidmap"].mode & 0o4000 == 0  # no setuid bit needed
