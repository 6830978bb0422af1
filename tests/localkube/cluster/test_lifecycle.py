"""``up`` converges: a running component restarts only when it changed."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from localkube import config
from localkube.cluster import lifecycle as cluster
from localkube.config import Paths


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


def test_the_default_storage_class_binds_at_once_with_its_helper_on_the_node(
    tmp_path: Path,
) -> None:
    """Immediate binding needs the provisioner's shared-filesystem mode (else it refuses a
    claim with no selected node), and its helper pod pinned to the one real node (it
    tolerates every taint, so the scheduler could pick a kwok node where nothing runs)."""
    paths = Paths(cache=tmp_path / "c", state=tmp_path / "s", run=tmp_path / "r")
    docs = {d["kind"]: d for d in yaml.safe_load_all(cluster.storage_manifest(paths)) if d}
    assert docs["StorageClass"]["volumeBindingMode"] == "Immediate"
    data = docs["ConfigMap"]["data"]
    assert json.loads(data["config.json"]) == {"sharedFileSystemPath": str(paths.storage)}
    helper = yaml.safe_load(data["helperPod.yaml"])["spec"]
    assert (helper["nodeName"], helper["hostNetwork"]) == (config.NODE_NAME, True)
    assert "$VOL_DIR" in data["setup"], "the shell's variable, not a template's"
    stamp = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    other = Paths(cache=tmp_path / "c", state=tmp_path / "elsewhere", run=tmp_path / "r")
    moved = {d["kind"]: d for d in yaml.safe_load_all(cluster.storage_manifest(other)) if d}
    assert moved["Deployment"]["spec"]["template"]["metadata"]["annotations"] != stamp, (
        "a changed configuration restarts the provisioner"
    )
