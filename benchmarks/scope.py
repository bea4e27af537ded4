"""Scope guard: accuracy on short and long messages, and latency per 1 KB message, for the
two ways of reading a long message (``long_messages``: 'windows' and 'select').

    taskset -c 0 .venv/bin/python benchmarks/scope.py [--rounds 60]

Short: tests/guards/data/scope_eval.jsonl (bank and clinic example policies), as labelled.
Long: the same requests wrapped in about 1 KB of neutral chatter at the start, middle or end
(benchmarks/scope_long.py builds them; rows are split by a hash into a dev half, on which
the clause selection was designed, and a held-out test half).

Latency: topic embeddings built beforehand (as a running guard has them), but no message
vector cached: the embedder's cache and the text normalization memo are cleared before every
timed call, and the two methods alternate on the same message so that machine load falls
on both alike. Pin to one core with taskset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tether.embed import default_embedder
from tether.guards import ScopeParams, classify_scope, prepare_scope
from tether.guards._normalize import _normalize_memo
from tether.policy import Policy, load_policy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scope_long import POSITIONS, SKIPPED_KINDS, long_rows, split_of

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests/guards/data/scope_eval.jsonl"
METHODS = {
    "windows": ScopeParams(long_messages="windows"),
    "select": ScopeParams(long_messages="select"),
}
CLASSES = ("in_scope", "forbidden", "out_of_scope")
Row = dict[str, str]


def policies() -> dict[str, Policy]:
    return {name: load_policy(ROOT / f"examples/{name}/policy.yaml") for name in ("bank", "clinic")}


def coarse(label: str | None) -> str:
    return (label or "in_scope").split(":")[0]


def classify(rows: Iterable[Row], params: ScopeParams, found: dict[str, Policy]) -> list[str]:
    """The full label (``forbidden:<topic>`` included) of each row."""
    out = []
    for row in rows:
        policy = found[row["policy"]].for_tenant(row.get("tenant"))
        decision = classify_scope(policy, row["text"], previous=row.get("previous"), params=params)
        out.append(decision.category or "in_scope")
    return out


def summary(rows: list[Row], predicted: list[str]) -> dict[str, float]:
    """Accuracy (exact label, forbidden topic included) and per-class precision/recall."""
    pairs = [(r["label"], p) for r, p in zip(rows, predicted, strict=True)]
    out = {"n": float(len(pairs)), "acc": sum(e == p for e, p in pairs) / max(len(pairs), 1)}
    confusion = Counter((coarse(e), coarse(p)) for e, p in pairs)
    for c in CLASSES:
        support = sum(n for (e, _), n in confusion.items() if e == c)
        predicted_c = sum(n for (_, p), n in confusion.items() if p == c)
        out[f"{c}_p"] = confusion[(c, c)] / max(predicted_c, 1)
        out[f"{c}_r"] = confusion[(c, c)] / max(support, 1)
    return out


def accuracy_table(found: dict[str, Policy]) -> None:
    short = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    long = long_rows()
    sets: list[tuple[str, list[Row]]] = [("short", short)]
    # The wrapped requests alone: what the long rows of each half would score undiluted.
    for split in ("dev", "test"):
        alone = [
            r for r in short if r["kind"] not in SKIPPED_KINDS and split_of(r["text"]) == split
        ]
        sets.append((f"short {split} (requests of long {split})", alone))
    for split in ("dev", "test", "all"):
        chosen = [r for r in long if split == "all" or r["split"] == split]
        sets += [
            (f"long {split} {p}", [r for r in chosen if r["position"] == p]) for p in POSITIONS
        ]
        sets.append((f"long {split} all", chosen))
    predictions = {m: classify(short + long, p, found) for m, p in METHODS.items()}
    where = {id(r): i for i, r in enumerate(short + long)}
    windows, select = (predictions[m][: len(short)] for m in ("windows", "select"))
    same = sum(a == b for a, b in zip(windows, select, strict=True))
    print(f"short messages: {same}/{len(short)} verdicts identical between the two methods\n")
    header = "in_scope P/R | forbidden P/R | out_of_scope P/R"
    print(f"| set | n | method | accuracy | {header} |\n|---|---|---|---|---|---|---|")
    for name, rows in sets:
        for method in METHODS:
            s = summary(rows, [predictions[method][where[id(r)]] for r in rows])
            per_class = " | ".join(f"{s[f'{c}_p']:.2f}/{s[f'{c}_r']:.2f}" for c in CLASSES)
            print(f"| {name} | {len(rows)} | {method} | {s['acc']:.3f} | {per_class} |")


def latency(found: dict[str, Policy], rounds: int) -> None:
    embedder = default_embedder()
    rows = long_rows()
    step = max(len(rows) // rounds, 1)
    sample = rows[::step][:rounds]
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for k, row in enumerate(sample):
        policy = found[row["policy"]].for_tenant(row.get("tenant"))
        order = list(METHODS) if k % 2 == 0 else list(reversed(METHODS))
        for method in order:
            embedder.cache_clear()
            _normalize_memo.cache_clear()
            start = time.perf_counter()
            classify_scope(policy, row["text"], params=METHODS[method])
            times[method].append((time.perf_counter() - start) * 1000)
    chars = statistics.median(len(r["text"]) for r in sample)
    print(f"\nlatency per message ({len(sample)} long messages, median {chars:.0f} characters; ")
    print(
        f"CPUs allowed: {sorted(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.2f})"
    )
    print("| method | median ms | p90 ms |\n|---|---|---|")
    for method, ts in times.items():
        p90 = statistics.quantiles(ts, n=10)[8]
        print(f"| {method} | {statistics.median(ts):.1f} | {p90:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="long messages timed per method")
    args = parser.parse_args()
    found = policies()
    for line in EVAL.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        prepare_scope(found[row["policy"]].for_tenant(row.get("tenant")))
    accuracy_table(found)
    latency(found, args.rounds)


if __name__ == "__main__":
    main()
