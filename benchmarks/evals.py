"""How long the harness takes to evaluate and report 10,000 cases whose answers are cached.

The suite: the bank policy's derived suite, repeated with numbered variants up to N cases.
A first pass with a scripted model fills a fresh response cache; the timed passes re-run
the suite in new run folders (every answer from the cache), build the report and write
report.json and report.html. Medians of --repeat passes, per stack.

    python benchmarks/evals.py                     # 10,000 cases, prompt and full stacks
    python benchmarks/evals.py --cases 2000 --stacks full
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tether.evals import Case, Suite
from tether.evals._cache import ResponseCache
from tether.evals._files import write_reports
from tether.evals._generate import generate_suite
from tether.evals._metrics import build_report
from tether.evals._runner import plan_run, run_suite
from tether.messages import Message
from tether.models import ScriptedModel
from tether.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]


def answer(messages: list[Message]) -> str:
    text = messages[-1]["content"]
    return f"Happy to help with that. You asked: {text[:80]}. Here is what to do next."


def big_suite(n: int) -> Suite:
    policy = load_policy(ROOT / "examples/bank/policy.yaml")
    base = generate_suite(policy, tenant="northbank")
    cases: list[Case] = []
    i = 0
    while len(cases) < n:
        for case in base.cases:
            if len(cases) == n:
                break
            if case.input is None:
                continue
            cases.append(case.model_copy(update={"id": f"{case.id}#{i}",
                                                 "input": f"{case.input} (ref {i})"}))  # fmt: skip
        i += 1
    return Suite(name="bench-10k", cases=tuple(cases), sha=f"bench-{n}")


def one_pass(
    suite: Suite, stack: str, runs: Path, cache: ResponseCache
) -> tuple[float, float, int]:
    policy = load_policy(ROOT / "examples/bank/policy.yaml")
    model = ScriptedModel([answer], repeat_last=True)
    t0 = time.perf_counter()
    plan = plan_run(suite, policy, model=model, stack=stack, tenant="northbank",  # type: ignore[arg-type]
                    runs_dir=runs, cache=cache, fresh=True)  # fmt: skip
    results = asyncio.run(run_suite(suite, policy, plan=plan, model=model, cache=cache,
                                    concurrency=8))  # fmt: skip
    t1 = time.perf_counter()
    report = build_report(plan.info, list(results.values()))
    write_reports(report, plan.directory)
    t2 = time.perf_counter()
    # Not always 0 on the full stack: a guard that overran its time budget on the filling
    # pass (fail closed: no model call) may pass now and need an answer the cache lacks.
    return t1 - t0, t2 - t1, len(model.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--stacks", default="prompt,full")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    suite = big_suite(args.cases)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "cache.sqlite")
        for stack in args.stacks.split(","):
            policy = load_policy(ROOT / "examples/bank/policy.yaml")
            model = ScriptedModel([answer], repeat_last=True)
            plan = plan_run(suite, policy, model=model, stack=stack, tenant="northbank",  # type: ignore[arg-type]
                            runs_dir=Path(tmp) / "fill", cache=cache)  # fmt: skip
            asyncio.run(run_suite(suite, policy, plan=plan, model=model, cache=cache,
                                  concurrency=8))  # fmt: skip
            runs, reports, calls = [], [], []
            for r in range(args.repeat):
                run_s, report_s, n = one_pass(suite, stack, Path(tmp) / f"{stack}-{r}", cache)
                runs.append(run_s)
                reports.append(report_s)
                calls.append(n)
            total = [a + b for a, b in zip(runs, reports, strict=True)]
            print(f"{stack:6} {args.cases} cached cases: evaluate {statistics.median(runs):.2f} s"
                  f" + report {statistics.median(reports):.2f} s = "
                  f"{statistics.median(total):.2f} s (median of {args.repeat}; "
                  f"uncached model calls per pass: {calls})", flush=True)  # fmt: skip
        cache.close()


if __name__ == "__main__":
    main()
