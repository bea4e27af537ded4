"""The compiled prompt: plain (a model alone) and guarded (behind the pipeline's guards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether import Guardrails
from tether.models import ScriptedModel
from tether.policy import Policy, compile_prompt, load_policy, load_policy_text, scope_enforced

BANK = Path(__file__).resolve().parents[2] / "examples" / "bank" / "policy.yaml"


@pytest.fixture(scope="module")
def bank() -> Policy:
    return load_policy(BANK).for_tenant("northbank")


def test_plain_prompt_gives_the_model_every_reply(bank: Policy) -> None:
    system = compile_prompt(bank).system
    assert "You never help with the following. If asked, reply with the sentence given:" in system
    assert "Reply: \"I'm passing this to a member of our fraud team" in system
    assert "For any other request, reply:" in system


def test_guarded_prompt_leaves_the_scope_guards_replies_out(bank: Policy) -> None:
    assert scope_enforced(bank)
    plain, guarded = compile_prompt(bank), compile_prompt(bank, guarded=True)
    assert "Reply:" not in guarded.system and "For any other request" not in guarded.system
    assert "I'm sorry, I can't help with that" not in guarded.system
    # The forbidden topics stay listed; everything else is as in the plain prompt.
    assert "You do not help with:\n- Advice on which stocks" in guarded.system
    head = plain.system.split("You never help")[0]
    assert guarded.system.startswith(head)  # identity, purpose, audience, allowed topics
    assert plain.system.split("Rules you must")[1] == guarded.system.split("Rules you must")[1]
    assert guarded.few_shot == plain.few_shot and guarded.version == plain.version


@pytest.mark.parametrize(
    "guards",
    [
        "guards: {input: [{guard: length, params: {max_chars: 100}}]}",  # no scope guard
        "guards: {input: [{guard: scope, action: log}]}",  # a scope guard that only logs
    ],
)
def test_without_an_acting_scope_guard_the_prompt_keeps_its_replies(guards: str) -> None:
    policy = load_policy_text(
        "name: shop\nidentity: {purpose: Help with orders.}\n"
        "scope:\n  allowed_topics: [{name: orders, description: Orders.}]\n"
        "  forbidden_topics: [{name: legal, description: Legal advice.}]\n" + guards + "\n"
    )
    assert not scope_enforced(policy)
    assert compile_prompt(policy, guarded=True) == compile_prompt(policy)


async def test_the_pipeline_sends_the_guarded_prompt(bank: Policy) -> None:
    model = ScriptedModel(["You can reset it at any North Bank ATM."])
    await Guardrails(load_policy(BANK), model=model).chat(
        "How do I reset my card PIN?", tenant="northbank"
    )
    system = model.calls[0][0]["content"]
    assert system.startswith(compile_prompt(bank, guarded=True).system)
    assert "Reply:" not in system
