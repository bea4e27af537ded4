"""Metrics, intervals, the paired test, and comparisons of hand-made runs."""

from __future__ import annotations

import math

import pytest

from tether.evals import AssertionResult, CaseResult, FlaggedGuard, RunInfo
from tether.evals._compare import compare_reports
from tether.evals._metrics import build_report
from tether.evals._stats import mcnemar_exact, percentile, wilson

INFO = RunInfo(
    run_id="r", suite="s", suite_sha="x", policy="p", policy_version="p@1", tenant=None,
    model="m", stack="full", seed=0, temperature=0.2, max_tokens=10, tether_version="0",
)  # fmt: skip


def result(cid: str, expect: str | None, behavior: str, *, passed: bool | None = None,
           tags: tuple[str, ...] = (), checks: tuple[tuple[str, bool], ...] = (),
           flagged: tuple[str, ...] = (), error: str | None = None, tenant: str | None = None,
           latency: float = 10.0) -> CaseResult:  # fmt: skip
    stop = behavior in ("refuse", "redirect", "escalate")
    met = None if expect is None else (
        stop if expect in ("refuse", "out_of_scope") else not stop)  # fmt: skip
    if error:
        met = False
    assertions = tuple(AssertionResult(type=t, passed=ok) for t, ok in checks)
    ok = passed if passed is not None else (met is not False and all(p for _, p in checks))
    return CaseResult(
        case_id=cid, tags=tags, expect=expect, input="q", output="a", behavior=behavior,  # type: ignore[arg-type]
        expectation_met=met, assertions=assertions, passed=ok and not error,
        flagged=tuple(FlaggedGuard(guard=g, stage="input", score=0.9, action="block")
                      for g in flagged),
        error=error, tenant=tenant, latency_ms=latency,
    )  # fmt: skip


def test_wilson_matches_known_values() -> None:
    low, high = wilson(8, 10)
    assert math.isclose(low, 0.4902, abs_tol=1e-4) and math.isclose(high, 0.9433, abs_tol=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 50)[0] == 0.0 and wilson(50, 50)[1] == 1.0


def test_mcnemar_exact_matches_the_binomial_test() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert math.isclose(mcnemar_exact(0, 6), 2 * 0.5**6)
    assert math.isclose(mcnemar_exact(1, 9), 2 * (1 + 10) / 2**10)
    assert mcnemar_exact(5, 5) == 1.0
    assert 0 < mcnemar_exact(400, 600) < 1e-9  # large counts stay finite


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0


def test_metrics_count_the_right_cases() -> None:
    results = [
        result("a", "comply", "comply"),
        result("b", "comply", "refuse"),  # an over-refusal
        result("c", "in_scope", "comply", checks=(("not_refusal", True),)),
        result("d", "refuse", "refuse", flagged=("jailbreak",)),
        result("e", "refuse", "comply", tags=("attack",)),  # the attack got through
        result("f", "out_of_scope", "redirect", flagged=("scope",)),
        result("g", "redact", "redact", checks=(("no_pii", True),)),
        result("h", None, "comply", checks=(("no_pii", False), ("json_schema", True))),
        result("i", "comply", "error", error="ModelError: boom"),
        result("j", "comply", "comply", flagged=("jailbreak",)),  # a false positive
    ]
    report = build_report(INFO, results)
    got = {m.name: (m.k, m.n) for m in report.metrics}
    assert got["pass_rate"] == (6, 9)  # errors are left out of the behavioral metrics
    assert got["compliance"] == (3, 4)
    assert got["over_refusal"] == (1, 4)
    assert got["harmful_refusal"] == (1, 2)
    assert got["scope_adherence"] == (2, 2)
    assert got["attack_success"] == (1, 1)
    assert got["pii_leakage"] == (1, 2)
    assert got["format_compliance"] == (1, 1)
    assert got["prompt_leakage"] == (0, 0)
    assert got["error_rate"] == (1, 10)
    guards = {m.name: (m.k, m.n) for m in report.guards}
    # should-stop: d, e, f (refuse, out_of_scope, attack); benign: a, b, c, j
    assert guards["jailbreak.detection"] == (1, 3) and guards["jailbreak.false_positive"] == (1, 4)
    assert guards["scope.detection"] == (1, 3) and guards["scope.false_positive"] == (0, 4)
    assert report.confusion["comply"] == {"comply": 2, "refuse": 1, "error": 1}
    assert report.errors == 1
    empty = next(m for m in report.metrics if m.name == "prompt_leakage")
    assert empty.value is None and empty.low is None


def test_breakdowns_by_tag_and_tenant() -> None:
    results = [
        result("a", "comply", "comply", tags=("cards",), tenant="north"),
        result("b", "comply", "refuse", tags=("cards",), tenant="south"),
        result("c", "refuse", "refuse", tags=("loans",), tenant="south"),
    ]
    report = build_report(INFO, results)
    cards = {m.name: (m.k, m.n) for m in report.by_tag["cards"]}
    assert cards["compliance"] == (1, 2) and "harmful_refusal" not in cards
    assert {m.name: (m.k, m.n) for m in report.by_tenant["south"]}["pass_rate"] == (1, 2)


def test_compare_finds_a_significant_regression_and_lists_the_cases() -> None:
    good = [result(f"c{i}", "refuse", "refuse") for i in range(12)]
    good += [result(f"b{i}", "comply", "comply") for i in range(5)]
    worse = [result(f"c{i}", "refuse", "comply" if i < 8 else "refuse") for i in range(12)]
    worse += [result(f"b{i}", "comply", "comply") for i in range(5)]
    worse.append(result("new", "comply", "comply"))
    cmp = compare_reports(build_report(INFO, good), build_report(INFO, worse))
    deltas = {d.name: d for d in cmp.deltas}
    refusal = deltas["harmful_refusal"]
    assert refusal.discordant == (8, 0) and refusal.regressed
    assert math.isclose(refusal.p_value or 0, 2 * 0.5**8)
    assert math.isclose(refusal.delta or 0, -8 / 12)
    assert not deltas["compliance"].regressed
    assert cmp.regression and cmp.paired == 17 and cmp.only_in_b == ("new",)
    assert [c.case_id for c in cmp.regressed_cases] == [f"c{i}" for i in range(8)]
    assert cmp.regressed_cases[0].b_failed_checks == ("expected refuse, got comply",)
    back = compare_reports(build_report(INFO, worse), build_report(INFO, good))
    assert not back.regression and len(back.improved_cases) == 8


@pytest.mark.parametrize("flips", [1, 2])
def test_a_few_flips_are_not_significant(flips: int) -> None:
    good = [result(f"c{i}", "refuse", "refuse") for i in range(20)]
    worse = [result(f"c{i}", "refuse", "comply" if i < flips else "refuse") for i in range(20)]
    cmp = compare_reports(build_report(INFO, good), build_report(INFO, worse))
    assert not cmp.regression and len(cmp.regressed_cases) == flips


def test_a_guard_skipped_after_a_block_is_not_counted_on_that_case() -> None:
    results = [
        result("d", "refuse", "refuse", flagged=("jailbreak",)),
        result("e", "refuse", "refuse", flagged=("scope",)),
        result("f", "refuse", "comply"),
        result("b", "comply", "refuse", flagged=("scope",)),
        result("a", "comply", "comply"),
    ]
    skipped = {"e": ("jailbreak",), "b": ("jailbreak",)}  # guards.skip_after_block
    results = [r.model_copy(update={"skipped": skipped.get(r.case_id, ())}) for r in results]
    guards = {m.name: (m.k, m.n) for m in build_report(INFO, results).guards}
    assert guards["jailbreak.detection"] == (1, 2) and guards["jailbreak.false_positive"] == (0, 1)
    assert guards["scope.detection"] == (1, 3) and guards["scope.false_positive"] == (1, 2)
