"""Service addresses no Service answers are refused on the host, as on a real node.

A Service's ClusterIP exists only as kube-proxy's DNAT rules. Until kube-proxy has written
them (a second or so after the Service is made), a connection to that address follows the
host's default route. On a cluster's node that goes nowhere; on this machine it reaches the
sandbox's egress proxy, which answers any TLS request with ``404``. The API server's
aggregator met that proxy when it checked a just-installed APIService (the history API), kept
the connection alive and asked through it every 30 s: the APIService stayed
``FailedDiscoveryCheck ... 404`` for good (CI, 6 Dec). So any packet for the service range
that kube-proxy did not translate is refused here, from the host (OUTPUT) and from pods
(FORWARD): the client sees a reset, tries again, and reaches the Service once it is routed.

The chain's name starts with ``KUBE-``, so ``down`` removes it and ``verify`` looks for it
with kube-proxy's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from localkube import config

CHAIN = "KUBE-LOCALKUBE-NO-SERVICE"
#: filter chains a packet for a ClusterIP crosses: the host's own, and pods' (routed).
HOOKS = ("OUTPUT", "FORWARD")

Run = Callable[[Sequence[str]], int]  # an iptables argv → its exit code


def rules(service_cidr: str = config.SERVICE_CIDR) -> list[list[str]]:
    """The chain's rules: refuse what is still addressed to the service range after NAT."""
    untranslated = ["-d", service_cidr, "-m", "conntrack", "!", "--ctstate", "DNAT"]
    return [
        ["-A", CHAIN, *untranslated, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-A", CHAIN, *untranslated, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
    ]


def install(iptables: Run, service_cidr: str = config.SERVICE_CIDR) -> None:
    """Write the chain afresh and jump to it first from each hook; idempotent."""
    base = ["-w", "-t", "filter"]
    if iptables([*base, "-N", CHAIN]) != 0:  # there already: start it over
        iptables([*base, "-F", CHAIN])
    for rule in rules(service_cidr):
        iptables([*base, *rule])
    for hook in HOOKS:
        if iptables([*base, "-C", hook, "-j", CHAIN]) != 0:
            iptables([*base, "-I", hook, "1", "-j", CHAIN])
