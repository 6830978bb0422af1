"""The node's mount namespace is entered only once its holder has made it and shared ``/``.

containerd once entered the holder's ``/proc/<pid>/ns/mnt`` a moment before ``unshare`` had
made the namespace, and so ran in the host's: the kubelet's tmpfs of every service-account
token never reached a container (CI, 7 Dec 2026: the local-path-provisioner crash-looped).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from localkube.cluster import runtime
from localkube.config import Paths
from localkube.errors import LocalkubeError


def _fake_proc(tmp_path: Path, *, theirs: str, comm: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self" / "ns").mkdir(parents=True)
    (proc / "self" / "ns" / "mnt").symlink_to("mnt:[4026531841]")
    (proc / "42" / "ns").mkdir(parents=True)
    (proc / "42" / "ns" / "mnt").symlink_to(theirs)
    (proc / "42" / "comm").write_text(comm + "\n")
    return proc


def test_a_holder_still_in_our_namespace_is_not_ready(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, theirs="mnt:[4026531841]", comm="unshare")
    assert "not made its own mount namespace" in runtime.holder_state(42, proc)


def test_a_holder_that_has_not_shared_its_root_yet_is_not_ready(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, theirs="mnt:[4026532999]", comm="sh")
    assert "not shared its root mount" in runtime.holder_state(42, proc)


def test_a_holder_in_its_own_namespace_running_sleep_is_ready(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, theirs="mnt:[4026532999]", comm="sleep")
    assert runtime.holder_state(42, proc) == ""
    assert "is gone" in runtime.holder_state(43, proc)


def _paths(tmp_path: Path) -> Paths:
    return Paths(cache=tmp_path / "cache", state=tmp_path / "state", run=tmp_path / "run")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="unshare --mount needs root"
)
def test_nothing_enters_the_holder_before_it_has_made_its_namespace(tmp_path: Path) -> None:
    """A real holder that is slow to unshare: entering is refused until it is ready, and
    then lands in a namespace that is not ours."""
    paths = _paths(tmp_path)
    holder = runtime.service(paths, "node-mounts")
    make = "mount --make-rshared / && exec sleep infinity"
    slow = f"sleep 0.5; exec unshare --mount --propagation private -- sh -c '{make}'"
    holder.start(["sh", "-c", slow])
    try:
        assert not runtime.node_mounts_ready(paths)
        with pytest.raises(LocalkubeError, match="not ready"):
            runtime.in_node_mounts(paths, ["true"])
        runtime.wait_for("the holder", lambda: runtime.node_mounts_ready(paths), timeout=10)
        argv = runtime.in_node_mounts(paths, ["readlink", "/proc/self/ns/mnt"])
        inside = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
        assert inside != os.readlink("/proc/self/ns/mnt")
    finally:
        holder.stop(timeout=5)
