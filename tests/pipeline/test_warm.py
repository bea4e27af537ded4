"""`Guardrails.warm`: input guards compute ahead, in batches, what they will need for messages
known in advance (an evaluation run's cases), per tenant; a failure there changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether import Guardrails, load_policy
from tether.embed import default_embedder
from tether.guards._scope import ScopeGuard
from tether.models import ScriptedModel

BANK = Path(__file__).resolve().parents[2] / "examples" / "bank" / "policy.yaml"


def test_warming_fills_the_embedding_cache_with_the_tenants_readings() -> None:
    rails = Guardrails(load_policy(BANK), model=ScriptedModel(["Sure."], repeat_last=True))
    embedder = default_embedder()
    embedder.cache_clear()
    texts = ["Which crypto should I buy?", "How long does a transfer take?"]
    asyncio.run(rails.warm(texts, tenant="southbank"))
    assert all(embedder._cache.get(t, count=False) is not None for t in texts)
    before = embedder.cache_info().misses
    reply = asyncio.run(rails.chat(texts[0], tenant="southbank"))
    assert reply.action == "block"  # the scope guard (and the deny list) stopped it...
    assert embedder.cache_info().misses == before  # ...without a forward pass of its own


def test_a_guard_that_fails_to_warm_is_left_to_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: ScopeGuard, texts: object, ctx: object) -> None:
        raise RuntimeError("no model")

    monkeypatch.setattr(ScopeGuard, "warm", broken)
    rails = Guardrails(load_policy(BANK), model=ScriptedModel(["Sure."], repeat_last=True))
    asyncio.run(rails.warm(["Which crypto should I buy?"], tenant="northbank"))  # no error
    reply = asyncio.run(rails.chat("Which crypto should I buy?", tenant="northbank"))
    assert reply.action == "block"
