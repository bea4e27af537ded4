"""Revise (deployment-time self-critique) and the self_check LLM-judge guard."""

from __future__ import annotations

import pytest

from tether import Guardrails, load_policy_text
from tether.errors import PolicyError
from tether.guards import GuardContext
from tether.guards._selfcheck import SelfCheckGuard, SelfCheckParams
from tether.models import ScriptedModel

REVISE = """
name: clinic
identity: {purpose: Book appointments.}
revision:
  principles: [Never state a diagnosis., Suggest booking an appointment instead.]
  max_rounds: 2
guards:
  output:
    - guard: deny_list
      id: diagnosis
      params: {patterns: ['you (?:probably )?have (?:the )?flu']}
      action: revise
"""


async def test_revise_critiques_rewrites_and_records_every_round() -> None:
    model = ScriptedModel(
        [
            "You probably have the flu.",  # draft: flagged
            "It states a diagnosis.",  # critique
            "I can't say what it is, but I can book you an appointment today.",  # rewrite: passes
        ]
    )
    reply = await Guardrails(load_policy_text(REVISE), model=model).chat("I have a fever")
    assert reply.action == "allow"
    assert reply.text == "I can't say what it is, but I can book you an appointment today."
    (round1,) = reply.revisions
    assert round1.round == 1 and round1.passed
    assert (
        round1.draft == "You probably have the flu." and round1.critique == "It states a diagnosis."
    )
    critique_prompt = model.calls[1][-1]["content"]
    assert "Never state a diagnosis." in critique_prompt and "matched" in critique_prompt
    assert [a.action for a in reply.actions] == ["revise"]


async def test_revise_gives_up_after_max_rounds_with_the_failure_message() -> None:
    model = ScriptedModel(
        ["You have the flu.", "bad", "You have the flu.", "bad", "You have flu"], repeat_last=True
    )
    reply = await Guardrails(load_policy_text(REVISE), model=model).chat("I have a fever")
    assert reply.action == "block"
    assert len(reply.revisions) == 2 and not any(r.passed for r in reply.revisions)
    assert reply.actions[-1].reason.startswith("still flagged after 2 revisions")


def test_revise_is_an_output_action_only() -> None:
    bad = REVISE.replace("  output:", "  input:")
    with pytest.raises(PolicyError, match="revise is only for output guards"):
        load_policy_text(bad)


def test_tenants_may_add_principles_only() -> None:
    policy = load_policy_text(REVISE + "tenants:\n  t:\n    revision_principles: [Be brief.]\n")
    assert policy.for_tenant("t").revision.principles[-1] == "Be brief."


async def test_self_check_flags_with_the_judges_reason_and_caches() -> None:
    judge = ScriptedModel(['{"violation": true, "reason": "promises a refund"}'])
    guard = SelfCheckGuard(SelfCheckParams(rubric="Never promise a refund."), model=judge)
    ctx = GuardContext(stage="output")
    verdict = await guard.check("We will refund you in full.", ctx)
    assert verdict.flagged and verdict.reason == "judge: promises a refund"
    again = await guard.check("We will refund you in full.", ctx)
    assert again == verdict and len(judge.calls) == 1  # cached
    assert "Never promise a refund." in judge.calls[0][0]["content"]


async def test_self_check_unparseable_judge_is_a_guard_error_and_fails_closed_in_the_pipeline() -> (
    None
):
    policy = load_policy_text(
        """
name: p
identity: {purpose: Help.}
guards:
  output:
    - guard: self_check
      params: {rubric: Never promise a refund.}
"""
    )
    # The pipeline's own model is the judge by default: answer, then a non-JSON judgement.
    model = ScriptedModel(["Sure, full refund!", "I think it is fine"])
    reply = await Guardrails(policy, model=model).chat("refund?")
    assert reply.action == "block"
    (failed,) = [v for v in reply.verdicts if v.error]
    assert "not the JSON verdict" in (failed.error or "")


async def test_self_check_passes_clean_text_through_the_pipeline() -> None:
    policy = load_policy_text(
        "name: p\nidentity: {purpose: Help.}\nguards:\n  output:\n"
        "    - {guard: self_check, params: {rubric: Never promise a refund.}}\n"
    )
    model = ScriptedModel(
        ["Refunds are decided by our team.", '{"violation": false, "reason": "no promise"}']
    )
    reply = await Guardrails(policy, model=model).chat("refund?")
    assert reply.action == "allow" and reply.text == "Refunds are decided by our team."
