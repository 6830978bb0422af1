"""The host refuses service addresses kube-proxy has not translated (servicenet)."""

from __future__ import annotations

from collections.abc import Sequence

from localkube.cluster import servicenet


class FakeIptables:
    """Just enough of iptables' filter table: chains of rules, -N/-F/-A/-C/-I."""

    def __init__(self) -> None:
        self.chains: dict[str, list[tuple[str, ...]]] = {"OUTPUT": [], "FORWARD": []}

    def __call__(self, argv: Sequence[str]) -> int:
        args = list(argv)
        assert args[:3] == ["-w", "-t", "filter"], args
        op, chain, rest = args[3], args[4], tuple(args[5:])
        if op == "-N":
            if chain in self.chains:
                return 1
            self.chains[chain] = []
        elif op == "-F":
            self.chains[chain] = []
        elif op == "-A":
            self.chains[chain].append(rest)
        elif op == "-C":
            return 0 if rest in self.chains[chain] else 1
        elif op == "-I":
            self.chains[chain].insert(int(rest[0]) - 1, rest[1:])
        return 0


def test_untranslated_packets_for_the_service_range_are_refused_and_translated_ones_pass() -> None:
    found = servicenet.rules("10.96.0.0/16")
    assert all(r[:4] == ["-A", servicenet.CHAIN, "-d", "10.96.0.0/16"] for r in found)
    # Only what kube-proxy did not DNAT: a routed Service's packets are never refused.
    assert all(r[6:9] == ["!", "--ctstate", "DNAT"] for r in found)
    assert found[0][9:] == ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"]
    assert found[-1][-3:] == ["REJECT", "--reject-with", "icmp-port-unreachable"]


def test_install_jumps_first_from_output_and_forward_and_is_idempotent() -> None:
    table = FakeIptables()
    table.chains["OUTPUT"].append(("-j", "KUBE-SERVICES"))
    servicenet.install(table, "10.96.0.0/16")
    servicenet.install(table, "10.96.0.0/16")
    assert table.chains["OUTPUT"] == [("-j", servicenet.CHAIN), ("-j", "KUBE-SERVICES")]
    assert table.chains["FORWARD"] == [("-j", servicenet.CHAIN)]
    assert len(table.chains[servicenet.CHAIN]) == len(servicenet.rules())


def test_down_removes_the_chain_as_one_of_ours() -> None:
    from localkube.cluster import cleanup

    assert servicenet.CHAIN.startswith(cleanup.CHAIN_PREFIXES)
