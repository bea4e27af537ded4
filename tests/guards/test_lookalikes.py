"""The `lookalikes` guard: words spelled with letters of other scripts that look Latin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether import Guardrails, load_policy
from tether.guards import GuardContext, LookalikesGuard, LookalikesParams, Verdict
from tether.models import ScriptedModel
from tether.pipeline._decide import apply_spans
from tether.redteam import OBFUSCATIONS

BANK = Path(__file__).resolve().parents[2] / "examples" / "bank" / "policy.yaml"


def check(text: str, min_words: int = 2) -> Verdict:
    guard = LookalikesGuard(LookalikesParams(min_words=min_words))
    return asyncio.run(guard.check(text, GuardContext(stage="input")))


def test_spoofed_words_are_flagged_and_redaction_spells_them_in_latin() -> None:
    text = "Shоuld I buy bitсоin оr ethеreum tоday?"  # Cyrillic о, с, е
    found = check(text)
    assert found.flagged and found.category == "lookalikes"
    assert [text[s.start : s.end] for s in found.spans] == [
        "Shоuld",
        "bitсоin",
        "оr",
        "ethеreum",
        "tоday",
    ]
    assert apply_spans(text, found.spans) == "Should I buy bitcoin or ethereum today?"


@pytest.mark.parametrize(
    "text",
    [
        "How do I reset my card PIN?",
        "Café au lait, naïve façade, Zürich, São Paulo, Łódź",  # Latin with diacritics
        "Привет, как дела? Это обычный русский текст.",
        "Я купил iPhone в магазине Apple и оплатил через Google Pay.",  # scripts side by side
        "Το σπίτι είναι μεγάλο και όμορφο.",
        "Нервово монета мільярд вчора подвірʼя синок.",  # the Ukrainian apostrophe ʼ
    ],
)
def test_ordinary_text_in_any_script_passes(text: str) -> None:
    assert not check(text, min_words=1).flagged


def test_min_words_sets_how_many_spoofed_words_it_takes() -> None:
    one = "Please pаy my rent"  # one Cyrillic а
    assert not check(one).flagged
    assert check(one, min_words=1).flagged


def test_the_red_teams_homoglyph_obfuscation_is_flagged() -> None:
    assert check(OBFUSCATIONS["homoglyph"]("Which stocks will go up this year?")).flagged


def test_the_bank_asks_for_plain_letters_without_calling_the_model() -> None:
    model = ScriptedModel(["Sure."], repeat_last=True)
    rails = Guardrails(load_policy(BANK), model=model)
    spoofed = OBFUSCATIONS["homoglyph"]("How long does a transfer to another bank take?")
    reply = asyncio.run(rails.chat(spoofed, tenant="northbank"))
    assert reply.action == "block" and model.calls == []
    assert "another alphabet" in reply.text
    plain = asyncio.run(
        rails.chat("How long does a transfer to another bank take?", tenant="northbank")
    )
    assert plain.action == "allow"
