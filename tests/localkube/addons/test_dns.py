"""Cluster DNS (CoreDNS)."""

from __future__ import annotations

from typing import Any

from localkube.addons import dns


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


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
