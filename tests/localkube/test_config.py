"""The fixed addresses of the local cluster."""

from __future__ import annotations

import ipaddress

from localkube import config


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
