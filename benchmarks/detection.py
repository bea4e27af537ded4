"""Adversarial-input detection: detection and false-positive rates, latency, obfuscations.

    taskset -c 0 .venv/bin/python benchmarks/detection.py        (or: make bench)

Everything is measured on the TEST split of training/data.py: template families (a DAN
variant, a generator template, a corpus file group) that neither the classifier nor the
calibration ever saw. Attacks count as detected when any of the three guards (jailbreak,
injection, prompt_extraction) flags them at the `balanced` preset; benign texts count as
false positives when any of them flags. 95% Wilson intervals. Latency is per 1 KB text on
one core (pin with taskset), medians and p99 of one run, fast (rules + classifier) and
full (plus embeddings behind the calibrated gate).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stats import rate  # noqa: E402
from data import Item, load_items  # noqa: E402

from tether.guards import default_adversarial_model, scan_adversarial  # noqa: E402
from tether.redteam import OBFUSCATIONS  # noqa: E402

CATEGORIES = ("jailbreak", "injection", "prompt_extraction")


def flagged(text: str, role: str, full: bool) -> bool:
    model = default_adversarial_model()
    mode = "full" if full else "fast"
    scan = scan_adversarial(text, role=role, embeddings=full, model=model)
    return any(scan.scores[c].score >= model.thresholds[mode]["balanced"][c] for c in CATEGORIES)


def group(item: Item) -> str:
    family = item.family.split(":")
    where = (
        family[1].rsplit("/", 1)[-1].split(".")[0]
        if item.source != "synth" and len(family) > 1
        else item.family.split(".")[0]
    )
    return f"{item.source}:{where} ({item.role})"


def detection_tables(test: list[Item], lines: list[str]) -> None:
    for full in (False, True):
        mode = "rules + classifier + embeddings" if full else "rules + classifier"
        by_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for item in test:
            hit = flagged(item.text, item.role, full)
            key = f"{item.label} · {group(item)}"
            by_group[key][0] += hit
            by_group[key][1] += 1
            kind = (
                "benign"
                if item.label == "benign"
                else f"{item.label} ({'tool' if item.role == 'tool' else 'user'})"
            )
            totals[kind][0] += hit
            totals[kind][1] += 1
        lines += [f"### {mode}", "", "| what | flagged (95% CI) |", "|---|---|"]
        for kind in sorted(totals, key=lambda k: (k == "benign", k)):
            label = (
                "**false positives, all benign**" if kind == "benign" else f"**detection, {kind}**"
            )
            lines.append(f"| {label} | {rate(*totals[kind])} |")
        lines.append("| *per source* | |")
        for key in sorted(by_group, key=lambda k: (k.startswith("benign"), k)):
            lines.append(f"| {key} | {rate(*by_group[key])} |")
        lines.append("")


def latency_table(test: list[Item], lines: list[str], rounds: int) -> None:
    rng = random.Random(5)
    benign = [i.text for i in test if i.label == "benign"]
    attacks = [i for i in test if i.label != "benign"]

    def kilobyte(seed_text: str) -> str:
        text = seed_text
        while len(text) < 1024:
            text += " " + rng.choice(benign)
        return text[:1024]

    samples = {
        "benign 1 KB": [(kilobyte(rng.choice(benign)), "user") for _ in range(rounds)],
        "attack 1 KB": [
            (kilobyte(a.text), a.role) for a in rng.sample(attacks, min(rounds, len(attacks)))
        ],
    }
    model = default_adversarial_model()
    lines += ["| text | mode | p50 ms | p99 ms |", "|---|---|---|---|"]
    for name, texts in samples.items():
        for full in (False, True):
            times = []
            for text, role in texts:
                start = time.perf_counter()
                scan_adversarial(text, role=role, embeddings=full, model=model)
                times.append((time.perf_counter() - start) * 1000)
            p99 = statistics.quantiles(times, n=100)[98] if len(times) >= 100 else max(times)
            lines.append(
                f"| {name} | {'full' if full else 'fast'} | {statistics.median(times):.2f} | {p99:.2f} |"
            )
    lines.append("")


def obfuscation_table(test: list[Item], lines: list[str], limit: int) -> None:
    rng = random.Random(9)
    attacks = [i for i in test if i.label != "benign" and i.role == "user" and len(i.text) < 600]
    attacks = rng.sample(attacks, min(limit, len(attacks)))
    lines += ["| obfuscation | fast | full |", "|---|---|---|"]
    for name, transform in [("none", lambda t: t), *OBFUSCATIONS.items()]:
        cells = []
        for full in (False, True):
            hits = sum(flagged(transform(a.text), a.role, full) for a in attacks)
            cells.append(rate(hits, len(attacks)))
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines.append("")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="1 KB texts per latency row")
    parser.add_argument("--obfuscated", type=int, default=150, help="attacks per obfuscation row")
    args = parser.parse_args()
    items = load_items()
    test = [i for i in items if i.split == "test"]
    meta = default_adversarial_model().meta
    lines = [
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}; "
        f"test split: {len(test)} texts ({sum(i.label != 'benign' for i in test)} attacks) from "
        f"{len({(i.source, i.family) for i in test})} families never trained or calibrated on; "
        f"embedding gate {meta.get('embedding_gate')}",
        "",
        "## Detection and false positives (balanced preset)",
        "",
    ]
    detection_tables(test, lines)
    lines += ["## Latency per 1 KB text", ""]
    latency_table(test, lines, args.rounds)
    lines += ["## Obfuscated attacks (test-split user attacks under 600 characters)", ""]
    obfuscation_table(test, lines, args.obfuscated)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
