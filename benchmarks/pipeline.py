"""Pipeline and first-guard latency, measured side by side in one run.

    .venv/bin/python benchmarks/pipeline.py [--rounds 300] [--embedded]

Prints a Markdown table: per-guard latency on a 1 KB message, the pipeline's own overhead
(a full guarded turn on an instant scripted model, minus the model call), and with
--embedded one real turn on SmolLM2. Medians and p99 over --rounds; run on one core with
`taskset -c 0` to match BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether import Guardrails, load_policy
from tether.embed import default_embedder
from tether.guards import GuardContext, build_guards
from tether.models import ScriptedModel

ROOT = Path(__file__).resolve().parents[1]


class FirstPieceProbe:
    """Wraps a model and notes when its stream yields the first piece (ms since the call)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = model.name
        self.first_ms = 0.0

    async def generate(self, messages: Any, **opts: Any) -> Any:
        return await self.model.generate(messages, **opts)

    async def stream(self, messages: Any, **opts: Any) -> AsyncIterator[str]:
        start = time.perf_counter()
        first = True
        async for piece in self.model.stream(messages, **opts):
            if first:
                self.first_ms = (time.perf_counter() - start) * 1000
                first = False
            yield piece


MESSAGE = (
    "Hello, I was charged twice for my groceries yesterday and I can't see the refund yet. "
    "My card ends in 4821 and I use the app on Android. Could you tell me how long a "
    "refund usually takes, whether I should cancel the card, and if there is a fee for a "
    "replacement? I also noticed the app logs me out every few minutes, which is annoying. "
) * 3
MESSAGE = MESSAGE[:1024]


async def timed(fn: Callable[[int], Awaitable[object]], rounds: int) -> list[float]:
    """Milliseconds per call; each call gets its round number so that inputs can differ
    (the adversarial guards cache results per text, and a benchmark of cache hits is no
    benchmark). The embedding cache is emptied before each call, outside the timing: the
    scope guard embeds only the clause of a long message that carries the request, which is
    the same in every round."""
    for i in range(min(20, rounds)):
        await fn(-i - 1)
    out = []
    for i in range(rounds):
        default_embedder().cache_clear()
        start = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100)[98] if len(samples) >= 100 else max(samples)
    return f"| {name} | {statistics.median(samples):.3f} | {p99:.3f} |"


async def main(rounds: int, embedded: bool) -> None:
    policy = load_policy(ROOT / "examples/bank/policy.yaml").for_tenant("northbank")
    guards = build_guards(policy)
    ctx = GuardContext(stage="input", metadata={"policy": policy})
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {rounds} rounds, 1 KB message",
        "",
        "| what | median ms | p99 ms |",
        "|---|---|---|",
    ]
    for bound in (*guards.input, *guards.output):
        samples = await timed(
            lambda i, b=bound: b.guard.check(f"#{i:06d} {MESSAGE[:-8]}", ctx), rounds
        )  # type: ignore[misc]
        lines.append(
            row(f"guard `{bound.config.key}` ({bound.config.guard}, {bound.stage})", samples)
        )

    model = ScriptedModel(["Refunds usually take 3-5 working days."], repeat_last=True)
    rails = Guardrails(load_policy(ROOT / "examples/bank/policy.yaml"), model=model)
    raw = await timed(lambda i: model.generate([{"role": "user", "content": MESSAGE}]), rounds)
    full = await timed(
        lambda i: rails.chat(f"turn {i:06d}: {MESSAGE[:-14]}", tenant="northbank"), rounds
    )
    lines.append(row("scripted model call alone", raw))
    lines.append(row("full guarded turn on the scripted model", full))
    overhead = statistics.median(full) - statistics.median(raw)
    lines.append(f"| **pipeline overhead (difference of medians)** | {overhead:.3f} | |")

    if embedded:
        rails = Guardrails(load_policy(ROOT / "examples/bank/policy.yaml"))
        turns = []
        tokens = []
        for _ in range(5):
            reply = await rails.chat("How do I reset my card PIN?", tenant="northbank")
            turns.append(reply.latency.total_ms)
            tokens.append(reply.usage.completion_tokens / (reply.latency.model_ms / 1000))
        lines.append(row("embedded SmolLM2 turn (5 turns, ≤160 tokens)", turns))
        lines.append(f"| embedded generation speed | {statistics.median(tokens):.0f} tokens/s | |")
        # Streaming: how long the hold-back window and the output guards keep the first piece
        # from the client, measured inside the same stream: from the moment the model yields
        # its first text to the moment the guarded stream releases its first piece.
        probe = FirstPieceProbe(rails.model_for(rails.resolve("northbank").policy))
        probed = Guardrails(load_policy(ROOT / "examples/bank/policy.yaml"), model=probe)
        delays = []
        for i in range(9):
            start = time.perf_counter()
            async for chunk in probed.stream(
                f"How do I reset my card PIN? ({i})", tenant="northbank"
            ):
                if chunk.text:
                    delays.append((time.perf_counter() - start) * 1000 - probe.first_ms)
                    break
        lines.append(row("hold-back + output guards before the first piece goes out", delays))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--embedded", action="store_true", help="also time real turns on SmolLM2")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.embedded))
