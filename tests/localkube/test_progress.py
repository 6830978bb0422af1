"""A cold build's progress lines and what each ``up`` builds (issue #28), without building."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localkube import progress  # noqa: E402
from localkube.cluster import lifecycle as cluster  # noqa: E402
from localkube.config import Paths  # noqa: E402
from localkube.toolchain import build  # noqa: E402


@pytest.mark.parametrize(
    ("target", "family"),
    [
        (build.KUBERNETES.name, "kubernetes"),
        (build.HELM.name, "helm"),
        (build.LOCAL_PATH.name, "local-path-provisioner"),
        (build.PAUSE.name, "pause"),
        (build.BUILDKIT.name, "buildkit"),
    ],
)
def test_a_record_outlives_the_version_in_the_targets_name(target: str, family: str) -> None:
    assert progress.family(target) == family


def test_every_target_has_a_reference_time() -> None:
    """A fresh machine has no records: every component still says what to expect."""
    for target in build.TARGETS.values():
        assert progress.family(target.name) in progress.REFERENCE_SECONDS


def test_this_machines_record_wins_over_the_reference(tmp_path: Path) -> None:
    assert progress.expected("kubernetes", progress.read_records(tmp_path)) == 801
    progress.record(tmp_path, "kubernetes", 420.04)
    progress.record(tmp_path, "coredns", 90)
    records = progress.read_records(tmp_path)
    assert records == {"kubernetes": 420.0, "coredns": 90.0}
    assert progress.expected("kubernetes", records) == 420.0
    assert progress.expected("helm", records) == 143
    assert progress.expected("something-new", records) is None
    (tmp_path / progress.RECORD_FILE).write_text("not json")
    assert progress.read_records(tmp_path) == {}


def test_the_lines_say_k_of_n_elapsed_and_expected() -> None:
    records = {"kubernetes": 800.0}
    assert progress.plan_line(["kubernetes", "coredns", "new"], records) == (
        "building 3 component(s), about 16m00s in all on 2 cores (once; then cached): "
        "kubernetes ~13m20s, coredns ~2m40s, new"
    )
    assert progress.start_line(1, 3, "kubernetes", records) == (
        "[1/3] building kubernetes, usually ~13m20s"
    )
    assert progress.tick_line(
        1, 3, "kubernetes", 200, records=records, detail="kube-apiserver"
    ) == ("[1/3] kubernetes (kube-apiserver): 3m20s of about 13m20s, ~10m00s left")
    late = progress.tick_line(1, 3, "kubernetes", 900, records=records)
    assert late == (
        "[1/3] kubernetes: 15m00s, longer than the usual 13m20s (a busy machine?); still building"
    )
    assert progress.tick_line(3, 3, "new", 65, records=records) == "[3/3] new: 1m05s so far"
    assert progress.done_line(2, 3, "coredns", 9.4) == "[2/3] built coredns in 9s"
    assert progress.tick_line(0, 0, "image x", 5, records={}) == "image x: 5s so far"


def test_a_long_step_is_never_silent() -> None:
    lines: list[str] = []
    clock = progress.Clock()
    with progress.ticking(
        progress.ticker(1, 1, "kubernetes", clock, records={}), lines.append, 0.01
    ):
        time.sleep(0.1)
    count = len(lines)
    assert count >= 3
    assert all(line.startswith("[1/1] kubernetes: 0s of about 13m21s") for line in lines)
    time.sleep(0.05)
    assert len(lines) == count, "the ticker stops with the step"
    assert not [t for t in threading.enumerate() if t.name == "localkube-progress"]


def test_only_what_is_missing_is_counted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    built = {"kubernetes", "pause"}
    calls: list[tuple[str, tuple[int, int]]] = []
    monkeypatch.setattr(build, "go_version", lambda paths: "go1.26")
    monkeypatch.setattr(
        build,
        "is_built",
        lambda target, paths, gover=None: target.name in {build.TARGETS[n].name for n in built},
    )
    monkeypatch.setattr(
        build,
        "build",
        lambda target, paths, force=False, step=(1, 1): calls.append((target.name, step)),
    )
    paths = Paths(cache=tmp_path, state=tmp_path / "s", run=tmp_path / "r")
    build.build_all(paths, cluster.PROFILES["demo"])
    steps = {progress.family(name): step for name, step in calls}
    assert steps["kubernetes"] == (0, 0)
    todo = [n for n in cluster.PROFILES["demo"] if n not in built]
    assert [steps[progress.family(build.TARGETS[n].name)] for n in todo] == [
        (k, len(todo)) for k in range(1, len(todo) + 1)
    ]
    out = capsys.readouterr().out
    assert out.startswith(f"localkube: building {len(todo)} component(s), about ")


def test_the_demo_builds_neither_kwok_nor_helm_and_the_suite_builds_everything() -> None:
    assert set(cluster.PROFILES["all"]) == set(build.TARGETS)
    assert "kwok" not in cluster.PROFILES["demo"]
    # BuildKit's objects are the chart's committed rendering (localkube.addons.buildkit.manifest)
    assert "helm" not in cluster.PROFILES["demo"]
    assert "buildkit" in cluster.PROFILES["demo"]
    assert set(cluster.PROFILES["core"]) == set(cluster.CORE_TARGETS)
    assert "buildkit" not in cluster.PROFILES["core"]
