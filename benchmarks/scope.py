"""Scope guard: accuracy on the labelled set and latency with cached topic embeddings.

    taskset -c 0 .venv/bin/python benchmarks/scope.py

The set is tests/guards/data/scope_eval.jsonl (bank and clinic example policies); each row is
classified once after the policy's topics are embedded, and timed.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path

from tether.guards import classify_scope, prepare_scope
from tether.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests/guards/data/scope_eval.jsonl"


def label(decision: object) -> str:
    category = getattr(decision, "category", None)
    if category is None:
        return "in_scope"
    return str(category).split(":")[0]


def main() -> None:
    policies = {
        name: load_policy(ROOT / f"examples/{name}/policy.yaml") for name in ("bank", "clinic")
    }
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        prepare_scope(policies[row["policy"]].for_tenant(row.get("tenant")))
    confusion: Counter[tuple[str, str]] = Counter()
    times = []
    for row in rows:
        policy = policies[row["policy"]].for_tenant(row.get("tenant"))
        start = time.perf_counter()
        found = classify_scope(policy, row["text"], previous=row.get("previous"))
        times.append((time.perf_counter() - start) * 1000)
        confusion[(row["label"].split(":")[0], label(found))] += 1
    classes = sorted({e for e, _ in confusion})
    print("| class | support | precision | recall |\n|---|---|---|---|")
    for c in classes:
        support = sum(n for (e, _), n in confusion.items() if e == c)
        predicted = sum(n for (_, p), n in confusion.items() if p == c)
        hit = confusion[(c, c)]
        print(f"| {c} | {support} | {hit / max(predicted, 1):.2f} | {hit / max(support, 1):.2f} |")
    correct = sum(n for (e, p), n in confusion.items() if e == p)
    print(
        f"\naccuracy over classes {correct / len(rows):.3f} ({correct}/{len(rows)}); "
        f"latency median {statistics.median(times):.1f} ms, p90 {statistics.quantiles(times, n=10)[8]:.1f} ms"
    )


if __name__ == "__main__":
    main()
