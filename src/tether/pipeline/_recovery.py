"""Over-refusal recovery: answer again, once, a request the stack itself judged benign and in
scope but the model refused.

Small models refuse many plain requests on their own ("As a chatbot, I don't have the ability
to ..."); guards can stop answers but cannot create them, and telling the model it refused
does not make it answer. What does is *priming*: the conversation ends with the start of an
answer (the policy's ``recovery.opener``), which the model continues. Models that cannot
continue a partial turn get an instruction built from the matched topic's description.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from tether.guards import (
    ScopeParams,
    Verdict,
    classify_refusal,
    classify_scope,
    previous_user_turn,
)
from tether.messages import Message
from tether.models import ChatModel
from tether.policy import Policy, Topic, render_template

__all__ = [
    "RecoveryPlan",
    "answered",
    "in_scope_topic",
    "inputs_passed",
    "plan_recovery",
    "recovery_reason",
    "supports_prefill",
]

# Characters of the refused draft kept in the recorded reason, for audits.
_DRAFT_CHARS = 160


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    """How to ask again: the conversation to send, and the opener the reply continues
    (empty when the model is not primed)."""

    messages: list[Message]
    opener: str
    method: str


def supports_prefill(model: ChatModel) -> bool:
    """Whether ``model`` continues a conversation that ends with an assistant message.
    Wrappers (the evaluation cache) expose the model they wrap as ``inner``."""
    seen: object | None = model
    for _ in range(8):  # a bounded walk: wrappers never nest deeper
        if seen is None:
            return False
        if getattr(seen, "supports_prefill", False) is True:
            return True
        seen = getattr(seen, "inner", None)
    return False


def inputs_passed(policy: Policy, verdicts: Sequence[Verdict]) -> bool:
    """Whether recovery may run at all: it is on, no input guard flagged or failed, the scope
    guard ran and passed the request, and every other input guard scored it below
    ``recovery.max_input_score`` (a near miss is no place to override a refusal)."""
    inputs = [v for v in verdicts if v.stage == "input"]
    limit = policy.recovery.max_input_score
    return (
        policy.recovery.enabled
        and not any(v.flagged or v.error is not None for v in inputs)
        and any(v.kind == "scope" for v in inputs)
        and all(v.score < limit for v in inputs if v.kind != "scope")
    )


async def in_scope_topic(
    policy: Policy, text: str, messages: Sequence[Message], params: ScopeParams
) -> Topic | None:
    """The allowed topic the scope classifier places ``text`` on (as the scope guard did, with
    the same parameters and previous user turn), or None."""
    found = await asyncio.to_thread(
        classify_scope,
        policy,
        text,
        previous=previous_user_turn(text, messages, params.follow_up_turns),
        params=params,
    )
    if found.label != "in_scope" or found.topic is None:
        return None
    return next((t for t in policy.scope.allowed_topics if t.name == found.topic), None)


def plan_recovery(
    policy: Policy, convo: Sequence[Message], topic: Topic, *, prefill: bool
) -> RecoveryPlan | None:
    """The retry for a refused draft on ``topic``; None when the policy gives this model no
    way to retry (no prefill, and neither an instruction nor the instruct fallback)."""
    settings = policy.recovery
    instruct = settings.instruction or not prefill
    if not prefill and settings.fallback == "none":
        return None
    messages = list(convo)
    if instruct:
        about = topic.description.rstrip(".")
        note = (
            f"The user's request is about {about[:1].lower()}{about[1:]}: something you help "
            "with. Answer it directly and helpfully; do not say you cannot."
        )
        if messages and messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}
        else:
            messages.insert(0, {"role": "system", "content": note})
    opener = ""
    if prefill:
        opener = render_template(policy, settings.opener, topic=topic.name)
        messages.append({"role": "assistant", "content": opener})
    method = "primed with the opener" if prefill else "instruction only (no prefill)"
    if prefill and instruct:
        method = "primed with the opener, with the topic instruction"
    return RecoveryPlan(messages=messages, opener=opener, method=method)


def answered(text: str) -> bool:
    """Whether a retried answer is an answer: the refusal judge finds neither a refusal nor a
    partial one, and at least one sentence of content (not just the opener)."""
    label = classify_refusal(text)
    return label.label == "compliance" and label.content_sentences >= 1


def recovery_reason(topic: Topic, draft: str, refusal: str, method: str, kept: bool) -> str:
    short = " ".join(draft.split())
    if len(short) > _DRAFT_CHARS:
        short = short[: _DRAFT_CHARS - 1] + "…"
    outcome = "the retry refused too; kept the draft" if kept else "answered on retry"
    return (
        f"over-refusal recovery ({method}): the draft refused a request on allowed topic "
        f"{topic.name} ({refusal}); {outcome}. Draft: {short!r}"
    )
