"""Unit tests of the local cluster's registry, DNS, mirror and host-package logic (pure parts)."""

from __future__ import annotations

import base64
import ipaddress
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localkube import config  # noqa: E402
from localkube.addons import dns  # noqa: E402
from localkube.addons.registry import mirror, retention  # noqa: E402
from localkube.addons.registry import server as registry  # noqa: E402
from localkube.cluster import components, pki  # noqa: E402
from localkube.cluster import lifecycle as cluster  # noqa: E402
from localkube.config import Paths  # noqa: E402
from localkube.errors import LocalkubeError  # noqa: E402
from localkube.toolchain import build, hostdeps  # noqa: E402

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


# -- containerd's registry hosts -----------------------------------------------------------


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


# -- DNS -----------------------------------------------------------------------------------


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


def test_coredns_serves_the_cluster_domain_and_forwards_the_rest() -> None:
    corefile = _by_kind(dns.manifests(), "ConfigMap")["data"]["Corefile"]
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    assert "forward . /etc/resolv.conf" in corefile
    pod = _by_kind(dns.manifests(), "Deployment")["spec"]["template"]["spec"]
    # Upstream resolvers are the node's, not CoreDNS itself (which would loop).
    assert pod["dnsPolicy"] == "Default"
    assert pod["securityContext"]["runAsNonRoot"] is True
    sysctls = {s["name"]: s["value"] for s in pod["securityContext"]["sysctls"]}
    assert int(sysctls["net.ipv4.ip_unprivileged_port_start"]) <= 53


def test_fixed_service_addresses_are_in_the_static_band_of_the_service_range() -> None:
    cidr = ipaddress.ip_network(config.SERVICE_CIDR)
    fixed = [config.KUBERNETES_SERVICE_IP, config.DNS_SERVICE_IP, config.REGISTRY_SERVICE_IP]
    assert len(set(fixed)) == len(fixed)
    # Kubernetes allocates dynamic ClusterIPs from the upper band first; the lower
    # min(max(16, size/16), 256) addresses are kept for static assignment.
    static_band = min(max(16, cidr.num_addresses // 16), 256)
    for ip in fixed:
        offset = int(ipaddress.ip_address(ip)) - int(cidr.network_address)
        assert 0 < offset < static_band, ip


# -- the registry --------------------------------------------------------------------------


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
    # Off by default (SHIPWAY_LOCALKUBE_REGISTRY_AUTH): the config has no auth section.
    assert "auth:" not in registry.registry_config()


# -- the mirror ----------------------------------------------------------------------------


def test_dockerfile_bases_substitute_args_and_skip_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=debian:12.11-slim\n"
        "FROM ${BASE} AS build\n"
        "FROM --platform=linux/amd64 ruby:3.1\n"
        "FROM build\n"
        "FROM scratch\n"
        "FROM $BASE\n"
    )
    assert mirror.dockerfile_bases(text) == ["debian:12.11-slim", "ruby:3.1"]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", ("library/busybox", "latest")),
        ("debian:12", ("library/debian", "12")),
        ("docker.io/library/redis:7", ("library/redis", "7")),
        ("docker/dockerfile:1", ("docker/dockerfile", "1")),
        ("ghcr.io/org/app:1", None),
        ("localhost:5000/app", None),
        ("debian@sha256:" + "0" * 64, None),
    ],
)
def test_docker_hub_names(image: str, expected: tuple[str, str] | None) -> None:
    assert mirror.docker_hub_repo(image) == expected


def test_the_projects_own_dockerfile_base_is_mirrored() -> None:
    mirrored = mirror.with_project_bases(mirror.MIRRORED, ROOT / "Dockerfile")
    tags = {f"{m.repo}:{t}" for m in mirrored for t in m.tags}
    for image in mirror.dockerfile_bases((ROOT / "Dockerfile").read_text()):
        found = mirror.docker_hub_repo(image)
        assert found is not None
        assert f"{found[0]}:{found[1]}" in tags


def test_the_images_the_issue_promises_are_in_the_mirror() -> None:
    tags = {f"{m.repo}:{t}" for m in mirror.MIRRORED for t in m.tags}
    for wanted in (
        "library/busybox:latest", "library/busybox:1.36", "library/redis:7",
        "library/redis:latest", "library/debian:12", "library/debian:bookworm",
        "library/debian:latest", "library/postgres:15", "library/ruby:3.1",
    ):  # fmt: skip
        assert wanted in tags
    assert set(mirror.recipes()) >= {m.recipe for m in mirror.MIRRORED}


def test_the_docker_engine_is_mirrored_only_when_asked_for() -> None:
    """add_docker's image is for its e2e tests: ``up`` (names None) never builds it."""
    assert "docker" not in {m.recipe for m in mirror.selected(None)}
    (docker,) = mirror.selected(["docker"])
    assert docker.repo == "library/docker"
    assert {"20.10", "20.10-dind"} <= set(docker.tags)
    assert [m.recipe for m in mirror.selected(["busybox"])] == ["busybox"]
    with pytest.raises(LocalkubeError, match="no mirrored image nope"):
        mirror.selected(["nope"])


def test_the_operators_default_daemon_image_is_the_mirrored_one() -> None:
    from shipway.engine.settings import DEFAULT_DOCKER_IMAGE as DEFAULT_IMAGE

    (docker,) = mirror.selected(["docker"])
    name, _, tag = DEFAULT_IMAGE.partition(":")
    assert (f"library/{name}", tag) in {(docker.repo, t) for t in docker.tags}


# -- retention -----------------------------------------------------------------------------


def test_prune_takes_whole_path_prefixes_and_never_base_images() -> None:
    catalog = [
        "shipway/team-a/p1/app",
        "shipway/team-a/p10/app",
        "shipway/team-a/p1",
        "library/busybox",
    ]
    assert retention.repositories_under(catalog, "shipway/team-a/p1") == [
        "shipway/team-a/p1/app",
        "shipway/team-a/p1",
    ]
    assert retention.repositories_under(catalog, "library") == []
    with pytest.raises(LocalkubeError, match="prefix"):
        retention.repositories_under(catalog, "/")


# -- restarts on configuration changes -----------------------------------------------------


def test_a_running_component_restarts_only_when_its_command_or_config_changed(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "kubelet.json"
    conf.write_text("{}")
    stamp = cluster.config_stamp([conf])
    recorded = {"argv": ["kubelet", "--x"], "stamp": stamp}
    assert cluster.outdated(recorded, ["kubelet", "--x"], stamp) == ""
    assert "command line" in cluster.outdated(recorded, ["kubelet", "--y"], stamp)
    conf.write_text('{"clusterDNS": ["10.96.0.10"]}')
    assert "configuration" in cluster.outdated(
        recorded, ["kubelet", "--x"], cluster.config_stamp([conf])
    )
    # A process started before stamps were recorded restarts once to pick its config up.
    assert cluster.outdated({"argv": ["kubelet", "--x"]}, ["kubelet", "--x"], stamp)
    assert cluster.outdated({"argv": ["etcd"]}, ["etcd"], "") == ""


def test_helm_is_linked_with_its_version_and_kubernetes_version() -> None:
    flags = build.HELM.ldflags
    major, minor = config.HELM_K8S_VERSION
    for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        assert f"-X {pkg}.k8sVersionMajor={major}" in flags
        assert f"-X {pkg}.k8sVersionMinor={minor}" in flags
    assert f"internal/version.version={config.HELM_VERSION}" in flags


# -- host packages -------------------------------------------------------------------------


def test_only_fully_installed_packages_count() -> None:
    status = hostdeps.parse_dpkg_status("containerd ii \nrunc rc \nlibc6:amd64 ii \n")
    assert status == {"containerd": "ii", "runc": "rc", "libc6": "ii"}
    assert hostdeps.missing(status, ["containerd", "runc", "libc6", "debootstrap"]) == [
        "runc",
        "debootstrap",
    ]


def test_host_packages_elsewhere_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostdeps.platform, "system", lambda: "Darwin")
    with pytest.raises(LocalkubeError) as info:
        hostdeps.ensure(["containerd"])
    assert "Darwin" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_packages_without_root_say_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostdeps, "unsupported_reason", lambda: "")
    monkeypatch.setattr(hostdeps, "query", lambda pkgs: {"containerd": "ii"})
    monkeypatch.setattr(hostdeps.os, "geteuid", lambda: 1000)
    with pytest.raises(LocalkubeError, match="make host-deps") as info:
        hostdeps.ensure(["containerd", "debootstrap"])
    assert "debootstrap" in str(info.value)
    assert "containerd" not in str(info.value).split(";")[0]
    assert hostdeps.ensure(["containerd"]) == []  # present: nothing to do, no root needed


def test_go_versions() -> None:
    assert hostdeps.parse_go_version("go1.26.8\n") == (1, 26)
    assert hostdeps.parse_go_version("devel") is None
    assert json.dumps(config.GO_MINIMUM)  # a tuple of ints, comparable with the parsed one


def test_an_unreachable_registry_is_named_in_the_error() -> None:
    paths = Paths.default()
    if not (paths.bin / "crane").exists():
        pytest.skip("crane is not built (python -m localkube build crane)")
    with pytest.raises(LocalkubeError, match=r"the registry \(127\.0\.0\.1:9\) does not answer"):
        mirror.remote_digest(paths, "127.0.0.1:9/library/busybox:latest")
