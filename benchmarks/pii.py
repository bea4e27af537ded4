"""PII and secrets detection: per-entity precision and recall, and latency per 1 KB.

    taskset -c 0 .venv/bin/python benchmarks/pii.py [--n 3000] [--rounds 5]

Three test sets, scored with the guards' defaults (``min_confidence`` 0.5, every entity):

- **presidio / fill_template**: the presidio-evaluator templates (development corpus,
  ``tether datasets fetch presidio``) filled by ``tether.datasets.fill_template``, variants
  0-2: its few fixed fake values (555-01xx phones, test card numbers, example IBANs).
- **presidio / fresh values**: the same templates, three fillings each with values from
  ``training/pii_synth.py`` (Faker names and addresses, valid phone numbers of 16 regions,
  Faker card numbers, IBANs of 9 countries).
- **generated**: ``training/pii_synth.generate`` - templated messages with every entity
  and secret format, plus hard negatives (order numbers, UUIDs, digests, version strings,
  placeholders, capitalised non-names).

Gold spans are the filled placeholders. Matching is by overlap: a detection counts as right
when it overlaps a gold span of the same entity, a gold span as found when a detection of
its entity overlaps it. Detections over unscored placeholders (organisation, city alone,
URL, dates) count neither way. Latency: ``await guard.check`` on 1 KB messages made of
generated samples (so dense with entities) and on 1 KB of ordinary prose, one core (pin
with taskset), p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

from pii_synth import Sample, Values, generate, presidio_sample  # noqa: E402

from tether.datasets import fill_template, load  # noqa: E402
from tether.guards import GuardContext  # noqa: E402
from tether.guards._pii import (  # noqa: E402
    PII_ENTITIES,
    SECRET_ENTITIES,
    PiiGuard,
    PiiParams,
    SecretsGuard,
    SecretsParams,
    find_pii,
)

API_KEYS = {
    "AWS_ACCESS_KEY", "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "SLACK_WEBHOOK",
    "STRIPE_KEY", "OPENAI_KEY", "ANTHROPIC_KEY", "GOOGLE_API_KEY", "NPM_TOKEN",
    "HUGGINGFACE_TOKEN", "SENDGRID_KEY", "JWT",
}  # fmt: skip
ROWS = (
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "API_KEY", "PRIVATE_KEY",
    "URL_CREDENTIALS", "PASSWORD", "GENERIC_SECRET", "PERSON", "ADDRESS",
)  # fmt: skip
UNSCORED = {"LOCATION"}
# Generated slots -> reported slice (names and streets from locales the detector's lists
# cover, or not).
SLICES = {
    "PERSON:PERSON": "PERSON: first + last, listed locales",
    "PERSON:FIRST": "PERSON: first name alone, listed locales",
    "PERSON:LAST": "PERSON: title + last name, listed locales",
    "PERSON:XPERSON": "PERSON: first + last, unlisted locales",
    "PERSON:XFIRST": "PERSON: first name alone, unlisted locales",
    **{
        f"ADDRESS:ADDR_{c}": f"ADDRESS: listed locales ({c.lower()})"
        for c in ("EN", "GB", "DE", "FR", "ES", "IT")
    },
    **{
        f"ADDRESS:XADDR_{c}": f"ADDRESS: unlisted locales ({c.lower()})"
        for c in ("AU", "NZ", "CH", "FRCH", "MX")
    },
}


def row(entity: str) -> str:
    return "API_KEY" if entity in API_KEYS else entity


class Score:
    def __init__(self) -> None:
        self.pred: Counter[str] = Counter()
        self.pred_ok: Counter[str] = Counter()
        self.gold: Counter[str] = Counter()
        self.gold_ok: Counter[str] = Counter()
        self.detail_gold: Counter[str] = Counter()
        self.detail_ok: Counter[str] = Counter()
        self.false_positives: list[tuple[str, str, str]] = []
        self.misses: list[tuple[str, str, str]] = []

    def add(self, sample: Sample, found: Iterable[tuple[int, int, str]]) -> None:
        found = [(s, e, row(k)) for s, e, k in found]
        gold = [(s, e, row(k)) for s, e, k in sample.spans]
        details = sample.detail or tuple("" for _ in gold)
        for (gs, ge, gk), detail in zip(gold, details, strict=True):
            if gk in UNSCORED:
                continue
            hit = any(k == gk and s < ge and gs < e for s, e, k in found)
            self.gold[gk] += 1
            self.gold_ok[gk] += hit
            key = f"{gk}:{detail}"
            self.detail_gold[key] += 1
            self.detail_ok[key] += hit
            if not hit:
                self.misses.append((gk, sample.text[gs:ge], sample.text))
        for s, e, k in found:
            overlapping = [g for g in gold if g[0] < e and s < g[1]]
            if any(g[2] == k for g in overlapping):
                self.pred[k] += 1
                self.pred_ok[k] += 1
            elif any(g[2] in UNSCORED for g in overlapping):
                continue
            else:
                self.pred[k] += 1
                self.false_positives.append((k, sample.text[s:e], sample.text))

    def cell(self, entity: str) -> str:
        p = self.pred_ok[entity] / self.pred[entity] if self.pred[entity] else float("nan")
        r = self.gold_ok[entity] / self.gold[entity] if self.gold[entity] else float("nan")
        if not self.gold[entity] and not self.pred[entity]:
            return "–"
        return f"{fmt(p)} / {fmt(r)} ({self.gold[entity]})"


def fmt(x: float) -> str:
    return "–" if x != x else f"{x:.2f}"


def detect(text: str) -> list[tuple[int, int, str]]:
    return [
        (m.start, m.end, m.entity)
        for m in find_pii(text, entities=PII_ENTITIES + SECRET_ENTITIES, min_confidence=0.5)
    ]


def fresh_values(values: Values) -> Callable[[str, int], str]:
    en = values.faker("en_US")
    makers: dict[str, Callable[[], str]] = {
        "person": values.person, "name": values.person, "name_female": values.person,
        "name_male": values.person, "first_name": values.first_name,
        "first_name_female": values.first_name, "first_name_male": values.first_name,
        "first_name_nonbinary": values.first_name, "last_name": values.last_name,
        "last_name_female": values.last_name, "last_name_male": values.last_name,
        "prefix": lambda: values.rng.choice(["Dr.", "Mx."]),
        "prefix_female": lambda: values.rng.choice(["Ms.", "Mrs."]),
        "prefix_male": lambda: values.rng.choice(["Mr.", "Dr."]),
        "address": lambda: values.address("en"), "street_name": en.street_name,
        "building_number": en.building_number, "secondary_address": en.secondary_address,
        "city": en.city, "state_abbr": en.state_abbr, "postcode": en.postcode,
        "zipcode": en.zipcode, "country": en.country, "credit_card_number": values.card,
        "iban": values.iban, "phone_number": values.phone, "email": values.email,
        "ip_address": values.ip, "ssn": values.ssn,
    }  # fmt: skip

    def value(key: str, occurrence: int) -> str:
        make = makers.get(key)
        return make() if make else fill_template(f"{{{{{key}}}}}", variant=occurrence)

    return value


def presidio_sets(templates: list[str], rounds: int) -> tuple[list[Sample], list[Sample]]:
    fixed = [
        presidio_sample(
            t, lambda key, k, v=v: fill_template(f"{{{{{key}}}}}", variant=v + k), "fill"
        )
        for v in range(3)
        for t in templates
    ]
    values = Values(random.Random(11))
    fresh = [
        presidio_sample(t, fresh_values(values), "fresh") for _ in range(rounds) for t in templates
    ]
    return fixed, fresh


def score(samples: list[Sample]) -> Score:
    result = Score()
    for sample in samples:
        result.add(sample, detect(sample.text))
    return result


PROSE = (
    "Thanks for getting back to me so quickly. I wanted to follow up on the question I asked "
    "last week about the new savings account, because the terms on the website and the "
    "letter I received do not seem to match. The letter says the interest rate is fixed for "
    "the first year, but the page says it can change at any time. Could you explain which "
    "one is right, and whether the rate applies from the day I open the account or from the "
    "first deposit? I would also like to know if there is a fee for closing the account "
    "early, and how long a transfer to another bank usually takes. Last time it took almost "
    "a week, which was a problem because I had bills to pay. If it is easier, you can answer "
    "in a few short points. I am not in a hurry, but I would like to decide before the end "
    "of the month. Thank you again for your help, and have a nice weekend. "
)


def kilobyte_texts(samples: list[Sample], count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 1024:
            parts.append(rng.choice(samples).text)
        out.append(" ".join(parts)[:1024])
    return out


async def latency(
    guard: PiiGuard | SecretsGuard, texts: list[str], repeat: int
) -> tuple[float, float, float]:
    """Wall-clock p50 and p99, and CPU-time p50 (what the guard itself costs on a busy
    machine), in ms."""
    ctx = GuardContext(stage="input")
    for text in texts[:20]:
        await guard.check(text, ctx)  # warm: name lists, phone metadata
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        for text in texts:
            c0, t0 = time.thread_time(), time.perf_counter()
            await guard.check(text, ctx)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
    wall.sort()
    return statistics.median(wall), wall[int(len(wall) * 0.99)], statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=3000, help="generated samples")
    parser.add_argument(
        "--rounds", type=int, default=5, help="fresh fillings per presidio template"
    )
    parser.add_argument(
        "--show", type=int, default=0, help="print this many misses and false positives per entity"
    )
    args = parser.parse_args()

    templates = [r.text for r in load("presidio", fetch_missing=True)]
    fixed, fresh = presidio_sets(templates, args.rounds)
    generated = generate(args.n, seed=7)
    scores = {
        "presidio / fill_template": score(fixed),
        "presidio / fresh values": score(fresh),
        "generated": score(generated),
    }
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}, "
        f"{len(templates)} templates, {len(fixed)} + {len(fresh)} presidio texts, {len(generated)} generated\n"
    )
    print("precision / recall (gold spans), overlap matching, min_confidence 0.5\n")
    print("| entity | " + " | ".join(scores) + " |")
    print("|---|" + "---|" * len(scores))
    for entity in ROWS:
        print(f"| {entity} | " + " | ".join(s.cell(entity) for s in scores.values()) + " |")

    print("\nrecall by kind of name or address\n")
    print("| set | kind | recall |")
    print("|---|---|---|")
    for name, s in scores.items():
        kinds = sorted(k for k in s.detail_gold if k.startswith(("PERSON:", "ADDRESS:")))
        merged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for k in kinds:
            label = SLICES.get(
                k, k.replace("_female", "").replace("_male", "").replace("_nonbinary", "")
            )
            merged[label][0] += s.detail_ok[k]
            merged[label][1] += s.detail_gold[k]
        for label, (ok, total) in sorted(merged.items()):
            if total >= 10:
                print(f"| {name} | {label} | {ok / total:.2f} ({ok}/{total}) |")

    if args.show:
        for name, s in scores.items():
            print(f"\n## {name}: misses")
            by: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for k, span, text in s.misses:
                by[k].append((span, text))
            for k, items in sorted(by.items()):
                for span, text in items[: args.show]:
                    print(f"- {k}: {span!r} in {text[:140]!r}")
            print(f"\n## {name}: false positives")
            by = defaultdict(list)
            for k, span, text in s.false_positives:
                by[k].append((span, text))
            for k, items in sorted(by.items()):
                for span, text in items[: args.show]:
                    print(f"- {k}: {span!r} in {text[:140]!r}")

    dense = kilobyte_texts(generated, 200, seed=3)
    prose = [PROSE[i % 50 :] + PROSE[: i % 50] for i in range(200)]
    prose = [(p * 2)[:1024] for p in prose]
    guards = {"pii": PiiGuard(PiiParams()), "secrets": SecretsGuard(SecretsParams())}
    loadavg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nlatency per 1 KB message, one core, ms (load average {loadavg:.1f})\n")
    print("| guard | text | p50 | p99 | p50 CPU time |")
    print("|---|---|---|---|---|")
    for name, guard in guards.items():
        for label, texts in (
            ("generated, dense with entities", dense),
            ("prose, no entities", prose),
        ):
            p50, p99, cpu = asyncio.run(latency(guard, texts, repeat=3))
            print(f"| {name} | {label} | {p50:.3f} | {p99:.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
