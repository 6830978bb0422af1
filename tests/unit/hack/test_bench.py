"""The benchmark's own arithmetic (hack/bench): percentiles, write counts, gaps, duplicates."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from bench.cli import _watches_bench
from bench.kube import _labels, operator_writes, write_deltas
from bench.load import Seen
from bench.report import verdicts
from bench.stats import percentile, summary_ms
from bench.threads import cpu_by_group, profile_thread_names, thread_cpu
from bench.watch import PodRecord


def test_percentiles_are_measured_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([], 50) is None
    assert summary_ms([0.01, 0.02, 0.5]) == {"p50": 20.0, "p95": 500.0, "max": 500.0, "count": 3}


def test_apiserver_counter_lines_are_parsed() -> None:
    line = (
        'code="201",component="apiserver",dry_run="",group="",resource="pods",'
        'scope="resource",subresource="",verb="POST",version="v1"'
    )
    labels = _labels(line)
    assert labels["verb"] == "POST"
    assert labels["resource"] == "pods"
    assert labels["subresource"] == ""
    assert labels["version"] == "v1"


def test_writes_are_deltas_and_the_operators_are_told_apart() -> None:
    before = Counter({("POST", "", "pods", "", "201"): 10})
    after = Counter(
        {
            ("POST", "", "pods", "", "201"): 15,
            ("POST", "", "pods", "binding", "201"): 5,
            ("PATCH", "", "pods", "status", "200"): 10,
            ("PATCH", "shipway.dev", "pipelines", "status", "200"): 6,
            ("POST", "", "events", "", "201"): 6,
            ("POST", "events.k8s.io", "events", "", "201"): 5,
            ("GET", "", "pods", "", "200"): 99,
        }
    )
    deltas = write_deltas(before, after)
    assert "GET core/pods 200" not in deltas
    assert operator_writes(deltas) == {
        "POST core/pods 201": 5,
        "PATCH shipway.dev/pipelines/status 200": 6,
        "POST core/events 201": 6,
    }


def record(name: str, pipeline: str, step: str, added: float, *, done: float | None) -> PodRecord:
    return PodRecord(
        name, uids=[f"uid-{name}"], added_at=added, terminated_at=done, pipeline=pipeline, step=step
    )


def test_gaps_run_from_one_steps_end_to_the_next_steps_pod() -> None:
    pods = [
        record("p-2-b", "p", "2", 10.25, done=11.0),
        record("p-1-a", "p", "1", 9.0, done=10.0),
        record("p-10-c", "p", "10", 11.5, done=None),
    ]
    seen = Seen(pods, {}, {}, [])
    assert seen.gaps() == [0.25, 0.5]


def test_a_step_created_twice_is_a_duplicate() -> None:
    twice = record("p-1-a", "p", "1", 1.0, done=2.0)
    twice.uids.append("uid-other")
    retried = record("p-2-r1-b", "p", "2", 3.0, done=4.0)
    pods = [twice, record("p-2-b", "p", "2", 2.5, done=3.0), retried]
    found = Seen(pods, {}, {}, []).duplicates()
    assert found == {"pods_added_twice": ["p-1-a"], "steps_with_several_pods": ["p/2"]}


def test_only_operators_that_see_bench_namespaces_are_reported() -> None:
    assert _watches_bench(["shipway", "operator", "-A"])
    assert _watches_bench(["shipway", "operator", "-n", "!shipway-helm-*"])
    assert _watches_bench(["shipway", "operator", "-n", "bench-*"])
    assert not _watches_bench(["shipway", "operator", "-n", "cli-dev"])
    assert not _watches_bench(["shipway", "operator", "--namespace=shipway-helm-manual"])
    assert not _watches_bench(["shipway", "operator", "-n", "e2e-*", "-n", "!bench-*"])


def test_targets_are_judged_only_when_measured() -> None:
    met = verdicts({"transition_gap_p50_ms": 20.0, "api_writes_per_step": 3.4})
    assert met["transition_gap_p50_ms"] is True
    assert met["api_writes_per_step"] is False
    assert met["resume_seconds"] is None


def test_log_reads_are_counted_under_connect_and_get() -> None:
    from bench.kube import log_reads

    before: Counter[tuple[str, str, str, str, str]] = Counter(
        {("CONNECT", "", "pods", "log", "200"): 5}
    )
    after = Counter(
        {
            ("CONNECT", "", "pods", "log", "200"): 12,
            ("GET", "", "pods", "log", "405"): 1,
            ("GET", "", "pods", "", "200"): 100,  # a pod read, not a log
        }
    )
    assert log_reads(before, after) == 8


def test_archival_on_vs_off_compares_rate_cpu_and_calls_per_step() -> None:
    from bench.archival import compare

    off = {
        "steps_completed": 1000,
        "steps_per_second": 40.0,
        "operator_cpu_s": 10.0,
        "operator_cpu_burst_s": 8.0,
        "operator_writes": {"POST core/pods 201": 1000, "PATCH x 200": 2000},
        "log_reads": 0,
    }
    # Its start costs the "on" operator 0.9 s more (SQLAlchemy): counted apart.
    on = {"steps_completed": 1000, "steps_per_second": 38.0, "operator_cpu_s": 11.4,
          "operator_cpu_burst_s": 8.5, "operator_writes": {"POST core/pods 201": 1000, "PATCH x 200": 2000}, "log_reads": 1000,
          "archived_pods": 1000}  # fmt: skip
    got = compare(off, on)
    assert got["throughput_ratio"] == 0.95
    assert got["cpu_ms_per_step_added"] == 0.5
    assert got["cpu_ms_per_step_added_with_start"] == 1.4
    assert got["calls_per_step_added"] == 1.0
    assert got["log_reads_per_step"] == 1.0
    assert compare({**off, "steps_completed": 0}, on)["throughput_ratio"] is None


def test_a_neighbours_run_splits_into_the_operators_share_and_the_clusters() -> None:
    from bench.fairness import timeline

    pods = [
        PodRecord("n-2", added_at=10.5, scheduled_at=10.6, running_at=11.0, terminated_at=12.0, step="2"),
        PodRecord("n-1", added_at=10.1, scheduled_at=10.2, running_at=10.4, terminated_at=10.45, step="1"),
    ]  # fmt: skip
    got = timeline(10.0, pods, 12.3)
    assert [p["step"] for p in got["pods"]] == ["1", "2"]
    # create -> first pod 0.1, end of 1 -> pod 2 0.05, end of 2 -> Succeeded 0.3
    assert got["operator_s"] == 0.45
    assert got["cluster_s"] == 0.35 + 1.5
    assert got["scheduler_wait_s"] == 0.2
    assert got["end_to_succeeded_s"] == 0.3
    assert got["total_s"] == 2.3


def test_a_pod_part_the_watch_missed_counts_nowhere() -> None:
    from bench.fairness import timeline

    seen_ended = PodRecord("n-1", added_at=1.0, terminated_at=2.0, running_at=2.0, step="1")
    got = timeline(0.5, [seen_ended], 2.5)
    assert got["pods"][0]["scheduled_s"] is None
    assert got["pods"][0]["running_s"] is None
    assert got["operator_s"] == 1.0  # 0.5 to its create, 0.5 from its end
    assert got["cluster_s"] == 0.0


def test_fairness_ratio_is_of_medians_and_absent_without_runs() -> None:
    from bench.fairness import ratio

    got = ratio(alone=[3.0, 4.0, 100.0], beside=[6.0, 9.0, 7.0])
    assert (got["alone_median_s"], got["beside_median_s"], got["ratio"]) == (4.0, 7.0, 1.75)
    assert ratio(alone=[3.0], beside=[])["ratio"] is None


def test_a_pod_seen_ended_before_running_started_when_it_ended() -> None:
    from bench.fairness import timeline

    quick = PodRecord(
        "n-1", added_at=1.0, scheduled_at=1.1, running_at=3.4, terminated_at=2.0, step="1"
    )
    got = timeline(0.9, [quick], 2.2)["pods"][0]
    assert (got["running_s"], got["ended_s"]) == (0.9, 0.0)


def test_operator_cpu_is_grouped_by_the_thread_names_py_spy_gives_each_thread_id(
    tmp_path: Path,
) -> None:
    speedscope = tmp_path / "scale.speedscope.json"
    speedscope.write_text(
        json.dumps(
            {
                "profiles": [
                    {"name": 'Thread 10 "MainThread"'},
                    {"name": 'Thread 11 "kube_0"'},
                    {"name": 'Thread 12 "kube_15"'},
                    {"name": 'Thread 13 "podwatch-bench-scale-1a2b3c"'},
                    {"name": 'Thread 15 ""'},
                    {"name": "not a thread"},
                ]
            }
        )
    )
    names = profile_thread_names(speedscope)
    assert names == {
        10: "MainThread",
        11: "kube_0",
        12: "kube_15",
        13: "podwatch-bench-scale-1a2b3c",
    }
    before = {10: 5.0, 11: 1.0, 12: 1.0, 13: 0.5}
    # 14 started in between and was never sampled; py-spy could not read 15's name
    after = {10: 25.0, 11: 4.0, 12: 3.5, 13: 2.0, 14: 0.25, 15: 0.5}
    assert cpu_by_group(before, after, names) == {
        "MainThread": 20.0,
        "kube": 5.5,
        "podwatch": 1.5,
        "unnamed": 0.75,
    }
    # the kernel's counters of this very process: its main thread has run
    mine = thread_cpu(os.getpid())
    assert os.getpid() in mine
    assert mine[os.getpid()] > 0
