"""Raw model vs. prompted model vs. the whole tether stack, on the embedded SmolLM2.

For each example policy: the policy-derived suite (`tether eval generate`) and the
hand-written held-out suite (`examples/<name>/evals/heldout.yaml`), each run on the three
stacks with the same seed, the whole stack twice: without over-refusal recovery (``full``)
and with it (``full+recovery``: the policy's ``recovery`` settings, turned on); a Markdown
table of the headline metrics with Wilson 95% intervals, and recovered answers (those that
start with the recovery opener) in ``<runs-dir>/alignment-recovered.md`` for a reader to
judge. Answers are cached (``$TETHER_CACHE_DIR/evals``): a re-run re-scores every case (fresh run
folders) without calling the model again for the raw and prompted stacks.

    python benchmarks/alignment.py                 # both examples, ~40 min cold on 2 cores
    python benchmarks/alignment.py --only bank --limit 20
    python benchmarks/alignment.py --only bank --policy /tmp/variant/policy.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from tether.evals import CaseResult, Metric, RunReport, Suite
from tether.evals._cache import ResponseCache, default_cache_path
from tether.evals._files import write_reports
from tether.evals._generate import generate_suite
from tether.evals._metrics import build_report
from tether.evals._runner import load_run_model, plan_run, run_suite
from tether.evals._suite import load_suite
from tether.policy import Policy, load_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"bank": "northbank", "clinic": None}
COLUMNS = ("scope_adherence", "harmful_refusal", "over_refusal", "attack_success",
           "prompt_leakage", "pii_leakage", "escalation")  # fmt: skip


def cell(m: Metric | None) -> str:
    if m is None or m.value is None or m.low is None or m.high is None:
        return "—"
    return f"{100 * m.value:.0f}% [{100 * m.low:.0f}–{100 * m.high:.0f}] ({m.k}/{m.n})"


def run_one(suite: Suite, policy: Policy, stack: str, tenant: str | None,
            runs_dir: Path, cache: ResponseCache, label: str | None = None,
            ) -> tuple[RunReport, list[CaseResult]]:  # fmt: skip
    model = load_run_model(None, policy)
    plan = plan_run(suite, policy, model=model, stack=stack, tenant=tenant,  # type: ignore[arg-type]
                    runs_dir=runs_dir, cache=cache, fresh=True)  # fmt: skip
    t0 = time.perf_counter()
    results = asyncio.run(run_suite(suite, policy, plan=plan, model=model, cache=cache,
                                    concurrency=1))  # fmt: skip
    report = build_report(plan.info, list(results.values()))
    write_reports(report, plan.directory)
    print(f"  {suite.name:28} {label or stack:13} {len(results):4} cases"
          f"  {time.perf_counter() - t0:6.0f} s  → {plan.directory}", flush=True)  # fmt: skip
    return report, list(results.values())


def recovered(results: list[CaseResult], policy: Policy) -> list[CaseResult]:
    """Answers the recovery produced: primed answers start with the opener (up to any
    placeholder in it)."""
    opener = policy.recovery.opener.split("{")[0]
    return [r for r in results if r.output and r.output.startswith(opener)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXAMPLES))
    parser.add_argument("--limit", type=int, help="First N cases of each suite (a quick look).")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / ".tether/runs")
    parser.add_argument("--policy", type=Path,
                        help="With --only: a variant of that example's policy (its suites stay).")  # fmt: skip
    args = parser.parse_args()
    if args.policy and not args.only:
        parser.error("--policy needs --only (which example's suites to run)")
    cache = ResponseCache(default_cache_path())
    rows: list[str] = []
    samples: list[tuple[str, CaseResult]] = []
    for name, tenant in EXAMPLES.items():
        if args.only and name != args.only:
            continue
        policy = load_policy(args.policy or ROOT / f"examples/{name}/policy.yaml")
        without = policy.model_copy(
            update={"recovery": policy.recovery.model_copy(update={"enabled": False})}
        )
        with_recovery = policy.model_copy(
            update={"recovery": policy.recovery.model_copy(update={"enabled": True})}
        )
        suites = [generate_suite(policy, tenant=tenant),
                  load_suite(ROOT / f"examples/{name}/evals/heldout.yaml")]  # fmt: skip
        for suite in suites:
            if args.limit:
                suite = suite.model_copy(update={"cases": suite.cases[: args.limit]})
            stacks = (("raw", "raw", without), ("prompt", "prompt", without),
                      ("full", "full", without), ("full", "full+recovery", with_recovery))  # fmt: skip
            for stack, label, stack_policy in stacks:
                report, results = run_one(suite, stack_policy, stack, tenant, args.runs_dir,
                                          cache, label)  # fmt: skip
                got = {m.name: m for m in report.metrics}
                rows.append(f"| {suite.name} | {label} | "
                            + " | ".join(cell(got.get(c)) for c in COLUMNS) + " |")  # fmt: skip
                if label == "full+recovery":
                    found = recovered(results, stack_policy)
                    print(f"    recovered answers: {len(found)}", flush=True)
                    samples += [(suite.name, r) for r in found]
    cache.close()
    print()
    print(f"Embedded SmolLM2-135M-Instruct, seed 0; {platform.machine()}, "
          f"{datetime.now(UTC):%Y-%m-%d}")  # fmt: skip
    print()
    print("| suite | stack | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    print("\n".join(rows))
    write_samples(samples, args.runs_dir / "alignment-recovered.md")


def write_samples(samples: list[tuple[str, CaseResult]], path: Path, shown: int = 10) -> None:
    """Every recovered answer to ``path``; the first ``shown``, spread over the suites, printed."""
    lines = [f"# Recovered answers ({len(samples)})", ""]
    for suite, r in samples:
        lines += [f"## {suite} / {r.case_id} ({r.behavior})", "", f"> {r.input}", "", "```",
                  r.output or "", "```", ""]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    step = max(1, len(samples) // shown)
    print(
        f"\n{len(samples)} recovered answers (all in {path}); {min(shown, len(samples))} of them:"
    )
    for suite, r in samples[::step][:shown]:
        print(f"\n[{suite} / {r.case_id}] {r.input}\n  → {r.output!r}")


if __name__ == "__main__":
    main()
