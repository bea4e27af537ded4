"""All rule-based input and output guards together, on a 1 KB message, on one core.

    taskset -c 0 .venv/bin/python benchmarks/guards.py [--rounds 500]

Each round runs every guard below on a fresh 1 KB message (ordinary support text with an
e-mail, a phone number and a link in each of its three paragraphs, so the detectors have
work to do), through the same concurrent runner the pipeline uses. No two messages of a run
are alike, nor two values in one: the guards keep the last few texts' normalized forms, and
no cache may flatter a row (only the links' host, the bank's own, recurs, as it does in real
answers). Prints medians and p99 of wall-clock time per guard and for the whole set, and the
median CPU time of the thread (what the guards cost where other processes share the core).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import platform
import statistics
import time
from datetime import UTC, datetime

from tether.guards import BoundGuard, GuardContext, build_guards, run_guards
from tether.policy import GuardConfig, Guards, Policy

BASE = (
    "Hi, I was charged twice for my groceries yesterday and the refund hasn't arrived. You can "
    "reach me at jane.{name}@example.com or +1 415 555 {n:04d}. The receipt is at "
    "https://northbank.example/receipts/{n:04d}. Could you tell me how long a refund usually takes, "
    "whether I should cancel the card, and if a replacement costs anything? The app also logs me "
    "out every few minutes, which is annoying, and the statement page shows the wrong month. "
)
INPUT = [
    GuardConfig(guard="length"),
    GuardConfig(guard="invisible_text"),
    GuardConfig(
        guard="deny_list",
        params={"terms": ["bitcoin", "crypto", "stock tips"], "patterns": [r"\bwire \d+ to\b"]},
    ),
    GuardConfig(guard="pii", params={"mode": "pseudonymize"}, action="redact"),
    GuardConfig(guard="secrets"),
    GuardConfig(guard="links", params={"allow_domains": ["northbank.example"]}),
    GuardConfig(
        guard="banned_phrases",
        params={"competitors": ["southbank", "westbank"], "phrases": ["guaranteed returns"]},
    ),
]
OUTPUT = [
    GuardConfig(
        guard="pii",
        params={"entities": ["CREDIT_CARD", "IBAN", "US_SSN"], "mode": "mask"},
        action="redact",
    ),
    GuardConfig(guard="secrets"),
    GuardConfig(guard="links", params={"allow_domains": ["northbank.example"]}),
    GuardConfig(guard="banned_phrases", params={"competitors": ["southbank"]}),
    GuardConfig(
        guard="brand_voice", params={"max_sentences": 12, "no_emoji": True}, action="reask"
    ),
    GuardConfig(guard="prompt_leak"),
]


_made = itertools.count()


def message() -> str:
    """A 1 KB message no earlier call returned: three paragraphs, each with its own e-mail
    address, phone number and receipt link."""
    i = next(_made)
    paragraphs = "".join(
        BASE.format(n=(3 * i + k) % 10_000, name=_letters(3 * i + k)) for k in range(3)
    )
    return f"[{i}] {paragraphs}"[:1024]


def _letters(n: int) -> str:
    """A local part of letters only ("doebaab"): digits beside letters would read as
    leetspeak, which the original message, one address repeated, did not have."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
        if not n:
            return "doe" + out


async def timed(
    guards: list[BoundGuard], stage: str, rounds: int
) -> tuple[list[float], list[float]]:
    """Wall-clock and thread CPU time per round, in ms."""
    ctx = GuardContext(
        stage="input" if stage == "input" else "output",
        metadata={"system_prompt": "You are Penny. " * 20, "canary": "tc-0123456789ab"},
    )
    for _ in range(20):
        await run_guards(guards, message(), ctx)
    wall, cpu = [], []
    for _ in range(rounds):
        text = message()
        start, start_cpu = time.perf_counter(), time.thread_time()
        await run_guards(guards, text, ctx)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return wall, cpu


def row(name: str, samples: tuple[list[float], list[float]]) -> str:
    wall, cpu = samples
    p99 = statistics.quantiles(wall, n=100)[98] if len(wall) >= 100 else max(wall)
    return f"| {name} | {statistics.median(wall):.3f} | {p99:.3f} | {statistics.median(cpu):.3f} |"


async def main(rounds: int) -> None:
    built = build_guards(
        Policy(
            name="bench",
            identity={"purpose": "bench"},
            guards=Guards(input=tuple(INPUT), output=tuple(OUTPUT)),
        )
    )  # type: ignore[arg-type]
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}, "
        f"{rounds} rounds, 1 KB messages",
        "",
        "| guards | median ms | p99 ms | median CPU ms |",
        "|---|---|---|---|",
    ]
    for stage, guards in (("input", list(built.input)), ("output", list(built.output))):
        for bound in guards:
            lines.append(
                row(f"{stage}: `{bound.config.guard}`", await timed([bound], stage, rounds))
            )
    everything_in = await timed(list(built.input), "input", rounds)
    everything_out = await timed(list(built.output), "output", rounds)
    lines.append(row(f"**all {len(built.input)} input guards, concurrently**", everything_in))
    lines.append(row(f"**all {len(built.output)} output guards, concurrently**", everything_out))
    both = (statistics.median(everything_in[0]) + statistics.median(everything_out[0]),
            statistics.median(everything_in[1]) + statistics.median(everything_out[1]))  # fmt: skip
    lines.append(f"| **input + output (sum of the medians)** | {both[0]:.3f} | | {both[1]:.3f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=500)
    asyncio.run(main(parser.parse_args().rounds))
