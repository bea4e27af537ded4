"""All rule-based input and output guards together, on a 1 KB message, on one core.

    taskset -c 0 .venv/bin/python benchmarks/guards.py [--rounds 500]

Each round runs every guard below on a fresh 1 KB message (ordinary support text with an
e-mail, a phone number and a link, so the detectors have work to do), through the same
concurrent runner the pipeline uses. Prints medians and p99 per guard and for the whole set.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from datetime import UTC, datetime

from tether.guards import BoundGuard, GuardContext, build_guards, run_guards
from tether.policy import GuardConfig, Guards, Policy

BASE = (
    "Hi, I was charged twice for my groceries yesterday and the refund hasn't arrived. You can "
    "reach me at jane.doe@example.com or +1 415 555 0132. The receipt is at "
    "https://northbank.example/receipts/8812. Could you tell me how long a refund usually takes, "
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


def message(i: int) -> str:
    text = f"[{i}] " + BASE * 3
    return text[:1024]


async def timed(guards: list[BoundGuard], stage: str, rounds: int) -> list[float]:
    ctx = GuardContext(
        stage="input" if stage == "input" else "output",
        metadata={"system_prompt": "You are Penny. " * 20, "canary": "tc-0123456789ab"},
    )
    for i in range(20):
        await run_guards(guards, message(-i - 1), ctx)
    out = []
    for i in range(rounds):
        start = time.perf_counter()
        await run_guards(guards, message(i), ctx)
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100)[98] if len(samples) >= 100 else max(samples)
    return f"| {name} | {statistics.median(samples):.3f} | {p99:.3f} |"


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
        "| guards | median ms | p99 ms |",
        "|---|---|---|",
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
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=500)
    asyncio.run(main(parser.parse_args().rounds))
