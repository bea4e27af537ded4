"""The scope guard on long messages: the bounded clause selection (``long_messages:
select``, the default) against reading every window (``windows``), with the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.errors import PolicyError
from tether.guards import GuardContext
from tether.guards._scope import (
    DEFAULT_MAX_EMBED_TOKENS,
    ScopeGuard,
    ScopeParams,
    _classifier,
    classify_scope,
)
from tether.policy import Policy, load_policy_text, tighten_direction

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"

# Everyday chatter, about nothing the example policies cover (with a request: about 1 KB).
CHATTER = [
    "Good morning, I hope you are keeping well.",
    "It has been a hectic month, what with the school holidays and my sister staying over.",
    "We finally finished decorating the hallway last weekend and it looks much brighter.",
    "My son has joined a swimming club and now talks about nothing but backstroke.",
    "The weather has been lovely lately, so we have been eating outside most evenings.",
    "I have been trying to learn to bake bread, with mixed results so far.",
    "Our old cat still insists on sleeping on the warmest radiator in the house.",
    "My partner has been busy with a big project at work, so the evenings are quiet.",
    "I promised myself I would write this message before the kettle boiled.",
    "My grandmother turns ninety next spring and wants a party with a brass band.",
    "The neighbours' apple tree has dropped half its fruit onto our lawn again.",
    "Sorry for the rambling, I always say more than I mean to.",
]
WINDOWS = ScopeParams(long_messages="windows")


def wrapped(request: str, at: int) -> str:
    """``request`` as sentence ``at`` of the chatter: a message of about 1 KB."""
    return " ".join([*CHATTER[:at], request, *CHATTER[at:]])


@pytest.mark.parametrize("at", [0, 6, len(CHATTER)])
def test_forbidden_request_hidden_in_a_long_message_is_flagged(
    bank: Policy, clinic: Policy, at: int
) -> None:
    for policy, request, topic in [
        (clinic, "How much ibuprofen can I give my daughter for her fever?", "medication"),
        (bank, "Which stocks should I buy this year to double my savings?", "investment_advice"),
    ]:
        text = wrapped(request, at)
        assert len(text) > 900
        found = classify_scope(policy, text)
        assert (found.label, found.topic) == ("forbidden", topic), (at, found.scores)


@pytest.mark.parametrize("at", [0, 6, len(CHATTER)])
def test_in_scope_request_in_a_long_message_stays_in_scope(
    bank: Policy, clinic: Policy, at: int
) -> None:
    for policy, request in [
        (bank, "I lost my debit card on the bus yesterday, how do I freeze it?"),
        (clinic, "Could I move my appointment with the nurse to Thursday afternoon?"),
    ]:
        found = classify_scope(policy, wrapped(request, at))
        assert found.label == "in_scope", (at, request, found.scores)


async def test_chatter_alone_is_not_a_forbidden_topic(bank: Policy, clinic: Policy) -> None:
    for policy in (bank, clinic):
        verdict = await ScopeGuard(ScopeParams()).check(
            " ".join(CHATTER), GuardContext(stage="input", metadata={"policy": policy})
        )
        assert not (verdict.category or "").startswith("forbidden"), verdict.reason


def test_short_messages_classify_exactly_as_with_windows(bank: Policy, clinic: Policy) -> None:
    """Every message of the labelled set fits the budget: the same decision, scores and all."""
    policies = {"bank": bank, "clinic": clinic}
    for line in (DATA / "scope_eval.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        policy = policies[row["policy"]].for_tenant(row.get("tenant"))
        previous = row.get("previous")
        selected = classify_scope(policy, row["text"], previous=previous)
        windowed = classify_scope(policy, row["text"], previous=previous, params=WINDOWS)
        assert selected == windowed, row["text"]


@pytest.mark.parametrize("budget", [8, 16, DEFAULT_MAX_EMBED_TOKENS, 64])
def test_selection_stays_within_the_token_budget(clinic: Policy, budget: int) -> None:
    classifier = _classifier(clinic.scope)
    embedder = classifier.embedder
    long_sentence = "I would like to know " + "and also about " * 40 + "whether I can park?"
    for text in [wrapped("How much ibuprofen can I take?", 4), long_sentence, "x" * 3000]:
        chosen = classifier._select(text, budget)
        assert chosen, text[:40]
        padded = len(chosen) * max(embedder.token_count(c.text) for c in chosen)
        assert padded <= budget, [c.text for c in chosen]


def test_windows_mode_reads_every_window(bank: Policy) -> None:
    filler = "I have been a customer for many years and I am generally happy with things. " * 25
    text = filler + "Anyway, which stocks will go up this year so I can buy some?"
    assert _classifier(bank.scope).embedder.token_count(text) > 256
    found = classify_scope(bank, text, params=WINDOWS)
    assert (found.label, found.topic) == ("forbidden", "investment_advice")


def test_long_message_params_validate() -> None:
    assert ScopeParams().long_messages == "select"
    assert ScopeParams().max_embed_tokens == DEFAULT_MAX_EMBED_TOKENS
    for bad in [
        {"max_embed_tokens": 0},
        {"max_embed_tokens": 7},
        {"max_embed_tokens": 257},
        {"max_embed_tokens": "many"},
        {"long_messages": "all"},
    ]:
        with pytest.raises(ValueError, match="ScopeParams") as error:
            ScopeParams.model_validate(bad)
        assert next(iter(bad)) in str(error.value)
    assert tighten_direction(ScopeParams, "long_messages") == "order:select,windows"
    assert tighten_direction(ScopeParams, "max_embed_tokens") == "higher"


OVERLAY = """\
name: demo
identity: {purpose: Answer questions about cards.}
scope:
  allowed_topics:
    - {name: cards, description: Debit and credit cards.}
guards:
  input:
    - guard: scope
      params: {long_messages: select, max_embed_tokens: 32}
tenants:
  acme:
    guards:
      input:
        - guard: scope
          params: {params}
"""


def test_tenant_overlay_may_only_widen_what_is_read() -> None:
    ok = load_policy_text(OVERLAY.replace("{params}", "{long_messages: windows}"))
    (cfg,) = ok.for_tenant("acme").guards.input
    assert cfg.params["long_messages"] == "windows"
    with pytest.raises(PolicyError, match="loosens guard 'scope'"):
        load_policy_text(OVERLAY.replace("{params}", "{max_embed_tokens: 16}"))
    narrowed = OVERLAY.replace("long_messages: select", "long_messages: windows")
    with pytest.raises(PolicyError, match="loosens guard 'scope'"):
        load_policy_text(narrowed.replace("{params}", "{long_messages: select}"))


def test_long_eval_accuracy(bank: Policy, clinic: Policy) -> None:
    """data/scope_long.jsonl (benchmarks/scope_long.py): regression floors below the numbers
    when this was written (accuracy 0.84, forbidden recall 0.83; windows: 0.55 and 0.54)."""
    policies = {"bank": bank, "clinic": clinic}
    rows = [
        json.loads(line)
        for line in (DATA / "scope_long.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(rows) >= 400
    correct = forbidden = caught = 0
    for row in rows:
        policy = policies[row["policy"]].for_tenant(row.get("tenant"))
        found = classify_scope(policy, row["text"])
        correct += (found.category or "in_scope") == row["label"]
        if row["label"].startswith("forbidden"):
            forbidden += 1
            caught += found.label == "forbidden"
    assert correct / len(rows) >= 0.8
    assert caught / forbidden >= 0.75
