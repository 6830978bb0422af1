"""Unit tests of the local cluster tool's pure parts: no cluster, no root needed."""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localkube import cli  # noqa: E402
from localkube.cluster import host, kubeconfig, pki  # noqa: E402
from localkube.errors import LocalkubeError  # noqa: E402
from localkube.images import oci as images  # noqa: E402


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


def test_a_taken_port_is_named_with_its_owner() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LocalkubeError, match=rf"port {port} \(test\) is taken by python"):
            host.check_ports({port: "test"})


def test_not_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LocalkubeError, match="must run as root"):
        host.check_platform()


def test_not_linux_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    with pytest.raises(LocalkubeError, match=r"needs Linux.*SHIPWAY_E2E_KUBECONFIG"):
        host.check_platform()


def test_the_cli_turns_errors_into_a_message_and_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["status"]) == 1
    assert "localkube: error: localkube must run as root" in capsys.readouterr().err
    assert cli.main(["kubeconfig"]) == 0
    assert capsys.readouterr().out.strip() == "/var/lib/shipway-localkube/admin.kubeconfig"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_certificates_name_the_node_and_the_service_address(tmp_path: Path) -> None:
    made = pki.ensure(tmp_path / "pki", "192.0.2.7", "devbox")
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(made.crt("apiserver"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in ("DNS:kubernetes.default.svc.cluster.local", "IP Address:10.96.0.1",
                 "IP Address:192.0.2.7", "DNS:devbox"):  # fmt: skip
        assert name in text
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-in", str(made.crt("kubelet-client"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "O = system:nodes" in subject
    assert "CN = system:node:localkube" in subject
    before = made.crt("admin").read_bytes()
    pki.ensure(tmp_path / "pki", "192.0.2.8", "devbox")
    assert made.crt("admin").read_bytes() == before  # unchanged, not re-issued
    assert "192.0.2.8" in subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
         str(made.crt("apiserver"))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    kc = tmp_path / "admin.kubeconfig"
    kubeconfig.write(
        kc, server="https://127.0.0.1:6443", ca=made.ca_crt, cert=made.crt("admin"),
        key=made.key("admin"), user="kubernetes-admin",
    )  # fmt: skip
    doc = json.loads(kc.read_text())
    assert doc["current-context"] == "localkube"
    assert oct(kc.stat().st_mode & 0o777) == "0o600"


def test_a_fake_node_counts_only_once_the_node_controller_lifts_not_ready() -> None:
    from localkube.addons import kwok

    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    own_taint = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    assert kwok.schedulable({**ready, "spec": {"taints": [own_taint]}})
    assert not kwok.schedulable({**ready, "spec": {"taints": [own_taint, not_ready]}})
    assert not kwok.schedulable({"spec": {"taints": [own_taint]}})
