"""Teardown's walk of the pods' cgroups: a cgroup removed while it is walked is skipped."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from localkube.cluster import cleanup


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
