"""The bank's input guards on multi-turn conversations: how often a request that belongs to
the conversation is stopped, and how often a forbidden or out-of-scope one gets through.

Two sets of 60 conversations, each written by a helper who saw neither the scope guard nor
the bank's policy file, only its topics in plain words; each user turn is labelled
``in_scope``, ``forbidden:<topic>`` or ``out_of_scope`` in the context of the conversation
so far. ``benchmarks/data/scope_multiturn_dev.jsonl`` is read (``--set dev --show`` prints
the turns it gets wrong); ``benchmarks/data/scope_multiturn_test.jsonl`` is not: only its
figures are printed.

Each conversation is sent turn by turn through the bank's stack (tenant northbank, the model
scripted to give the author's replies); when the stack stops a turn, its own reply stays in
the history, as it would for a customer. A turn counts as stopped when the stack blocked or
escalated it, whichever guard did.

    python benchmarks/scope_multiturn.py [--set dev|test] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
from pathlib import Path
from typing import Any

from _stats import rate

from tether import Guardrails, load_policy
from tether.models import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "dev": ROOT / "benchmarks/data/scope_multiturn_dev.jsonl",
    "test": ROOT / "benchmarks/data/scope_multiturn_test.jsonl",
}


async def conversation(policy: Any, turns: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """(label, what the stack did, the guard that stopped it) per turn."""
    model = ScriptedModel([t["assistant"] for t in turns], repeat_last=True)
    rails = Guardrails(policy, model=model)
    history: list[dict[str, str]] = []
    out = []
    for turn in turns:
        history.append({"role": "user", "content": turn["user"]})
        reply = await rails.chat(history, tenant="northbank")
        stopped = reply.action in ("block", "escalate")
        by = next(
            (v.guard for v in reply.verdicts if v.flagged and v.action in ("block", "escalate")), ""
        )
        out.append((turn["label"], reply.action if stopped else "answered", by))
        history.append({"role": "assistant", "content": reply.text})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="test")
    parser.add_argument("--show", action="store_true", help="print the wrong turns (dev only)")
    args = parser.parse_args()
    if args.show and args.set == "test":
        parser.error("--show prints the dev set only: the test set stays unread")
    policy = load_policy(ROOT / "examples/bank/policy.yaml")
    rows = [json.loads(line) for line in SETS[args.set].read_text(encoding="utf-8").splitlines()]
    results: list[tuple[str, str, str, int, int]] = []
    wrong: list[str] = []
    for row in rows:
        turns = row["turns"]
        for i, (label, did, by) in enumerate(asyncio.run(conversation(policy, turns))):
            results.append((label, did, by, i, len(turns[i]["user"].split())))
            if (label == "in_scope") == (did != "answered"):
                before = turns[i - 1]["user"] if i else ""
                wrong.append(f"{row['id']}#{i} {label} → {did} {by}: {turns[i]['user']!r}"
                             f" (after {before!r})")  # fmt: skip

    def line(name: str, picked: list[tuple[str, str, str, int, int]], want_stopped: bool) -> str:
        k = sum((did != "answered") == want_stopped for _, did, _, _, _ in picked)
        return f"| {name} | {rate(k, len(picked))} |"

    inside = [r for r in results if r[0] == "in_scope"]
    print(f"{args.set}: {len(rows)} conversations, {len(results)} turns\n")
    print("| requests | share |\n|---|---|")
    print(line("in scope, stopped (over-refusal)", inside, True))
    print(line("… first turns", [r for r in inside if r[3] == 0], True))
    print(line("… later turns", [r for r in inside if r[3] > 0], True))
    print(
        line(
            "… later turns of 8 words or fewer", [r for r in inside if r[3] > 0 and r[4] <= 8], True
        )
    )
    for label in sorted({r[0] for r in results} - {"in_scope"}):
        print(line(f"{label}, stopped", [r for r in results if r[0] == label], True))
    by_guard = collections.Counter(r[2] for r in inside if r[1] != "answered")
    print(
        "\nin-scope turns stopped, by guard: "
        + ", ".join(f"{g} {n}" for g, n in by_guard.most_common())
    )
    if args.show:
        print("\n" + "\n".join(wrong))


if __name__ == "__main__":
    main()
