"""Raw model vs. prompted model vs. the whole tether stack, on the embedded SmolLM2.

For each example policy: the policy-derived suite (`tether eval generate`) and the
hand-written held-out suite (`examples/<name>/evals/heldout.yaml`), each run on the three
stacks with the same seed; a Markdown table of the headline metrics with Wilson 95%
intervals. Answers are cached (``$TETHER_CACHE_DIR/evals``): a re-run re-scores every case (fresh run
folders) without calling the model again for the raw and prompted stacks.

    python benchmarks/alignment.py                 # both examples, ~40 min cold on 2 cores
    python benchmarks/alignment.py --only bank --limit 20
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from tether.evals import Metric, RunReport, Suite
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
            runs_dir: Path, cache: ResponseCache) -> RunReport:  # fmt: skip
    model = load_run_model(None, policy)
    plan = plan_run(suite, policy, model=model, stack=stack, tenant=tenant,  # type: ignore[arg-type]
                    runs_dir=runs_dir, cache=cache, fresh=True)  # fmt: skip
    t0 = time.perf_counter()
    results = asyncio.run(run_suite(suite, policy, plan=plan, model=model, cache=cache,
                                    concurrency=1))  # fmt: skip
    report = build_report(plan.info, list(results.values()))
    write_reports(report, plan.directory)
    print(f"  {suite.name:28} {stack:6} {len(results):4} cases  {time.perf_counter() - t0:6.0f} s"
          f"  → {plan.directory}", flush=True)  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXAMPLES))
    parser.add_argument("--limit", type=int, help="First N cases of each suite (a quick look).")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / ".tether/runs")
    args = parser.parse_args()
    cache = ResponseCache(default_cache_path())
    rows: list[str] = []
    for name, tenant in EXAMPLES.items():
        if args.only and name != args.only:
            continue
        policy = load_policy(ROOT / f"examples/{name}/policy.yaml")
        suites = [generate_suite(policy, tenant=tenant),
                  load_suite(ROOT / f"examples/{name}/evals/heldout.yaml")]  # fmt: skip
        for suite in suites:
            if args.limit:
                suite = suite.model_copy(update={"cases": suite.cases[: args.limit]})
            for stack in ("raw", "prompt", "full"):
                report = run_one(suite, policy, stack, tenant, args.runs_dir, cache)
                got = {m.name: m for m in report.metrics}
                rows.append(f"| {suite.name} | {stack} | "
                            + " | ".join(cell(got.get(c)) for c in COLUMNS) + " |")  # fmt: skip
    cache.close()
    print()
    print(f"Embedded SmolLM2-135M-Instruct, seed 0; {platform.machine()}, "
          f"{datetime.now(UTC):%Y-%m-%d}")  # fmt: skip
    print()
    print("| suite | stack | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
