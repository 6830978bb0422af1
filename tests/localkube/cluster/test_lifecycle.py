"""``up`` converges: a running component restarts only when it changed."""

from __future__ import annotations

from pathlib import Path

from localkube.cluster import lifecycle as cluster


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
