"""The real thing: bastioncorpus from PyPI into a private cache (needs the network)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tether.datasets import CORPORA, corpus_dir, fetch, load

pytestmark = pytest.mark.network


def test_fetch_bastioncorpus_from_pypi_and_load_it(cache: Path) -> None:
    manifest = fetch("bastioncorpus")
    assert manifest.source == "pypi"
    assert manifest.sha256 == CORPORA["bastioncorpus"].sha256
    assert manifest.license == "MIT" and manifest.missing == []
    rows = (corpus_dir("bastioncorpus") / "bastioncorpus/corpus/injections.jsonl").read_text()
    assert len(rows.splitlines()) == 181

    records = load("bastioncorpus")
    # 181 rows; two obfuscation rows (base64 and base64url of the same bytes) are one text.
    assert len(records) == 180
    assert Counter(r.label for r in records) == {"attack": 117, "benign": 63}
    assert {r.role for r in records} == {"user", "tool", "document"}
    assert {r.lang for r in records} == {"en", "de", "fr", "it", "es"}
