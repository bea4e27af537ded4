"""`guards.skip_after_block` leaves every reply as it was: the bank's policy, with and without
it, on red-team attacks and on the bank's evaluation requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tether import Guardrails, load_policy
from tether.evals import load_suite
from tether.models import ScriptedModel
from tether.redteam import default_strategies, plan_campaign

BANK = Path(__file__).resolve().parents[2] / "examples" / "bank"


def test_skipping_after_a_block_changes_no_reply_and_no_action() -> None:
    policy = load_policy(BANK / "policy.yaml")
    assert policy.guards.skip_after_block
    everything = policy.model_copy(
        update={"guards": policy.guards.model_copy(update={"skip_after_block": False})}
    )
    names = [n for n in default_strategies() if n != "direct"]
    campaign = asyncio.run(
        plan_campaign(
            policy,
            tenant="northbank",
            strategies=[*default_strategies(), *(f"roleplay+{n}" for n in names)],
            budget=160,
        )
    )
    texts = [c.last_user_text for c in campaign.suite.cases]
    texts += [c.last_user_text for c in load_suite(BANK / "evals" / "smoke.yaml").cases]
    model = ScriptedModel(["Here is how."], repeat_last=True)
    skipping = Guardrails(policy, model=model, canary_key=b"k")
    full = Guardrails(everything, model=model, canary_key=b"k")

    async def run(rails: Guardrails, text: str, tenant: str) -> tuple[str, str, set[str]]:
        reply = await rails.chat(text, tenant=tenant)
        return reply.action, reply.text, {v.guard for v in reply.verdicts}

    skipped = 0
    for tenant in ("northbank", "southbank"):
        for text in texts:
            action, reply, ran = asyncio.run(run(skipping, text, tenant))
            expected_action, expected_reply, ran_all = asyncio.run(run(full, text, tenant))
            assert (action, reply) == (expected_action, expected_reply), text
            assert ran <= ran_all
            skipped += ran != ran_all
            if action not in ("block", "escalate"):  # escalate: the scope's topic says so
                assert ran == ran_all, text  # nothing is skipped unless the input was stopped
    # The attacks blocked before the scan are most of them.
    assert skipped >= len(texts)
