"""The cluster's certificates name what clients connect to."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from localkube.cluster import kubeconfig, pki


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
