"""kwok's fake nodes."""

from __future__ import annotations


def test_a_fake_node_counts_only_once_the_node_controller_lifts_not_ready() -> None:
    from localkube.addons import kwok

    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    own_taint = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
    not_ready = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
    assert kwok.schedulable({**ready, "spec": {"taints": [own_taint]}})
    assert not kwok.schedulable({**ready, "spec": {"taints": [own_taint, not_ready]}})
    assert not kwok.schedulable({"spec": {"taints": [own_taint]}})
