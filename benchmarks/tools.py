"""Tool-gate overhead per call (target: at most 1 ms), on the banking agent example.

    taskset -c 0 .venv/bin/python benchmarks/tools.py [--rounds 20000]

Each row times `ToolGate.check` alone: parsing the model's JSON arguments, validating them
against the tool's schema, the policy's argument rules, budgets, the side-effect decision and,
once untrusted content is in the conversation, the taint and exfiltration checks. Arguments
differ every round. Indexing an untrusted tool result (once per result, not per call) is timed
separately. Prints medians and p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.models import ToolCall
from tether.policy import load_policy
from tether.tools import GateState, Provenance, ToolGate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "agent"
DOCS = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted((EXAMPLE / "docs").glob("*.md")))
UNTRUSTED = (DOCS * 8)[:5000]  # a 5 KB retrieved document, injection included


def _bank() -> Any:
    spec = importlib.util.spec_from_file_location("bank_example", EXAMPLE / "bank.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bank_example"] = module
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[int], object], rounds: int) -> list[float]:
    for i in range(min(200, rounds)):
        fn(-i - 1)
    out = []
    for i in range(rounds):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100)[98] if len(samples) >= 100 else max(samples)
    return f"| {name} | {statistics.median(samples):.4f} | {p99:.4f} |"


def call(name: str, i: int, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{i}", name=name, arguments=json.dumps(arguments))


def main(rounds: int) -> None:
    bank = _bank()
    gate = ToolGate(load_policy(EXAMPLE / "policy.yaml"), bank.TOOLS)
    clean = gate.new_state()
    tainted = gate.new_state()
    tainted.provenance.add_trusted("You are Penny, Acme Bank's assistant. " * 20)
    tainted.provenance.add_untrusted(UNTRUSTED, "search_docs")
    body = (
        "Hello, here is the summary you asked for. Your balance is £{i:,}.50 and the last "
        "transactions were groceries, rent and a train ticket. Nothing else needs doing. "
    ) * 3

    cases: list[tuple[str, GateState, Callable[[int], ToolCall]]] = [
        ("read call, allowed (get_balance)", clean, lambda i: call("get_balance", i)),
        (
            "read call with a clamped argument, modify (list_transactions)",
            clean,
            lambda i: call("list_transactions", i, limit=100 + i % 50),
        ),
        (
            "destructive call with 2 argument rules, require_approval (transfer)",
            clean,
            lambda i: call("transfer", i, to_account=f"{10_000_000 + i:08d}", amount=10 + i % 90),
        ),
        (
            "schema violation, deny (transfer)",
            clean,
            lambda i: call("transfer", i, to_account=i, amount="lots"),
        ),
        ("unknown tool, deny", clean, lambda i: call(f"wire_{i % 7}", i)),
        (
            "tainted: destructive call, provenance checked (transfer)",
            tainted,
            lambda i: call("transfer", i, to_account=f"{20_000_000 + i:08d}", amount=5),
        ),
        (
            "tainted: outward call, 400-char body checked for exfiltration (send_email)",
            tainted,
            lambda i: call(
                "send_email", i, to=f"me{i}@home.example", subject="Summary", body=body.format(i=i)
            ),
        ),
    ]
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {rounds} rounds",
        "",
        "| ToolGate.check | median ms | p99 ms |",
        "|---|---|---|",
    ]
    worst = 0.0
    for name, state, make in cases:
        calls = [make(i) for i in range(-200, rounds)]
        samples = timed(lambda i, s=state, c=calls: gate.check(c[i + 200], s), rounds)
        worst = max(worst, statistics.median(samples))
        lines.append(row(name, samples))
    indexing = timed(
        lambda i: Provenance(8).add_untrusted(f"{i} {UNTRUSTED}", "search_docs"),
        max(rounds // 20, 50),
    )
    lines.append(row("indexing one 5 KB untrusted tool result (once per result)", indexing))
    verdict = "meets" if worst <= 1.0 else "MISSES"
    lines += ["", f"Slowest median gate check: {worst:.4f} ms ({verdict} the 1 ms target)."]
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20_000)
    main(parser.parse_args().rounds)
