"""The host's preflight checks: one clear line for a taken port, no root, no Linux."""

from __future__ import annotations

import os
import platform
import socket

import pytest

from localkube.cluster import host
from localkube.errors import LocalkubeError


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
