"""A model call made right after a guard's embedding pass, against one made after a pause.

After each call, numpy's OpenBLAS keeps its worker threads spinning for 2**OPENBLAS_THREAD_TIMEOUT
cycles (its default 28: about 0.1 s) in case another call comes; the embedded model's decode
threads that start meanwhile share the two cores with them. tether sets the variable to 20
(src/tether/_compute.py). This runs the same rounds twice, each in a fresh process: with
OpenBLAS's default (28) and with tether's (20). A round embeds a batch of eight short
messages, then calls the embedded model at once, then pauses 0.3 s and calls it with another
question; over the rounds each question is asked as often after a pass as after a pause.
The table gives the medians of each kind of call.

    python benchmarks/blas_spin.py [--rounds 12] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

QUESTIONS = (
    "How do I reset my card PIN?",
    "What is the interest rate on savings?",
    "Can I open a joint account?",
    "How do I report a lost card?",
    "What are your branch hours?",
    "How do I set up a standing order?",
)


def _child(rounds: int, max_tokens: int) -> None:
    import tether  # noqa: F401  (before numpy: it sets the BLAS threads' spin time)
    from tether.embed import default_embedder
    from tether.models import load_model

    embedder = default_embedder()
    model = load_model("embedded")
    words = "the bank account card transfer please help me with my question about loans".split()

    async def call(question: str) -> float:
        t0 = time.perf_counter()
        await model.generate(
            [
                {"role": "system", "content": "You are Penny, a bank's assistant."},
                {"role": "user", "content": question},
            ],
            max_tokens=max_tokens,
            temperature=0.0,
        )
        return time.perf_counter() - t0

    async def run() -> dict[str, list[float]]:
        await call("hello")  # loads the model
        times: dict[str, list[float]] = {"after_pass": [], "after_pause": []}
        for r in range(rounds):
            n = len(QUESTIONS)
            embedder.cache_clear()
            embedder.embed([" ".join(words[(r + i) % len(words) :] + words[:i]) for i in range(8)])
            times["after_pass"].append(await call(QUESTIONS[r % n]))
            await asyncio.sleep(0.3)
            times["after_pause"].append(await call(QUESTIONS[(r + n // 2) % n]))
        return times

    print(json.dumps(asyncio.run(run())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.rounds, args.max_tokens)
        return
    print(f"{args.rounds} rounds, ≤{args.max_tokens} tokens a call; {platform.machine()}, "
          f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")  # fmt: skip
    print("| OPENBLAS_THREAD_TIMEOUT | call after a pass (median s) | call after a pause | ratio |")
    print("|---|---|---|---|")
    for timeout in ("28", "20"):
        env = {**os.environ, "OPENBLAS_THREAD_TIMEOUT": timeout}
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--rounds", str(args.rounds),
             "--max-tokens", str(args.max_tokens)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        times = json.loads(out.stdout.strip().splitlines()[-1])
        after_pass = statistics.median(times["after_pass"])
        after_pause = statistics.median(times["after_pause"])
        label = f"{timeout} ({'OpenBLAS default' if timeout == '28' else 'tether'})"
        print(f"| {label} | {after_pass:.3f} | {after_pause:.3f} | "
              f"{after_pass / after_pause:.3f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
