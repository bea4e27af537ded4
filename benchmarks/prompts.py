"""How the compiled prompt and the embedded model's repeat penalty move SmolLM2's refusals.

The benign requests of the policy-derived suites (`tether eval generate`: cases expecting
`in_scope` or `comply`; bank for tenant northbank: 40, clinic: 97) are sent to the embedded
SmolLM2-135M with no guards, under a choice of compiled prompt:

- ``plain``: the prompt a model with no guards gets (`compile_prompt(policy)`): forbidden
  topics with the sentence to reply, and a catch-all reply for anything else;
- ``guarded``: the prompt the pipeline sends behind an acting scope guard
  (`compile_prompt(policy, guarded=True)`): forbidden topics listed without the sentences,
  no catch-all;

and a repeat penalty (1.0 = off, 1.15 = the embedded model's default). Counted per variant:
answers the refusal judge reads as refusals, and answers that loop (a sentence repeated so
that fewer than 60% of the sentences are distinct, among more than three). Seed 0,
temperature 0.2, 160 tokens, as the policies set; the answers go to ``--out``.

    python benchmarks/prompts.py                       # ~12 minutes on 2 cores
    python benchmarks/prompts.py --only bank --variants guarded@1.15,plain@1.15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from tether.evals._assertions import refusal_label
from tether.evals._generate import generate_suite
from tether.messages import Message
from tether.models import EmbeddedModel
from tether.policy import Policy, compile_prompt, load_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"bank": "northbank", "clinic": None}
DEFAULT_VARIANTS = "plain@1.0,plain@1.15,guarded@1.15"


def looping(text: str) -> bool:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    return len(sentences) > 3 and len(set(sentences)) < 0.6 * len(sentences)


def benign(policy: Policy, tenant: str | None) -> list[str]:
    suite = generate_suite(policy, tenant=tenant)
    return [
        c.user_turns[0]
        for c in suite.cases
        if c.expect in ("in_scope", "comply") and len(c.user_turns) == 1 and c.messages is None
    ]


def save(path: Path, answers: list[dict[str, str]]) -> Path:
    path.write_text(json.dumps(answers, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


async def run(only: str | None, variants: list[tuple[str, float]], out: Path) -> None:
    print(f"Embedded SmolLM2-135M-Instruct, seed 0; {platform.machine()}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")  # fmt: skip
    print("| policy | prompt | repeat penalty | refused | looping |")
    print("|---|---|---|---|---|")
    models: dict[float, EmbeddedModel] = {}
    for name, tenant in EXAMPLES.items():
        if only and name != only:
            continue
        policy = load_policy(ROOT / "examples" / name / "policy.yaml")
        resolved = policy.for_tenant(tenant)
        requests = benign(policy, tenant)
        for prompt_kind, penalty in variants:
            model = models.setdefault(penalty, EmbeddedModel(repeat_penalty=penalty))
            compiled = compile_prompt(resolved, guarded=prompt_kind == "guarded")
            answers: list[dict[str, str]] = []
            t0 = time.perf_counter()
            for text in requests:
                messages: list[Message] = [
                    *compiled.messages(),
                    {"role": "user", "content": text},
                ]
                reply = await model.generate(
                    messages,
                    temperature=resolved.model.temperature,
                    max_tokens=resolved.model.max_tokens,
                    seed=0,
                )
                answers.append(
                    {"request": text, "label": refusal_label(reply.text), "answer": reply.text}
                )
            refused = sum(a["label"] == "refusal" for a in answers)
            loops = sum(looping(str(a["answer"])) for a in answers)
            n = len(answers)
            print(f"| {name} | {prompt_kind} | {penalty:g} | {refused}/{n} | {loops}/{n} |",
                  flush=True)  # fmt: skip
            dump = save(out / f"{name}-{prompt_kind}-{penalty:g}.json", answers)
            print(f"<!-- {dump}: {time.perf_counter() - t0:.0f} s -->", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(EXAMPLES))
    parser.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help="comma-separated PROMPT@PENALTY, PROMPT one of plain, guarded",
    )
    parser.add_argument("--out", type=Path, default=ROOT / ".tether" / "bench-prompts")
    args = parser.parse_args()
    variants = []
    for item in args.variants.split(","):
        kind, _, penalty = item.partition("@")
        if kind not in ("plain", "guarded") or not penalty:
            parser.error(f"variant {item!r}: use plain@1.15 or guarded@1.0")
        variants.append((kind, float(penalty)))
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.only, variants, args.out))


if __name__ == "__main__":
    main()
