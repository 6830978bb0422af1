"""Image layers keep file capabilities: rootless BuildKit's newuidmap depends on them."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localkube.images import oci as images  # noqa: E402


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
