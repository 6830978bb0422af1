"""The bench's table and verdicts: each phase's figures as rows beside their targets."""

from __future__ import annotations

from typing import Any

from bench import archival as archival_phase
from bench import dashboard as dashboard_phase
from bench import history as history_phase
from bench import triggers as triggers_phase

PACED_STEPS_PER_SECOND = 36
"""Offered in the paced phase: the 30 steps/s target plus a fifth, so that meeting it is not
an artefact of the offered rate itself."""
TARGETS = {
    "admission_p95_added_ms": ("<=", 20),
    "transition_gap_p50_ms": ("<=", 50),
    "transition_gap_p95_ms": ("<=", 200),
    "scale_steps_per_second": (">=", 30),
    "scale_p95_gap_ms": ("<=", 1000),
    "paced_steps_per_second": (">=", 30),
    "paced_p95_gap_ms": ("<=", 1000),
    "api_writes_per_step": ("<=", 3),
    "operator_peak_rss_mb": ("<=", 150),
    "resume_seconds": ("<=", 10),
    "duplicated_steps": ("<=", 0),
    "checkout_vs_clone_ratio": ("<=", 1.5),
    "build_cold_ratio": ("<=", 1.2),
    "build_unchanged_ratio": ("<=", 1.2),
    "build_one_file_changed_ratio": ("<=", 1.2),
    "build_push_to_pod_p50_ms": ("<=", 100),
    "history_page_p95_ms": ("<=", 100),
    "history_lookup_p95_ms": ("<=", 100),
    "dashboard_list_p95_ms": ("<=", 200),
    "dashboard_run_p95_ms": ("<=", 200),
    "dashboard_live_log_p95_ms": ("<=", 1000),
    "fairness_ratio": ("<=", 2),
    "archival_throughput_ratio": (">=", 0.9),
    "archival_cpu_ms_per_step_added": ("<=", 1),
    "archival_calls_per_step_added": ("<=", 1),
    "triggers_received_to_created_p95_ms": ("<=", 1000),
    "triggers_push_to_first_step_pod_p95_ms": ("<=", 5000),
}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}" if abs(value) < 1e6 else f"{value:.3g}{unit}"
    return f"{value}{unit}"


def _by_thread(groups: dict[str, float] | None) -> str:
    """``main 20.1, kube 9.3, ...`` seconds: the largest groups, the table's width allowing."""
    if not groups:
        return "n/a"
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in list(groups.items())[:4]) + " s"


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def verdicts(figures: dict[str, Any]) -> dict[str, bool | None]:
    result: dict[str, bool | None] = {}
    for key, (op, limit) in TARGETS.items():
        value = figures.get(key)
        if value is None:
            result[key] = None
        else:
            result[key] = value <= limit if op == "<=" else value >= limit
    return result


def flatten(results: dict[str, Any]) -> dict[str, Any]:
    gap = results.get("transition_gap_ms") or {}
    sc = results.get("scale") or {}
    rs = results.get("restart") or {}
    return {
        "admission_p95_added_ms": (results.get("admission") or {}).get("p95_added_ms"),
        "transition_gap_p50_ms": gap.get("p50"),
        "transition_gap_p95_ms": gap.get("p95"),
        "scale_steps_per_second": sc.get("steps_per_second"),
        "scale_p95_gap_ms": sc.get("p95_gap_ms"),
        "paced_steps_per_second": (results.get("paced") or {}).get("steps_per_second_sustained"),
        "paced_p95_gap_ms": (results.get("paced") or {}).get("p95_gap_ms"),
        "api_writes_per_step": sc.get("api_writes_per_step"),
        "operator_peak_rss_mb": sc.get("operator_peak_rss_mb"),
        "resume_seconds": rs.get("resume_seconds"),
        "duplicated_steps": rs.get("duplicated_steps"),
        "checkout_vs_clone_ratio": (results.get("source") or {}).get("checkout_vs_clone_ratio"),
        "build_cold_ratio": ((results.get("builds") or {}).get("cold") or {}).get("ratio"),
        "build_unchanged_ratio": ((results.get("builds") or {}).get("unchanged") or {}).get(
            "ratio"
        ),
        "build_one_file_changed_ratio": (
            (results.get("builds") or {}).get("one_file_changed") or {}
        ).get("ratio"),
        "build_push_to_pod_p50_ms": ((results.get("builds") or {}).get("push_to_pod_ms") or {}).get(
            "p50"
        ),
        "history_page_p95_ms": (results.get("history") or {}).get("p95_page_ms"),
        "history_lookup_p95_ms": (results.get("history") or {}).get("p95_lookup_ms"),
        "dashboard_list_p95_ms": (results.get("dashboard") or {}).get("p95_list_ms"),
        "dashboard_run_p95_ms": (results.get("dashboard") or {}).get("p95_run_ms"),
        "dashboard_live_log_p95_ms": (results.get("dashboard") or {}).get("p95_browser_log_ms"),
        "fairness_ratio": (results.get("fairness") or {}).get("ratio"),
        "archival_throughput_ratio": (results.get("archival") or {}).get("throughput_ratio"),
        "archival_cpu_ms_per_step_added": (results.get("archival") or {}).get(
            "cpu_ms_per_step_added"
        ),
        "archival_calls_per_step_added": (results.get("archival") or {}).get(
            "calls_per_step_added"
        ),
        "triggers_received_to_created_p95_ms": (results.get("triggers") or {}).get(
            "received_to_created_p95_ms"
        ),
        "triggers_push_to_first_step_pod_p95_ms": (results.get("triggers") or {}).get(
            "push_to_first_step_pod_p95_ms"
        ),
    }


def fairness_rows(fa: dict[str, Any], mark: Any) -> list[tuple[str, str, str]]:
    """The fairness phase's rows: the neighbour alone and beside the 1000-step pipeline, on
    the real node (the target) and on kwok."""
    if not fa:
        return []
    kwok = fa.get("kwok") or {}
    return [
        (f"fairness ({fa.get('neighbour_steps')} steps beside {fa.get('big_steps')} on kwok in another namespace)", "", ""),
        ("  real node: alone / beside (median)", f"{_fmt(fa.get('alone_median_s'))} / {_fmt(fa.get('beside_median_s'), ' s')}", ""),
        ("  real node: beside / alone", _fmt_ratio(fa.get("ratio")), mark("fairness_ratio")),
        ("  kwok: alone / beside (median)", f"{_fmt(kwok.get('alone_median_s'))} / {_fmt(kwok.get('beside_median_s'), ' s')}", ""),
        ("  kwok: beside / alone", _fmt_ratio(kwok.get("ratio")), ""),
        ("  1000-step pipeline: steps/s", _fmt(fa.get("big_steps_per_second")), ""),
    ]  # fmt: skip


def source_rows(so: dict[str, Any], mark: Any) -> list[tuple[str, str, str]]:
    """The source phase's rows: checkout and upload beside doing it by hand, the wait apart."""
    if not so:
        return []
    return [
        (f"source ({so.get('files')} files, {so.get('bytes', 0) // 1_000_000} MB repository)", "", ""),
        ("  checkout / git clone on the host", f"{_fmt(so.get('checkout_s'))} / {_fmt(so.get('host_clone_s'), ' s')}", ""),
        ("  checkout / clone ratio", _fmt_ratio(so.get("checkout_vs_clone_ratio")), mark("checkout_vs_clone_ratio")),
        ("  upload / tar | tar on the host", f"{_fmt(so.get('upload_s'))} / {_fmt(so.get('host_tar_s'), ' s')}", ""),
        ("  upload / tar ratio", _fmt_ratio(so.get("upload_vs_tar_ratio")), ""),
        ("  wait: created -> checkout running", _fmt(so.get("checkout_wait_s"), " s"), ""),
        ("  wait: created -> receiver ready", _fmt(so.get("upload_receiver_ready_s"), " s"), ""),
    ]  # fmt: skip


def table(results: dict[str, Any]) -> str:
    ov = results.get("overhead") or {}
    sc = results.get("scale") or {}
    rs = results.get("restart") or {}
    flat = flatten(results)
    met = verdicts(flat)

    def mark(key: str) -> str:
        ok = met.get(key)
        op, limit = TARGETS[key]
        target = f"{'≤' if op == '<=' else '≥'} {limit}"
        return f"{target:>8}  " + ("ok" if ok else "MISSED" if ok is False else "-")

    gap = ov.get("transition_gap_ms") or {}
    raw = ov.get("raw_gap_ms") or {}
    sgap = sc.get("transition_gap_ms") or {}
    pc = results.get("paced") or {}
    pgap = pc.get("transition_gap_ms") or {}
    ad = results.get("admission") or {}
    adw, ado = ad.get("with_webhook_ms") or {}, ad.get("without_webhook_ms") or {}
    adl, adlo = ad.get("large_with_webhook_ms") or {}, ad.get("large_without_webhook_ms") or {}
    adk, adko = (
        ad.get("kubectl_apply_with_webhook_ms") or {},
        ad.get("kubectl_apply_without_webhook_ms") or {},
    )
    adr, adrl = (
        ad.get("webhook_round_trip_ms") or {},
        ad.get("webhook_round_trip_1000_steps_ms") or {},
    )
    rows = [
        (f"admission (create, {ad.get('applies_per_set', '?')} with and without webhook)", "", ""),
        ("  create p95 with / without", f"{_fmt(adw.get('p95'))} / {_fmt(ado.get('p95'), ' ms')}", ""),
        ("  create p95 added by the webhook", _fmt(ad.get("p95_added_ms"), " ms"), mark("admission_p95_added_ms")),
        ("  create p95 ratio with / without", _fmt_ratio(ad.get("p95_ratio")), ""),
        ("  kubectl apply p95 with / without", f"{_fmt(adk.get('p95'))} / {_fmt(adko.get('p95'), ' ms')}", ""),
        ("  kubectl apply p95 ratio", _fmt_ratio(ad.get("kubectl_apply_p95_ratio")), ""),
        ("  webhook round trip p50 / p95", f"{_fmt(adr.get('p50'))} / {_fmt(adr.get('p95'), ' ms')}", ""),
        ("  1000-step spec: round trip p95", _fmt(adrl.get("p95"), " ms"), ""),
        ("  1000-step spec: create max with / without", f"{_fmt(adl.get('max'))} / {_fmt(adlo.get('max'), ' ms')}", ""),
        ("overhead (real kubelet, 20 steps)", "", ""),
        ("  transition gap p50", _fmt(gap.get("p50"), " ms"), mark("transition_gap_p50_ms")),
        ("  transition gap p95", _fmt(gap.get("p95"), " ms"), mark("transition_gap_p95_ms")),
        ("  transition gap max", _fmt(gap.get("max"), " ms"), ""),
        ("  raw pods gap p50 / p95", f"{_fmt(raw.get('p50'))} / {_fmt(raw.get('p95'), ' ms')}", ""),
        (
            "  wall time shipway / raw",
            f"{_fmt(ov.get('shipway_wall_s'))} / {_fmt(ov.get('raw_wall_s'), ' s')}",
            "",
        ),
        ("  shipway / raw ratio", _fmt_ratio(ov.get("shipway_vs_raw_ratio")), ""),
        (f"scale (kwok, {sc.get('pipelines', '?')} pipelines x 5 steps)", "", ""),
        ("  steps/s, submit to last step", _fmt(sc.get("steps_per_second")), mark("scale_steps_per_second")),
        ("  steps/s sustained (10-90%)", _fmt(sc.get("steps_per_second_sustained")), ""),
        ("  transition gap p50 / p95", f"{_fmt(sgap.get('p50'))} / {_fmt(sgap.get('p95'), ' ms')}", mark("scale_p95_gap_ms")),
        ("  API writes per step (operator)", _fmt(sc.get("api_writes_per_step")), mark("api_writes_per_step")),
        ("  operator peak RSS", _fmt(sc.get("operator_peak_rss_mb"), " MB"), mark("operator_peak_rss_mb")),
        ("  operator CPU", _fmt(sc.get("operator_cpu_s"), " s"), ""),
        ("  operator CPU by thread (BENCH_PROFILE)", _by_thread(sc.get("operator_cpu_by_thread_s")), ""),
        (f"paced ({pc.get('pipelines', '?')} pipelines, {PACED_STEPS_PER_SECOND} steps/s offered)", "", ""),
        ("  steps/s sustained (10-90%)", _fmt(pc.get("steps_per_second_sustained")), mark("paced_steps_per_second")),
        ("  transition gap p50 / p95", f"{_fmt(pgap.get('p50'))} / {_fmt(pgap.get('p95'), ' ms')}", mark("paced_p95_gap_ms")),
        ("  operator peak RSS / CPU", f"{_fmt(pc.get('operator_peak_rss_mb'))} MB / {_fmt(pc.get('operator_cpu_s'), ' s')}", ""),
        (f"restart (SIGKILL with {rs.get('unfinished_at_kill', '?')} pipelines in flight)", "", ""),
        ("  resume: all progressing again", _fmt(rs.get("resume_seconds"), " s"), mark("resume_seconds")),
        ("  first progress after restart", _fmt(rs.get("first_progress_s"), " s"), ""),
        ("  duplicated steps", _fmt(rs.get("duplicated_steps")), mark("duplicated_steps")),
        *fairness_rows(results.get("fairness") or {}, mark),
        *archival_phase.rows(results.get("archival") or {}, mark, _fmt),
        *source_rows(results.get("source") or {}, mark),
        *_build_rows(results.get("builds") or {}, mark),
        *history_phase.rows(results.get("history") or {}, mark, _fmt),
        *dashboard_phase.rows(results.get("dashboard") or {}, mark, _fmt),
        *triggers_phase.rows(results.get("triggers") or {}, mark, _fmt),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'':{width}}{'measured':>22}  {'target':>8}"]
    lines += [f"{name:{width}}{value:>22}  {target}" for name, value, target in rows]
    return "\n".join(lines)


def _build_rows(bd: dict[str, Any], mark: Any) -> list[tuple[str, str, str]]:
    """The builds phase: Shipway's build beside the hand's, and the push-to-pod gap."""
    rows = [(f"builds (the seed's Dockerfile, median of {bd.get('repeats', '?')})", "", "")]
    for key, label in (
        ("cold", "cold"),
        ("unchanged", "unchanged rebuild"),
        ("one_file_changed", "one file changed"),
    ):
        fig = bd.get(key) or {}
        both = f"{_fmt(fig.get('shipway_s'))} / {_fmt(fig.get('hand_s'), ' s')}"
        rows.append((f"  {label}: in the pod / buildctl", both, ""))
        rows.append((f"  {label}: ratio", _fmt_ratio(fig.get("ratio")), mark(f"build_{key}_ratio")))
        pod = f"{_fmt(fig.get('wait_s'))} / {_fmt(fig.get('pod_s'), ' s')}"
        rows.append((f"  {label}: pod's wait / whole life", pod, ""))
    gap = bd.get("push_to_pod_ms") or {}
    rows.append(
        (
            "  push to first pod p50 / max",
            f"{_fmt(gap.get('p50'))} / {_fmt(gap.get('max'), ' ms')}",
            mark("build_push_to_pod_p50_ms"),
        )
    )
    return rows
