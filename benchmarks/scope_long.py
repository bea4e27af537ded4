"""Long-message scope evaluation: each labelled request of tests/guards/data/scope_eval.jsonl
wrapped in about 1 KB of neutral context, at the start, in the middle or at the end.

    .venv/bin/python benchmarks/scope_long.py          # writes tests/guards/data/scope_long.jsonl

The context is everyday chatter written for this file (background about the writer, small
talk, pleasantries): about no topic of the bank or clinic policies and asking for nothing.
It was written before the scope guard's long-message selection was designed, and nothing in
that selection was tuned on it beyond the dev half. A few filler sentences are rhetorical
questions or start with "I need", as real messages do, so that a question mark alone does
not find the request.

Rows are split into a dev and a test half by a hash of the request text (``split``), so the
three positions of one request fall in the same half. Small talk ("Hi there!") and short
follow-ups are left out: wrapped in a kilobyte of chatter they are no longer small talk or
follow-ups, and their label would be a guess.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

__all__ = ["FILLER", "POSITIONS", "SKIPPED_KINDS", "TARGET_CHARS", "long_rows", "split_of", "wrap"]

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "tests/guards/data/scope_eval.jsonl"
OUT = ROOT / "tests/guards/data/scope_long.jsonl"
TARGET_CHARS = 1000
POSITIONS = ("start", "middle", "end")
SEED = 20240611
SKIPPED_KINDS = frozenset({"smalltalk", "follow_up"})

FILLER = (
    "I hope this message finds you well and that your week is going smoothly.",
    "Sorry in advance for the long message, I tend to ramble a bit when I write.",
    "It has been a busy few weeks at home with the kids back at school.",
    "My daughter has just started at the secondary school down the road and she loves it.",
    "We moved to this town about six years ago from the coast, and we still miss the sea.",
    "The weather here has been miserable lately, nothing but drizzle since Sunday.",
    "I work from home most days, so I am usually at my desk by half past eight.",
    "Our dog, a very stubborn beagle called Biscuit, keeps me company while I work.",
    "My partner is a teacher and has been marking exam papers every evening this week.",
    "We spent last weekend repainting the spare room a pale shade of green.",
    "I am writing this on my lunch break, so please forgive any typos.",
    "My neighbour mentioned that she had chatted to you all recently and found it easy.",
    "I have been meaning to get in touch for a while but life kept getting in the way.",
    "Anyway, I do not want to take up too much of your time.",
    "Honestly, where does the time go these days?",
    "Last month we finally took the train up to visit my parents in the north.",
    "My dad has taken up birdwatching and now sends us photos of robins every morning.",
    "The garden is slowly coming back to life after the winter, which is lovely to see.",
    "I have been trying to read more, and I am halfway through a long historical novel.",
    "We have a family quiz night on Fridays, and my son wins far too often.",
    "I am not very good with computers, so bear with me if I explain things badly.",
    "I need to give you a little bit of background first, so here goes.",
    "My brother is visiting from Canada next month, and we are all looking forward to it.",
    "The local library has started a knitting circle on Thursday evenings.",
    "I was chatting about this with my sister over coffee the other day.",
    "She thought it would be easier to just write it all down in one go.",
    "Isn't it funny how small things pile up when you are busy?",
    "We have lived in the same little terraced house since the children were born.",
    "I sing in a community choir, and we have a concert coming up in the spring.",
    "The cat next door has adopted our porch as her favourite sunbathing spot.",
    "My husband says I should keep my messages shorter, and he is probably right.",
    "I really appreciate the time you take to read all of this.",
    "Thanks for being patient with me, it is always nice to deal with friendly people.",
    "Hope you have a lovely rest of your day.",
    "Many thanks again, and apologies for going on a bit.",
    "Best wishes to you and the rest of the team.",
    "I have been a bit scatterbrained this week with everything going on.",
    "Our eldest is learning to drive, which is a whole adventure in itself.",
    "We are planning a small get-together for my mother's seventieth birthday.",
    "I baked far too many scones yesterday, so the neighbours got a bag each.",
    "The football season has started again, and the house is noisy every Saturday.",
    "I grew up in a small village where everybody knew everybody else.",
)


def split_of(text: str) -> str:
    """'dev' or 'test', by a hash of the request text: stable across runs and machines."""
    return "dev" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def wrap(text: str, position: str, rng: random.Random) -> str:
    """``text`` with filler sentences around it until the message is about TARGET_CHARS."""
    pool = list(FILLER)
    rng.shuffle(pool)
    filler: list[str] = []
    while len(text) + sum(len(s) + 1 for s in filler) < TARGET_CHARS:
        filler.append(pool[len(filler) % len(pool)])
    if position == "start":
        parts = [text, *filler]
    elif position == "end":
        parts = [*filler, text]
    else:
        half = len(filler) // 2
        parts = [*filler[:half], text, *filler[half:]]
    return " ".join(parts)


def long_rows() -> list[dict[str, str]]:
    """The long-message rows: one per labelled request and position."""
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    out = []
    for row in rows:
        if row["kind"] in SKIPPED_KINDS:
            continue
        for position in POSITIONS:
            rng = random.Random(f"{SEED}:{position}:{row['text']}")
            long = {
                "policy": row["policy"],
                "text": wrap(row["text"], position, rng),
                "label": row["label"],
                "kind": row["kind"],
                "position": position,
                "split": split_of(row["text"]),
                "request": row["text"],
            }
            if row.get("tenant"):
                long["tenant"] = row["tenant"]
            out.append(long)
    return out


def main() -> None:
    rows = long_rows()
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sizes = sorted(len(r["text"]) for r in rows)
    dev = sum(r["split"] == "dev" for r in rows)
    print(
        f"{len(rows)} rows ({dev} dev, {len(rows) - dev} test) to {OUT.relative_to(ROOT)}; "
        f"{sizes[0]}-{sizes[-1]} characters"
    )


if __name__ == "__main__":
    main()
