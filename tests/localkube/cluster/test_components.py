"""The components' configuration: containerd's registry hosts, the kubelet's DNS."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from localkube import config
from localkube.addons import dns
from localkube.addons.registry import server as registry
from localkube.cluster import components, pki
from localkube.config import Paths

CA = Path("/state/pki/ca.crt")


def _paths(tmp_path: Path) -> Paths:
    return Paths(cache=tmp_path / "cache", state=tmp_path / "state", run=tmp_path / "run")


def _layout(tmp_path: Path) -> components.Layout:
    paths = _paths(tmp_path)
    keys = pki.Pki(paths.pki, "192.0.2.10", "node")
    return components.Layout(paths, keys, "192.0.2.10")


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


def test_containerd_reads_the_hosts_directory(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    doc = tomllib.loads(components.containerd_config(paths))
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"]["config_path"] == str(paths.containerd_hosts)
    assert "mirrors" not in cri["registry"]  # containerd refuses mirrors with config_path


def test_hosts_files_are_written_and_stale_hosts_removed(tmp_path: Path) -> None:
    hosts = tmp_path / "certs.d"
    (hosts / "old.example.com").mkdir(parents=True)
    (hosts / "old.example.com" / "hosts.toml").write_text('server = "https://old"\n')
    components.write_registry_hosts(hosts, registry.containerd_hosts(CA))
    assert not (hosts / "old.example.com").exists()
    assert (hosts / "docker.io" / "hosts.toml").read_text() == registry.containerd_hosts(CA)[
        "docker.io"
    ]


def test_the_kubelet_hands_pods_the_dns_service_address(tmp_path: Path) -> None:
    kubelet = components.kubelet_config(_layout(tmp_path))
    assert kubelet["clusterDNS"] == [config.DNS_SERVICE_IP]
    assert kubelet["clusterDomain"] == "cluster.local"
    service = _by_kind(dns.manifests(), "Service")
    assert service["spec"]["clusterIP"] == config.DNS_SERVICE_IP
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        (53, "UDP"),
        (53, "TCP"),
    }
