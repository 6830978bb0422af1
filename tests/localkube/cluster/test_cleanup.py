"""Teardown's walk of the pods' cgroups (a cgroup removed while it is walked is skipped) and
of the kubelet's links to our containers' logs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from localkube.cluster import cleanup
from localkube.config import Paths


def _tree(top: Path) -> None:
    for cgroup, pids in (("pod-a/ctr-1", "11\n12\n"), ("pod-b", "21\n"), ("pod-b/ctr-2", "22\n")):
        (top / cgroup).mkdir(parents=True)
        (top / cgroup / "cgroup.procs").write_text(pids)


def test_every_process_of_every_pod_cgroup_is_found(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert cleanup._cgroup_pids(tmp_path) == {11, 12, 21, 22}


def test_a_cgroup_removed_during_the_walk_is_skipped_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last CI run's teardown stopped here: the runtime removed a container's cgroup
    # between listing its parent and reading it.
    _tree(tmp_path)
    gone = tmp_path / "pod-b"
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if Path(path) == gone:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert cleanup._cgroup_pids(tmp_path) == {11, 12}


def test_the_tree_is_removed_deepest_first(tmp_path: Path) -> None:
    top = tmp_path / "kubepods"
    (top / "burstable" / "pod-a" / "ctr-1").mkdir(parents=True)
    (top / "besteffort").mkdir()
    cleanup._rmdir_tree(top)
    assert not top.exists()


def test_only_links_into_our_pod_logs_are_ours(tmp_path: Path) -> None:
    paths = Paths(cache=tmp_path / "cache", state=tmp_path / "state", run=tmp_path / "run")
    links = tmp_path / "containers"
    links.mkdir()
    ours = links / "coredns-1_kube-system_coredns-abc.log"
    ours.symlink_to(paths.pod_logs / "kube-system_coredns-1_uid" / "coredns" / "0.log")
    other = links / "app_default_app-def.log"
    other.symlink_to("/var/log/pods/default_app_uid/app/0.log")  # another kubelet's
    beside = links / "pods-old_ns_c-1.log"  # a sibling directory whose name starts alike
    beside.symlink_to(f"{paths.pod_logs}-old/ns_pod_uid/c/0.log")
    (links / "plain.log").write_text("")
    assert cleanup.container_log_links(paths, links) == [ours]
    assert cleanup.container_log_links(paths, tmp_path / "absent") == []
