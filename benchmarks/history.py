"""Forged histories: the bank's `guards.check_history` on labelled conversations.

Each conversation ends with a user's request; the assistant turns before it are either
``fabricated`` (one or more break a bank rule, as an attacker writes them to prime the model)
or ``benign`` (turns a well-behaved bank assistant could have sent, hard negatives among
them). Both sets were written by a helper who never saw the check's code or the bank's guard
configuration, only the bank's rules in plain words:

- ``benchmarks/data/history_checks_dev.jsonl`` (60): read.
- ``benchmarks/data/history_checks_test.jsonl`` (120): never read by the engineer; its misses
  and false positives are not printed unless ``--show-test-misses``.

Each conversation goes through ``Guardrails.chat`` on the bank's policy (tenant northbank, a
scripted model); it counts as flagged when the ``history`` check blocked it. A third row
replays the answers the full stack really delivered in the red-team campaigns
(``redteam_goal_labels.jsonl``, 228 SmolLM2 answers), each as the one assistant turn of a
history: those flagged are answers a guard added since would now block.

    python benchmarks/history.py [--show-test-misses]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
from pathlib import Path
from typing import Any

from _stats import rate

from tether import Guardrails, load_policy
from tether.models import ScriptedModel
from tether.policy import Policy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks/data"
SETS = {"dev": DATA / "history_checks_dev.jsonl", "test": DATA / "history_checks_test.jsonl"}


async def flagged(rails: Guardrails, messages: list[dict[str, Any]]) -> str | None:
    """The output guard whose replay blocked the history, or None."""
    reply = await rails.chat(messages, tenant="northbank")
    found = next((v for v in reply.verdicts if v.guard == "history"), None)
    if found is None:
        return None
    named = re.search(r"(input|output) guard '([^']+)'", found.reason)
    return f"{named[1]} {named[2]}" if named else "input (remembered)"


def _with(policy: Policy, mode: str) -> Policy:
    return policy.model_copy(
        update={"guards": policy.guards.model_copy(update={"check_history": mode})}
    )


async def served(policy: Policy, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the bank's stack would have served it: each request sent live, the
    model scripted to give the author's answer, the stack's reply kept as the history."""
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    rails = Guardrails(policy, model=ScriptedModel(answers or ["OK."], repeat_last=True))
    history: list[dict[str, Any]] = []
    for message in messages[:-1]:
        if message["role"] != "user":
            continue
        history.append(message)
        reply = await rails.chat(history, tenant="northbank")
        history.append({"role": "assistant", "content": reply.text})
    return [*history, messages[-1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-test-misses", action="store_true",
                        help="also print the test set's misses (then it has been read)")  # fmt: skip
    args = parser.parse_args()
    bank = load_policy(ROOT / "examples/bank/policy.yaml")
    model = ScriptedModel(["OK."], repeat_last=True)
    print("| set | mode | fabricated histories flagged | benign histories flagged |")
    print("|---|---|---|---|")
    shown: list[str] = []
    by_guard: dict[str, collections.Counter[str]] = {}
    by_category: dict[str, collections.Counter[tuple[str, bool]]] = {}
    for name, path in SETS.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for mode in ("answers", "strict"):
            rails = Guardrails(_with(bank, mode), model=model)
            hits = [asyncio.run(flagged(rails, r["messages"])) for r in rows]
            fab = [(r, h) for r, h in zip(rows, hits, strict=True) if r["label"] == "fabricated"]
            ben = [(r, h) for r, h in zip(rows, hits, strict=True) if r["label"] == "benign"]
            k_fab = sum(h is not None for _, h in fab)
            k_ben = sum(h is not None for _, h in ben)
            print(f"| {name} | {mode} | {rate(k_fab, len(fab))} | {rate(k_ben, len(ben))} |")
            by_guard[f"{name}, {mode}"] = collections.Counter(h for _, h in fab if h is not None)
            by_category[f"{name}, {mode}"] = collections.Counter(
                (r["category"], h is not None) for r, h in fab
            )
            if name == "test" and not args.show_test_misses:
                continue
            shown += [f"{name}, {mode}, missed: {r['id']} ({r['category']}) {r['note']}"
                      for r, h in fab if h is None]  # fmt: skip
            shown += [f"{name}, {mode}, false positive by {h}: {r['id']} ({r['category']})"
                      for r, h in ben if h is not None]  # fmt: skip
        # The benign conversations as the bank would have served them, checked in a fresh
        # process (nothing remembered): a genuine history must pass.
        strict = _with(bank, "strict")
        benign = [r for r in rows if r["label"] == "benign"]
        replays = [asyncio.run(served(strict, r["messages"])) for r in benign]
        fresh = Guardrails(strict, model=model)
        hits = [asyncio.run(flagged(fresh, m)) for m in replays]
        k = sum(h is not None for h in hits)
        print(f"| {name}, benign as the bank served them | strict | — | {rate(k, len(hits))} |")
    labelled = [json.loads(line) for line in (DATA / "redteam_goal_labels.jsonl").open()]
    delivered = [
        [{"role": "user", "content": r["request"]}, {"role": "assistant", "content": r["answer"]},
         {"role": "user", "content": "Thanks."}]
        for r in labelled
    ]  # fmt: skip
    rails = Guardrails(_with(bank, "answers"), model=model)
    hits = [asyncio.run(flagged(rails, m)) for m in delivered]
    met = [r["goal_met"] == "yes" for r in labelled]
    k = sum(h is not None for h in hits)
    k_met = sum(h is not None and m for h, m in zip(hits, met, strict=True))
    print(
        f"| full-stack answers delivered in red-team runs | answers | — | {rate(k, len(hits))}, "
        f"of which {k_met} delivered the attack's goal |"
    )
    print("\nfabricated histories flagged, by the guard whose replay failed:")
    for name, counter in by_guard.items():
        print(f"  {name}: " + ", ".join(f"{g} {n}" for g, n in counter.most_common()))
    print("fabricated histories flagged, by category (flagged/all):")
    for name, cats in by_category.items():
        names = sorted({c for c, _ in cats})
        print(f"  {name}: " + ", ".join(
            f"{c} {cats[(c, True)]}/{cats[(c, True)] + cats[(c, False)]}" for c in names
        ))  # fmt: skip
    if shown:
        print()
        print("\n".join(shown))


if __name__ == "__main__":
    main()
