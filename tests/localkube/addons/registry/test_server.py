"""The in-cluster registry: containerd's hosts, its certificate, manifests and configuration."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path
from typing import Any

import pytest

from localkube import config
from localkube.addons.registry import server as registry
from localkube.cluster import pki

CA = Path("/state/pki/ca.crt")


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


def test_docker_io_is_mirrored_by_the_registry_before_docker_hub() -> None:
    hosts = registry.containerd_hosts(CA)
    doc = tomllib.loads(hosts["docker.io"])
    assert list(doc["host"]) == [f"https://{config.REGISTRY_SERVICE_IP}"]
    assert doc["server"] == "https://registry-1.docker.io"
    mirror_host = doc["host"][f"https://{config.REGISTRY_SERVICE_IP}"]
    assert mirror_host["capabilities"] == ["pull", "resolve"]
    assert mirror_host["ca"] == str(CA)


@pytest.mark.parametrize(
    "name",
    [
        "registry.localkube-system.svc.cluster.local",
        "registry.localkube-system.svc",
        "registry.localkube-system",
        config.REGISTRY_SERVICE_IP,
    ],
)
def test_every_name_of_the_registry_leads_the_node_to_its_cluster_ip(name: str) -> None:
    doc = tomllib.loads(registry.containerd_hosts(CA)[name])
    url = f"https://{config.REGISTRY_SERVICE_IP}"
    assert doc["server"] == url
    assert doc["ca"] == str(CA)
    # containerd 1.6 ignores a hosts.toml without a host table ("invalid `host` tree").
    assert doc["host"] == {url: {"capabilities": ["pull", "resolve", "push"], "ca": str(CA)}}


def test_the_registry_certificate_names_what_pods_and_the_node_use() -> None:
    [spec] = [s for s in pki.cert_specs("192.0.2.10", "node") if s.name == "registry"]
    assert set(registry.DNS_NAMES) <= set(spec.dns_names)
    assert config.REGISTRY_SERVICE_IP in spec.ip_addresses
    assert spec.server
    assert not spec.client  # no client certificate: no API access


def test_registry_manifests_tie_service_pod_volume_and_tls_together() -> None:
    docs = registry.manifests(b"CERT", b"KEY")
    secret = _by_kind(docs, "Secret")
    assert base64.b64decode(secret["data"]["tls.crt"]) == b"CERT"
    service = _by_kind(docs, "Service")
    assert service["spec"]["clusterIP"] == config.REGISTRY_SERVICE_IP
    assert service["spec"]["ports"][0]["port"] == 443
    deployment = _by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    [container] = pod["containers"]
    assert container["args"] == ["serve", "/etc/registry/config.yml"]
    claim = _by_kind(docs, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # one writer of the volume


def test_read_only_mode_switches_the_config_the_registry_serves() -> None:
    docs = registry.manifests(b"C", b"K", read_only=True)
    [container] = _by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["serve", "/etc/registry/readonly.yml"]
    files = _by_kind(docs, "ConfigMap")["data"]
    assert "readonly:\n      enabled: true" in files["readonly.yml"]
    assert "readonly" not in files["config.yml"]
    assert "delete:\n    enabled: true" in files["config.yml"]  # retention needs deletes


def test_token_auth_config_is_what_distribution_reads() -> None:
    import yaml

    section = registry.token_auth_config(
        registry.TokenAuth("https://r.example/token", "r.example", "issuer", "/etc/jwks.json")
    )
    token = yaml.safe_load(section)["auth"]["token"]
    assert token == {
        "realm": "https://r.example/token",
        "service": "r.example",
        "issuer": "issuer",
        "jwks": "/etc/jwks.json",
        "signingalgorithms": ["ES256"],
    }
    # Without token auth (SHIPWAY_LOCALKUBE_REGISTRY_AUTH=none) the config has no auth section.
    assert "auth:" not in registry.registry_config()
