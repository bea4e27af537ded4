"""Comparing two runs case by case: metric deltas, exact McNemar tests, the changed cases."""

from __future__ import annotations

from ._metrics import METRICS, MetricDef, compute_metrics, metric_members
from ._stats import mcnemar_exact
from ._types import CaseChange, CaseResult, Comparison, Metric, MetricDelta, RunReport

__all__ = ["compare_reports"]


def compare_reports(a: RunReport, b: RunReport, *, alpha: float = 0.05) -> Comparison:
    """B against A. A metric regresses when B is worse and the exact McNemar test on the
    cases both runs scored for it gives p < ``alpha``."""
    ra = {r.case_id: r for r in a.results}
    rb = {r.case_id: r for r in b.results}
    shared = [cid for cid in ra if cid in rb]
    metrics_a = {m.name: m for m in compute_metrics(list(ra.values()))}
    metrics_b = {m.name: m for m in compute_metrics(list(rb.values()))}
    deltas = [_delta(d, ra, rb, shared, metrics_a[d.name], metrics_b[d.name], alpha)
              for d in METRICS]  # fmt: skip
    deltas.append(_plain_delta(metrics_a["error_rate"], metrics_b["error_rate"]))
    regressed = tuple(_change(ra[c], rb[c]) for c in shared if ra[c].passed and not rb[c].passed)
    improved = tuple(_change(ra[c], rb[c]) for c in shared if not ra[c].passed and rb[c].passed)
    return Comparison(
        a=a.info,
        b=b.info,
        alpha=alpha,
        paired=len(shared),
        only_in_a=tuple(c for c in ra if c not in rb),
        only_in_b=tuple(c for c in rb if c not in ra),
        deltas=tuple(deltas),
        regressed_cases=regressed,
        improved_cases=improved,
        regression=any(d.regressed for d in deltas),
    )


def _delta(
    metric: MetricDef,
    ra: dict[str, CaseResult],
    rb: dict[str, CaseResult],
    shared: list[str],
    ma: Metric,
    mb: Metric,
    alpha: float,
) -> MetricDelta:
    in_a = {r.case_id for r in metric_members((ra[c] for c in shared), metric)}
    in_b = {r.case_id for r in metric_members((rb[c] for c in shared), metric)}
    higher = metric.better == "higher"

    def good(r: CaseResult) -> bool:
        """Counted for a higher-is-better metric, not counted for a lower-is-better one."""
        return metric.counts(r) == higher

    only_a = only_b = 0
    for cid in in_a & in_b:
        ga, gb = good(ra[cid]), good(rb[cid])
        only_a += ga and not gb
        only_b += gb and not ga
    p = mcnemar_exact(only_a, only_b) if (only_a or only_b) else None
    delta = mb.value - ma.value if ma.value is not None and mb.value is not None else None
    return MetricDelta(
        name=metric.name,
        a=ma,
        b=mb,
        delta=delta,
        p_value=p,
        discordant=(only_a, only_b),
        regressed=p is not None and p < alpha and only_a > only_b,
    )


def _plain_delta(ma: Metric, mb: Metric) -> MetricDelta:
    delta = mb.value - ma.value if ma.value is not None and mb.value is not None else None
    return MetricDelta(name=ma.name, a=ma, b=mb, delta=delta)


def _change(a: CaseResult, b: CaseResult) -> CaseChange:
    failed = tuple(f"{c.type}: {c.reason}" for c in b.assertions if not c.passed)
    if b.expectation_met is False:
        failed = (f"expected {b.expect}, got {b.behavior}", *failed)
    if b.error:
        failed = (f"error: {b.error}", *failed)
    return CaseChange(
        case_id=a.case_id,
        tags=b.tags,
        expect=b.expect,
        input=b.input,
        a_passed=a.passed,
        b_passed=b.passed,
        a_behavior=a.behavior,
        b_behavior=b.behavior,
        a_output=a.output,
        b_output=b.output,
        b_failed_checks=failed,
    )
