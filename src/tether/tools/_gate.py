"""The tool gate: between a model's tool call and its execution, decide allow, deny,
require_approval or modify, with the reason, from the policy. Default deny."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tether.errors import ConfigError
from tether.guards import compile_safe
from tether.models import ToolCall
from tether.policy import GATE_MODE_ORDER, ArgRule, GateMode, Policy, SideEffect, ToolSpec

from ._taint import Provenance
from ._tool import Tool, ToolArgumentsError, Toolset, infer_outward

__all__ = ["GateAction", "GateDecision", "GateState", "GatedTool", "ToolGate"]

GateAction = Literal["allow", "deny", "require_approval", "modify"]
GateRule = Literal[
    "unknown_tool",
    "arguments",
    "constraint",
    "clamp",
    "budget",
    "policy",
    "side_effect",
    "untrusted_context",
    "exfiltration",
    "approved",
    "gate_error",
]


class GateDecision(BaseModel):
    """What the gate decided about one tool call, and why.

    ``arguments`` are what would run: validated against the tool's parameters, converted to
    their types and, for ``modify``, changed by the policy (e.g. clamped into range); ``None``
    when they could not be validated. ``rules`` names the checks that decided; ``findings``
    lists data the arguments carry from untrusted content."""

    model_config = ConfigDict(frozen=True)

    action: GateAction
    reason: str
    tool: str
    call_id: str = ""
    arguments: dict[str, Any] | None = None
    side_effect: SideEffect | None = None
    rules: tuple[GateRule, ...] = ()
    findings: tuple[str, ...] = ()

    @property
    def runs(self) -> bool:
        """Whether the call may run now (``allow`` or ``modify``)."""
        return self.action in ("allow", "modify")


@dataclass(slots=True)
class GateState:
    """What the gate needs to know about the conversation so far: calls made per tool (the
    budgets) and the provenance of its content (taint)."""

    provenance: Provenance = field(default_factory=Provenance)
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def to_dict(self) -> dict[str, Any]:
        return {"provenance": self.provenance.to_dict(), "calls": dict(self.calls)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateState:
        return cls(
            provenance=Provenance.from_dict(data.get("provenance", {})),
            calls=Counter({str(k): int(v) for k, v in data.get("calls", {}).items()}),
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    arg: str
    rule: ArgRule
    patterns: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class GatedTool:
    """A tool as the (resolved) policy sees it: its effective class, flags and rules."""

    tool: Tool
    spec: ToolSpec
    side_effect: SideEffect
    untrusted: bool
    outward: bool
    mode: GateMode
    after_untrusted: GateMode
    rules: tuple[_Rule, ...]
    schema: dict[str, Any]


_MODE_WORDS: dict[str, str] = {
    "allow": "may run",
    "require_approval": "needs a person's approval",
    "deny": "may not run",
}


def _stricter(a: GateMode, b: GateMode) -> GateMode:
    return a if GATE_MODE_ORDER[a] >= GATE_MODE_ORDER[b] else b


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ToolGate:
    """Decides each tool call under one resolved policy (``policy.for_tenant(...)``).

    Only tools the policy lists are offered or callable (default deny); each needs a
    :class:`Tool` of that name among ``tools``. :meth:`check` is pure and fast: it touches
    no I/O, so it can run for every call (tens of microseconds, see ``benchmarks/tools.py``)."""

    def __init__(self, policy: Policy, tools: Toolset | Iterable[Tool]) -> None:
        self.policy = policy
        available = tools if isinstance(tools, Toolset) else Toolset(tools)
        agent = policy.agent
        self.tools: dict[str, GatedTool] = {}
        for spec in policy.tools:
            found = available.get(spec.name)
            if found is None:
                raise ConfigError(
                    f"policy '{policy.name}' lists tool '{spec.name}', but no tool of that name "
                    f"was given (tools: {', '.join(available.names) or 'none'}); define it with "
                    "@tether.tool or remove it from the policy's `tools`"
                )
            self.tools[spec.name] = self._bind(spec, found)
        self.schemas: tuple[dict[str, Any], ...] = tuple(t.schema for t in self.tools.values())
        self.exfiltration_action: GateMode = agent.exfiltration.action

    def _bind(self, spec: ToolSpec, found: Tool) -> GatedTool:
        agent = self.policy.agent
        side_effect: SideEffect = spec.side_effect or found.side_effect
        rules = []
        for arg, rule in spec.args.items():
            if arg not in found.parameter_names:
                raise ConfigError(
                    f"policy '{self.policy.name}': tools.{spec.name}.args names '{arg}', which "
                    f"is not a parameter of the tool (parameters: "
                    f"{', '.join(found.parameter_names) or 'none'})"
                )
            patterns = tuple(compile_safe(p, case_sensitive=True) for p in rule.patterns)
            rules.append(_Rule(arg, rule, patterns))
        outward = spec.outward
        if outward is None:
            outward = found.outward if found.outward is not None else infer_outward(found.name)
        return GatedTool(
            tool=found,
            spec=spec,
            side_effect=side_effect,
            untrusted=bool(spec.untrusted if spec.untrusted is not None else found.untrusted),
            outward=outward,
            mode=spec.decision or getattr(agent.decisions, side_effect),
            after_untrusted=getattr(agent.after_untrusted, side_effect),
            rules=tuple(rules),
            schema=found.openai_schema(spec.description or None),
        )

    def get(self, name: str) -> GatedTool | None:
        return self.tools.get(name)

    def new_state(self) -> GateState:
        """Empty state for a new conversation, with the policy's exfiltration settings."""
        return GateState(Provenance(self.policy.agent.exfiltration.min_words))

    def check(self, call: ToolCall, state: GateState, *, approved: bool = False) -> GateDecision:
        """Decide one call. ``approved``: a person approved it (with these arguments), so only
        the checks no approval can waive still apply: the tool exists, the arguments fit its
        parameters and the policy's constraints."""
        try:
            return self._check(call, state, approved)
        except Exception as exc:  # fail closed: a gate that cannot decide denies
            return GateDecision(
                action="deny",
                reason=f"the tool gate could not decide ({type(exc).__name__}: {exc}); denied",
                tool=call.name,
                call_id=call.id,
                rules=("gate_error",),
            )

    def _check(self, call: ToolCall, state: GateState, approved: bool) -> GateDecision:
        def deny(reason: str, rule: GateRule, **extra: Any) -> GateDecision:
            return GateDecision(
                action="deny",
                reason=reason,
                tool=call.name,
                call_id=call.id,
                rules=(rule,),
                **extra,
            )

        gated = self.tools.get(call.name)
        if gated is None:
            names = ", ".join(self.tools) or "none"
            return deny(
                f"there is no tool '{call.name}' you may call; the tools you can call are: {names}",
                "unknown_tool",
            )
        try:
            raw = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return deny(
                f"the arguments are not valid JSON ({exc}); call '{call.name}' again with one "
                "JSON object of its parameters",
                "arguments",
                side_effect=gated.side_effect,
            )
        if not isinstance(raw, dict):
            return deny(
                f"the arguments must be a JSON object of parameters, not {type(raw).__name__}; "
                f"call '{call.name}' again",
                "arguments",
                side_effect=gated.side_effect,
            )
        try:
            arguments = gated.tool.validate(raw)
        except ToolArgumentsError as exc:
            return deny(
                f"the arguments do not fit the parameters of '{call.name}': {exc}; fix them and "
                "call it again",
                "arguments",
                side_effect=gated.side_effect,
            )
        arguments, problems, clamped = _apply_rules(gated.rules, arguments)
        if problems:
            return deny(
                f"the policy does not allow these arguments for '{call.name}': "
                + "; ".join(problems),
                "constraint",
                side_effect=gated.side_effect,
                arguments=arguments,
            )
        base = {"tool": call.name, "call_id": call.id, "side_effect": gated.side_effect}
        if approved:
            return GateDecision(
                action="modify" if clamped else "allow",
                reason="approved" + (f"; {'; '.join(clamped)}" if clamped else ""),
                arguments=arguments,
                rules=("approved", *(("clamp",) if clamped else ())),
                **base,
            )
        limit = gated.spec.max_calls
        if limit is not None and state.calls[call.name] >= limit:
            return deny(
                f"'{call.name}' may be called at most {limit} times in a conversation and that "
                "budget is used up; answer with what you have",
                "budget",
                side_effect=gated.side_effect,
            )
        total = self.policy.agent.max_tool_calls
        if state.total_calls >= total:
            return deny(
                f"this conversation has used all {total} tool calls it may make; answer with "
                "what you have",
                "budget",
                side_effect=gated.side_effect,
            )

        mode = gated.mode
        rules: list[GateRule] = ["policy" if gated.spec.decision else "side_effect"]
        why = [
            f"the policy says '{call.name}' {_MODE_WORDS[mode]}"
            if gated.spec.decision
            else f"'{call.name}' is a {gated.side_effect} tool, which {_MODE_WORDS[mode]}"
        ]
        provenance = state.provenance
        findings: list[str] = []
        if provenance.tainted:
            findings = provenance.carried(arguments)
            sources = ", ".join(provenance.sources)
            if GATE_MODE_ORDER[gated.after_untrusted] > GATE_MODE_ORDER[mode]:
                mode = gated.after_untrusted
                rules.append("untrusted_context")
                why.append(
                    f"untrusted content (from {sources}) is in the conversation, and then a "
                    f"{gated.side_effect} tool {_MODE_WORDS[mode]}"
                )
            elif gated.side_effect != "read":
                why.append(f"untrusted content (from {sources}) is in the conversation")
            if gated.outward and findings:
                mode = _stricter(mode, self.exfiltration_action)
                rules.append("exfiltration")
                why.append("possible exfiltration: " + "; ".join(findings))
            elif findings:  # not outward: evidence for whoever approves, not a rule
                why.append("; ".join(findings))
        if clamped:
            rules.append("clamp")
            why.append("; ".join(clamped))
        action: GateAction = {
            "allow": "modify" if clamped else "allow",
            "require_approval": "require_approval",
            "deny": "deny",
        }[mode]
        reason = "; ".join(why)
        if action == "deny":
            reason += "; do not retry this call"
        return GateDecision(
            action=action,
            reason=reason,
            arguments=arguments,
            rules=tuple(rules),
            findings=tuple(findings),
            **base,
        )


def _apply_rules(
    rules: tuple[_Rule, ...], arguments: dict[str, Any]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The arguments after the policy's rules; the problems (deny) and clamps (modify)."""
    problems: list[str] = []
    clamped: list[str] = []
    out = arguments
    for bound in rules:
        value = arguments.get(bound.arg)
        if value is None:
            continue
        rule, name = bound.rule, bound.arg
        if rule.allow is not None and value not in rule.allow:
            listed = ", ".join(repr(x) for x in rule.allow)
            problems.append(f"{name} must be one of {listed}, not {value!r}")
            continue
        if _number(value):
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f"{name} must be a finite number, not {value!r}")
                continue
            low, high = rule.min, rule.max
            if low is not None and value < low:
                if rule.clamp:
                    out = {**out, name: _like(value, low)}
                    clamped.append(f"{name} raised from {value:g} to the minimum {low:g}")
                else:
                    problems.append(f"{name} {value:g} is below the minimum {low:g}")
            elif high is not None and value > high:
                if rule.clamp:
                    out = {**out, name: _like(value, high)}
                    clamped.append(f"{name} lowered from {value:g} to the maximum {high:g}")
                else:
                    problems.append(f"{name} {value:g} is above the maximum {high:g}")
        elif isinstance(value, str):
            if rule.max_length is not None and len(value) > rule.max_length:
                problems.append(
                    f"{name} is {len(value)} characters long; at most {rule.max_length} allowed"
                )
            for pattern, source in zip(bound.patterns, rule.patterns, strict=True):
                if pattern.fullmatch(value) is None:
                    problems.append(f"{name} {value!r} does not match the pattern {source!r}")
        elif rule.min is not None or rule.max is not None or rule.patterns:
            problems.append(f"{name} has the wrong type for its rule: {value!r}")
    return out, problems, clamped


def _like(value: int | float, bound: float) -> int | float:
    """``bound`` as the type of ``value`` (an int parameter stays an int)."""
    if isinstance(value, int):
        return math.ceil(bound) if bound > value else math.floor(bound)
    return bound
