"""Compile a policy into the system prompt and few-shot messages, deterministically."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tether.messages import Message

from ._schema import Policy

__all__ = [
    "CompiledPrompt",
    "compile_prompt",
    "policy_version",
    "render_template",
    "scope_enforced",
    "topic_reply",
]


@dataclass(frozen=True, slots=True)
class CompiledPrompt:
    """What the model sees before the conversation, and the version it was compiled from."""

    system: str
    few_shot: tuple[Message, ...]
    version: str

    def messages(self) -> list[Message]:
        return [{"role": "system", "content": self.system}, *self.few_shot]


def policy_version(policy: Policy) -> str:
    """``name[/tenant]@<12 hex>``: a hash of the resolved policy, stable across runs and
    machines, that changes whenever anything that affects behaviour changes."""
    body = policy.model_dump(mode="json", exclude={"tenants"})
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()[:12]
    who = f"{policy.name}/{policy.tenant}" if policy.tenant else policy.name
    return f"{who}@{digest}"


def render_template(policy: Policy, template: str, *, topic: str = "") -> str:
    """Fill a refusal-style template's placeholders from the policy."""
    topics = [t.description.rstrip(".") for t in policy.scope.allowed_topics]
    if len(topics) > 1:
        listed = ", ".join(t[0].lower() + t[1:] for t in topics[:-1])
        listed += f" and {topics[-1][0].lower()}{topics[-1][1:]}"
    elif topics:
        listed = topics[0][0].lower() + topics[0][1:]
    else:
        listed = "questions within my purpose"
    return template.format(
        assistant=policy.identity.name,
        organization=policy.identity.organization or "us",
        allowed_topics=listed,
        topic=topic.replace("_", " "),
    )


def scope_enforced(policy: Policy) -> bool:
    """Whether the policy's input guards include a ``scope`` guard that acts (not only logs):
    then forbidden and out-of-scope requests get their replies from the guard, before the
    model is called."""
    return any(g.guard == "scope" and g.action != "log" for g in policy.guards.input)


def compile_prompt(policy: Policy, *, guarded: bool = False) -> CompiledPrompt:
    """The system prompt and few-shot messages for ``policy`` (already resolved for a tenant).

    ``guarded``: the prompt the whole pipeline sends. Where a scope guard acts on the input
    (:func:`scope_enforced`), the model only sees requests the guard placed on an allowed
    topic, and the guard itself answers forbidden and out-of-scope ones with the policy's
    replies. Those reply sentences are then left out of the prompt (the forbidden topics stay
    listed): a small model repeats the refusals it is shown on requests it should answer.
    """
    lean = guarded and scope_enforced(policy)
    ident = policy.identity
    who = f"You are {ident.name}"
    if ident.organization:
        who += f", the assistant of {ident.organization}"
    lines = [f"{who}. {ident.purpose.strip()}"]
    if ident.audience:
        lines.append(f"You are talking to {ident.audience.strip()}.")

    if policy.scope.allowed_topics:
        lines += ["", "You help with:"]
        lines += [f"- {t.description.strip()}" for t in policy.scope.allowed_topics]
    if policy.scope.forbidden_topics and lean:
        lines += ["", "You do not help with:"]
        lines += [f"- {t.description.strip()}" for t in policy.scope.forbidden_topics]
    elif policy.scope.forbidden_topics:
        lines += ["", "You never help with the following. If asked, reply with the sentence given:"]
        for t in policy.scope.forbidden_topics:
            lines.append(
                f'- {t.description.strip()} Reply: "{topic_reply(policy, t.name, t.action)}"'
            )
    if policy.scope.allowed_topics and not lean:
        out_of_scope = topic_reply(policy, "", policy.scope.out_of_scope)
        lines += ["", f'For any other request, reply: "{out_of_scope}"']

    if policy.constraints:
        lines += ["", "Rules you must always follow:"]
        lines += [f"{i}. {c.strip()}" for i, c in enumerate(policy.constraints, 1)]
    if policy.context:
        lines += ["", "Facts you can rely on:"]
        lines += [f"- {c.strip()}" for c in policy.context]
    if policy.tone.voice or policy.tone.rules:
        lines += ["", "Style:"]
        if policy.tone.voice:
            lines.append(f"- Voice: {policy.tone.voice.strip()}")
        lines += [f"- {r.strip()}" for r in policy.tone.rules]
    if policy.output.format == "json":
        lines += ["", "Answer with one JSON object only, no other text."]
        if policy.output.json_schema is not None:
            schema = json.dumps(policy.output.json_schema, sort_keys=True, separators=(",", ":"))
            lines.append(f"It must match this JSON Schema: {schema}")

    few_shot: list[Message] = []
    for ex in policy.examples:
        few_shot.append({"role": "user", "content": ex.user.strip()})
        few_shot.append({"role": "assistant", "content": ex.assistant.strip()})
    return CompiledPrompt("\n".join(lines), tuple(few_shot), policy_version(policy))


def topic_reply(policy: Policy, topic: str, action: str) -> str:
    """The reply to a request on ``topic`` answered with ``action``: refuse, redirect, escalate."""
    refusal = policy.refusal
    template = {
        "refuse": refusal.message,
        "redirect": refusal.message + " " + refusal.redirect,
    }.get(action, refusal.escalation)
    return render_template(policy, template, topic=topic)


def public_texts(policy: Policy) -> tuple[str, ...]:
    """What the system prompt holds that the assistant may say openly: every reply the policy
    gives (refusal, redirect, escalation, failure, per-topic and guard messages), the allowed
    topics it offers and the context facts. Repeating these is not leaking the system prompt."""
    refusal = policy.refusal
    texts = {
        render_template(policy, t)
        for t in (refusal.message, refusal.redirect, refusal.escalation, refusal.failure)
    }
    for topic in policy.scope.forbidden_topics:
        texts.add(topic_reply(policy, topic.name, topic.action))
    texts.add(topic_reply(policy, "", policy.scope.out_of_scope))
    for guard in (*policy.guards.input, *policy.guards.output):
        if guard.message:
            texts.add(render_template(policy, guard.message))
    texts.update(c.strip() for c in policy.context)
    # The redirect reply lists the allowed topics: their descriptions are public too.
    texts.update(t.description.strip().rstrip(".") for t in policy.scope.allowed_topics)
    return tuple(sorted(t for t in texts if t))
