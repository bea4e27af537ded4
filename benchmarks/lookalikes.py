"""The ``lookalikes`` guard: detection on spoofed requests, false positives on benign text
in Latin, Cyrillic, Greek and Armenian scripts.

Spoofed (positives), built from the payloads of the red team's nine blind seed files
(``benchmarks/data/bank_heldout_seeds*.yaml``), never read to tune the guard:

- ``all letters``: the red team's ``homoglyph`` obfuscation (every letter that has a
  Cyrillic look-alike swapped);
- ``one letter in a third of the words``: a lighter touch, one swapped letter in every third
  word that has one (seeded).

Benign (negatives):

- English: the chatterbot corpus (``tether datasets fetch chatterbot``), the labelled scope
  evaluation requests, and the user and assistant turns of the blind-written conversations
  of ``benchmarks/data/history_checks_*.jsonl``;
- bastioncorpus's benign texts (five languages);
- Cyrillic, Greek and Armenian: Faker's ru_RU, uk_UA, bg_BG, mk_MK, el_GR and hy_AM
  sentences, names and addresses (seeded), alone and with English product and brand words
  among them ("Купил iPhone в магазине Apple").

    python benchmarks/lookalikes.py [--min-words N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path

import yaml
from _stats import rate
from faker import Faker

from tether.datasets import load
from tether.guards import GuardContext, LookalikesGuard, LookalikesParams
from tether.redteam import OBFUSCATIONS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks/data"
_SWAP = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і"}
_BRANDS = ["iPhone", "Apple", "Google Pay", "Netflix", "Visa", "PayPal", "Wi-Fi", "Excel"]


def payloads() -> list[str]:
    found: list[str] = []
    for path in sorted(DATA.glob("bank_heldout_seeds*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        rows = data.get("seeds", data) if isinstance(data, dict) else data
        found += [r["payload"] for r in rows if isinstance(r, dict) and "payload" in r]
    return list(dict.fromkeys(found))


def light(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for i, word in enumerate(words):
        spots = [j for j, ch in enumerate(word) if ch in _SWAP]
        if spots and rng.random() < 1 / 3:
            j = rng.choice(spots)
            words[i] = word[:j] + _SWAP[word[j]] + word[j + 1 :]
    return " ".join(words)


def english() -> list[str]:
    texts = [r.text for r in load("chatterbot", fetch_missing=False)]
    scope = ROOT / "tests/guards/data/scope_eval.jsonl"
    texts += [json.loads(line)["text"] for line in scope.read_text(encoding="utf-8").splitlines()]
    for path in sorted(DATA.glob("history_checks_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts += [m["content"] for m in json.loads(line)["messages"]]
    return list(dict.fromkeys(texts))


def foreign(rng: random.Random) -> tuple[list[str], list[str]]:
    plain: list[str] = []
    for locale in ("ru_RU", "uk_UA", "bg_BG", "mk_MK", "el_GR", "hy_AM"):
        fake = Faker(locale)
        fake.seed_instance(7)
        for _ in range(60):
            plain += [fake.text(200), fake.name(), fake.address()]
    mixed = []
    for text in plain[::3]:
        words = text.split()
        for _ in range(2):
            words.insert(rng.randrange(len(words) + 1), rng.choice(_BRANDS))
        mixed.append(" ".join(words))
    return plain, mixed


def flagged(guard: LookalikesGuard, texts: list[str]) -> int:
    ctx = GuardContext(stage="input")

    async def run() -> int:
        return sum([(await guard.check(t, ctx)).flagged for t in texts])

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-words", type=int, default=LookalikesParams().min_words)
    args = parser.parse_args()
    guard = LookalikesGuard(LookalikesParams(min_words=args.min_words))
    rng = random.Random(11)
    seeds = payloads()
    plain, mixed = foreign(rng)
    bastion = [r.text for r in load("bastioncorpus", fetch_missing=False) if r.label == "benign"]
    rows = [
        ("spoofed: all letters (`homoglyph`)", [OBFUSCATIONS["homoglyph"](p) for p in seeds]),
        ("spoofed: one letter in a third of the words", [light(p, rng) for p in seeds]),
        ("benign: English (chatterbot, scope requests, conversations)", english()),
        ("benign: bastioncorpus, five languages", bastion),
        ("benign: Cyrillic, Greek, Armenian (Faker)", plain),
        ("benign: the same with English brand words among them", mixed),
    ]
    print(f"`lookalikes`, min_words {args.min_words}\n")
    print("| texts | flagged |\n|---|---|")
    for name, texts in rows:
        print(f"| {name} | {rate(flagged(guard, texts), len(texts))} |")


if __name__ == "__main__":
    main()
