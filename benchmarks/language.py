"""The ``language`` guard (``allowed: [en]``): detection on text in other languages, false
positives on English, and what it does to the red team's answers.

The guard's parameters (``min_words`` 5, ``min_confidence`` 0.9, ``max_share`` 0) were set
before any of these sets was run, and were not changed after.

Other languages (positives):

- ``refusal_synth``: the German, French, Spanish and Italian answers that
  ``training/refusal_synth.py`` generates for the refusal judge (refusals, partial refusals
  and plain answers);
- bastioncorpus's non-English texts (``tether datasets fetch bastioncorpus``);
- Faker's sentences in 18 locales (word salad from each locale's word list, seeded).

English (negatives):

- the English half of ``refusal_synth`` and of bastioncorpus;
- the chatterbot corpus (``tether datasets fetch chatterbot``);
- bank answers and requests written by helpers for other checks
  (``benchmarks/data/credential_requests_*``, ``refund_promises_*``, ``history_checks_*``),
  misspelt and abbreviated ones among them ("u can chnage ur password");
- the embedded model's own answers to red-team attacks (hand-labelled for goals,
  ``benchmarks/data/redteam_goal_labels.jsonl``, and for refusals,
  ``src/tether/evals/data/judge_refusal_labels_redteam.jsonl``), by strategy: an answer to
  the ``translation`` attack ("translate into French, then answer") is expected in French,
  answers to the encoding attacks may come back encoded, the rest are meant to be English.

Blind test (``benchmarks/data/language_test.jsonl``): 140 English and 100 other-language
bank texts written by a helper who had not seen the guard, after its parameters were set,
with hard English on purpose (names and addresses from Wales, Ireland, Nigeria, China; sort
codes; text-speak; a quoted foreign phrase) and answers that switch language mid-way. Its
rows are not printed.

    python benchmarks/language.py [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from _stats import rate
from faker import Faker

from tether.datasets import load
from tether.guards import GuardContext, LanguageGuard, LanguageParams

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks/data"
_LOCALES = (
    "de_DE", "fr_FR", "it_IT", "nl_NL", "pl_PL", "cs_CZ", "ru_RU", "uk_UA", "el_GR", "he_IL",
    "ar_AA", "fa_IR", "ja_JP", "zh_CN", "vi_VN", "th_TH", "hy_AM", "az_AZ",
)  # fmt: skip
_LANGUAGE_NOTE = re.compile(r"\b(?:German|French|Spanish|Italian|Portuguese|Dutch|Polish|Welsh)\b")
_ENCODED = {"base64", "rot13", "hex", "url", "leetspeak", "spaced", "reverse"}


def _synth() -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT / "training"))
    from refusal_synth import generate

    return [(s.lang, s.text) for s in generate()]


def _faker(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for locale in _LOCALES:
        fake = Faker(locale)
        fake.seed_instance(rng.randrange(1 << 30))
        out += [(locale, fake.sentence(nb_words=rng.randint(6, 16))) for _ in range(40)]
    return out


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _helper_written() -> tuple[list[str], list[str]]:
    """(English, other languages): a row is in another language where its author's note
    says so ("German request PIN and password")."""
    english: list[str] = []
    other: list[str] = []
    for pattern in ("credential_requests_*.jsonl", "refund_promises_*.jsonl"):
        for path in sorted(DATA.glob(pattern)):
            for r in _jsonl(path):
                foreign = _LANGUAGE_NOTE.search(str(r.get("note", "")))
                (other if foreign else english).append(str(r["text"]))
    for path in sorted(DATA.glob("history_checks_*.jsonl")):
        for row in _jsonl(path):
            english += [str(m["content"]) for m in row["messages"]]  # type: ignore[attr-defined]
    return list(dict.fromkeys(english)), list(dict.fromkeys(other))


def _model_answers() -> list[tuple[str, str]]:
    """(strategy, answer) for the embedded model's hand-labelled red-team answers."""
    found: dict[str, str] = {}
    rows = _jsonl(DATA / "redteam_goal_labels.jsonl")
    rows += _jsonl(ROOT / "src/tether/evals/data/judge_refusal_labels_redteam.jsonl")
    for row in rows:
        found.setdefault(str(row["answer"]), str(row["case_id"]).split(":")[0])
    return [(strategy, answer) for answer, strategy in found.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="print the false positives")
    args = parser.parse_args()
    guard = LanguageGuard(LanguageParams(allowed=("en",)))
    ctx = GuardContext(stage="output")

    def flagged(text: str) -> bool:
        return asyncio.run(guard.check(text, ctx)).flagged

    rng = random.Random(7)
    synth = _synth()
    bastion = [(r.lang or "", r.text) for r in load("bastioncorpus", fetch_missing=False)]
    chatter = [r.text for r in load("chatterbot", fetch_missing=False)]

    print("| set | texts | flagged |")
    print("|---|---|---|")
    false: list[str] = []  # English texts flagged, for --show

    def row(name: str, texts: list[str], positive: bool) -> None:
        hits = [t for t in texts if flagged(t)]
        if not positive:
            false.extend(hits)
        print(f"| {name} | {len(texts)} | {rate(len(hits), len(texts))} |")

    print("| **other languages (detection)** | | |")
    by_lang: defaultdict[str, list[str]] = defaultdict(list)
    for lang, text in synth:
        if lang != "en":
            by_lang[lang].append(text)
    for lang, texts in sorted(by_lang.items()):
        row(f"refusal_synth, {lang}", texts, True)
    row("bastioncorpus, de/fr/es/it", [t for lang, t in bastion if lang != "en"], True)
    row(f"Faker sentences, {len(_LOCALES)} locales", [t for _, t in _faker(rng)], True)
    english, other = _helper_written()
    row("helper-written bank texts, in other languages by their notes", other, True)
    print("| **English (false positives)** | | |")
    row("refusal_synth, en", [t for lang, t in synth if lang == "en"], False)
    row("bastioncorpus, en", [t for lang, t in bastion if lang == "en"], False)
    row("chatterbot", chatter, False)
    row("helper-written bank answers and requests", english, False)
    answers = _model_answers()
    by_strategy = Counter(s for s, _ in answers)
    english = [a for s, a in answers if s != "translation" and s not in _ENCODED]
    row("the embedded model's red-team answers, all but translation and encodings", english, False)
    print("| **the embedded model's other red-team answers** | | |")
    row(
        "translation (asked to answer in French)",
        [a for s, a in answers if s == "translation"],
        True,
    )
    encoded = [a for s, a in answers if s in _ENCODED]
    print(f"| encodings ({', '.join(sorted(s for s in by_strategy if s in _ENCODED))}) | "
          f"{len(encoded)} | {rate(sum(map(flagged, encoded)), len(encoded))} |")  # fmt: skip
    times = []
    for answer in english:
        t0 = time.perf_counter()
        flagged(answer)
        times.append(time.perf_counter() - t0)
    print("| **blind test set** | | |")
    test = _jsonl(DATA / "language_test.jsonl")
    row("other languages", [str(r["text"]) for r in test if r["label"] == "other"], True)
    n_false = len(false)
    row("English", [str(r["text"]) for r in test if r["label"] == "english"], False)
    del false[n_false:]  # the test set's rows are not shown
    print(
        f"\nTime per answer (the model's English red-team answers, mean "
        f"{statistics.mean(len(a) for a in english):.0f} characters): median "
        f"{1000 * statistics.median(times):.2f} ms, one core."
    )
    if args.show:
        print("\nWrongly flagged English texts:")
        for text in false:
            print(f"- {asyncio.run(guard.check(text, ctx)).reason}: {text[:160]!r}")


if __name__ == "__main__":
    main()
