"""Tenant overlays: merge onto the base policy, tighten-only, and whole-policy checks.

Two independent views of "tighter" live here on purpose: :func:`merge_overlay` checks each
operation an overlay asks for (so a problem names the overlay's own file and line), and
:func:`tightening_violations` compares any two resolved policies field by field. Tests
cross-check one against the other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from tether import registry
from tether.errors import ConfigError, PolicyError, Problem, TenantOverlayError, UserError

from ._loader import PathKey, PolicySource, SourceMap, problems_from_validation
from ._schema import (
    ACTION_ORDER,
    GATE_MODE_ORDER,
    SIDE_EFFECT_ORDER,
    TOPIC_ACTION_ORDER,
    AgentOverlay,
    AgentSettings,
    ArgRule,
    ForbiddenTopic,
    GuardConfig,
    Guards,
    Policy,
    Recovery,
    RecoveryOverlay,
    SideEffectModes,
    SideEffectModesOverlay,
    TenantOverlay,
    ToolOverlay,
    ToolSpec,
)

__all__ = [
    "check_policy",
    "merge_overlay",
    "resolve_tenant",
    "tighten_direction",
    "tightening_violations",
]

Violation = tuple[PathKey, str]


def tighten_direction(params_model: type[BaseModel] | None, field: str) -> str:
    """How a guard parameter may change in an overlay: ``lower``, ``higher``, ``superset``,
    ``subset`` or ``fixed`` (the default: no change allowed), from the field's metadata."""
    if params_model is None or field not in params_model.model_fields:
        return "fixed"
    extra = params_model.model_fields[field].json_schema_extra
    if isinstance(extra, dict):
        value = extra.get("tighten")
        if isinstance(value, str):
            return value
    return "fixed"


def resolve_tenant(policy: Policy, tenant: str) -> Policy:
    """The policy for ``tenant``: base ⊕ overlay. A loosening overlay raises TenantOverlayError."""
    if tenant not in policy.tenants:
        known = ", ".join(sorted(policy.tenants)) or "none defined"
        raise ConfigError(f"unknown tenant '{tenant}' in policy '{policy.name}' (tenants: {known})")
    merged, violations = merge_overlay(policy, policy.tenants[tenant], tenant)
    if violations:
        raise TenantOverlayError(tenant, _locate(policy, ("tenants", tenant), violations, tenant))
    return merged


def check_policy(policy: Policy) -> None:
    """Whole-policy checks the schema cannot do alone: guard names, parameters, actions,
    and every tenant overlay. Raises PolicyError with every problem."""
    problems: list[Problem] = []
    source: PolicySource | None = policy._source
    problems += _check_guards(policy.guards, ("guards",), source)
    problems += _check_recovery(policy, source)
    for name, overlay in policy.tenants.items():
        if overlay.guards is not None:
            problems += _check_guards(overlay.guards, ("tenants", name, "guards"), source)
    if problems:
        raise PolicyError(problems)
    for name, overlay in policy.tenants.items():
        _, violations = merge_overlay(policy, overlay, name)
        problems += _locate(policy, ("tenants", name), violations, name)
    if problems:
        raise PolicyError(problems)


def _check_guards(guards: Guards, at: PathKey, source: PolicySource | None) -> list[Problem]:
    problems: list[Problem] = []
    for stage in ("input", "output"):
        for i, cfg in enumerate(getattr(guards, stage)):
            here = (*at, stage, i)
            try:
                reg = registry.lookup("guard", cfg.guard)
            except UserError as exc:
                problems.append(_problem(source, (*here, "guard"), str(exc)))
                continue
            stages = reg.extra.get("stages", ("input", "output"))
            if stage not in stages:
                problems.append(
                    _problem(source, (*here, "guard"), f"guard '{cfg.guard}' cannot run on {stage}")
                )
            if cfg.action in ("reask", "revise") and stage != "output":
                problems.append(
                    _problem(source, (*here, "action"), f"{cfg.action} is only for output guards")
                )
            if cfg.action == "redact" and not reg.extra.get("redacts", False):
                problems.append(
                    _problem(
                        source, (*here, "action"), f"guard '{cfg.guard}' finds no spans to redact"
                    )
                )
            if reg.params is not None:
                try:
                    reg.params.model_validate(cfg.params)
                except ValidationError as exc:
                    problems += problems_from_validation(exc, source, (*here, "params"), reg.params)
            elif cfg.params:
                problems.append(
                    _problem(source, (*here, "params"), f"guard '{cfg.guard}' takes no params")
                )
    return problems


def _check_recovery(policy: Policy, source: PolicySource | None) -> list[Problem]:
    """Recovery answers again only what the scope guard placed on an allowed topic, so it
    needs one, and topics to place requests on; its primed text answer cannot be JSON."""
    if not policy.recovery.enabled:
        return []
    at = ("recovery", "enabled")
    problems: list[Problem] = []
    if not any(cfg.guard == "scope" for cfg in policy.guards.input):
        problems.append(
            _problem(
                source,
                at,
                "recovery needs a `scope` guard in guards.input: it only retries requests the "
                "scope guard placed on an allowed topic (add `- guard: scope`)",
            )
        )
    if not policy.scope.allowed_topics:
        problems.append(
            _problem(
                source,
                at,
                "recovery needs scope.allowed_topics: it only retries requests on an allowed topic",
            )
        )
    if policy.output.format != "text":
        problems.append(
            _problem(
                source,
                at,
                "recovery primes a text answer and cannot be used with `output.format: json`",
            )
        )
    return problems


def _problem(source: PolicySource | None, path: PathKey, message: str) -> Problem:
    return (source or PolicySource(SourceMap("<policy>"))).problem(path, message)


def _locate(
    policy: Policy, prefix: PathKey, violations: list[Violation], tenant: str
) -> list[Problem]:
    return [
        _problem(policy._source, (*prefix, *path), f"tenant '{tenant}' {message}")
        for path, message in violations
    ]


def merge_overlay(
    base: Policy, overlay: TenantOverlay, tenant: str
) -> tuple[Policy, list[Violation]]:
    """Apply ``overlay`` to ``base``; returns the merged policy and every loosening attempt,
    each as (path inside the overlay, message)."""
    v: list[Violation] = []
    update: dict[str, Any] = {"tenant": tenant, "tenants": {}}

    if overlay.identity is not None:
        changes = overlay.identity.model_dump(exclude_none=True)
        update["identity"] = base.identity.model_copy(update=changes)
    if overlay.context:
        update["context"] = _union(base.context, overlay.context)
    if overlay.constraints:
        update["constraints"] = _union(base.constraints, overlay.constraints)
    if overlay.examples:
        update["examples"] = _union(base.examples, overlay.examples)
    if overlay.revision_principles:
        principles = _union(base.revision.principles, overlay.revision_principles)
        update["revision"] = base.revision.model_copy(update={"principles": principles})
    if overlay.tone is not None:
        changes = {"rules": _union(base.tone.rules, overlay.tone.rules)}
        if overlay.tone.voice is not None:
            changes["voice"] = overlay.tone.voice
        update["tone"] = base.tone.model_copy(update=changes)
    if overlay.refusal is not None:
        update["refusal"] = base.refusal.model_copy(
            update=overlay.refusal.model_dump(exclude_none=True)
        )
    if overlay.scope is not None:
        update["scope"] = _merge_scope(base, overlay, v)
    if overlay.guards is not None:
        update["guards"] = _merge_guards(base.guards, overlay.guards, v)
    if overlay.tools is not None:
        update["tools"] = _merge_tools(base, overlay.tools, v)
    if overlay.agent is not None:
        update["agent"] = _merge_agent(base.agent, overlay.agent, v)
    if overlay.recovery is not None:
        update["recovery"] = _merge_recovery(base.recovery, overlay.recovery, v)

    merged = base.model_copy(update=update)
    merged._source = base._source
    return merged, v


def _merge_tools(
    base: Policy, entries: tuple[str | ToolOverlay, ...], v: list[Violation]
) -> tuple[ToolSpec, ...]:
    by_name = {t.name: t for t in base.tools}
    kept: dict[str, ToolSpec] = {}
    for i, entry in enumerate(entries):
        name = entry if isinstance(entry, str) else entry.name
        old = by_name.get(name)
        if old is None:
            v.append((("tools", i), f"adds tool '{name}' that the base policy does not have"))
            continue
        kept[name] = old if isinstance(entry, str) else _merge_tool(base, old, entry, i, v)
    return tuple(kept[t.name] for t in base.tools if t.name in kept)


def _strictest_default(agent: AgentSettings, side_effect: str | None) -> str:
    """The side-effect default a tool gets; when the policy leaves its class to the code, the
    strictest any class could get."""
    classes = [side_effect] if side_effect is not None else list(SIDE_EFFECT_ORDER)
    modes: list[str] = [getattr(agent.decisions, c) for c in classes]
    return max(modes, key=GATE_MODE_ORDER.__getitem__)


def _reclass_looser(agent: AgentSettings, old: str, new: str) -> bool:
    """Whether moving a tool from class ``old`` to ``new`` relaxes any decision it gets."""
    if SIDE_EFFECT_ORDER[new] < SIDE_EFFECT_ORDER[old]:
        return True
    return any(
        GATE_MODE_ORDER[getattr(modes, new)] < GATE_MODE_ORDER[getattr(modes, old)]
        for modes in (agent.decisions, agent.after_untrusted)
    )


def _merge_tool(
    base: Policy, old: ToolSpec, new: ToolOverlay, index: int, v: list[Violation]
) -> ToolSpec:
    here: PathKey = ("tools", index)
    name = old.name
    changes: dict[str, Any] = {}
    if new.side_effect is not None and new.side_effect != old.side_effect:
        if old.side_effect is None:
            v.append(
                (
                    (*here, "side_effect"),
                    f"reclassifies tool '{name}', whose class the base policy leaves to the "
                    "code: set its side_effect in the base policy first",
                )
            )
        elif _reclass_looser(base.agent, old.side_effect, new.side_effect):
            v.append(
                (
                    (*here, "side_effect"),
                    f"relaxes tool '{name}' side_effect from {old.side_effect} to "
                    f"{new.side_effect}",
                )
            )
        else:
            changes["side_effect"] = new.side_effect
    if new.decision is not None:
        floor = (
            old.decision
            if old.decision is not None
            else _strictest_default(base.agent, old.side_effect)
        )
        if GATE_MODE_ORDER[new.decision] < GATE_MODE_ORDER[floor]:
            v.append(
                (
                    (*here, "decision"),
                    f"relaxes tool '{name}' decision from {floor} to {new.decision}",
                )
            )
        else:
            changes["decision"] = new.decision
    for flag in ("untrusted", "outward"):
        value = getattr(new, flag)
        if value is True:
            changes[flag] = True
        elif value is False and getattr(old, flag) is not False:
            v.append(
                ((*here, flag), f"turns off {flag} for tool '{name}' (it may only turn it on)")
            )
    if new.max_calls is not None:
        if old.max_calls is not None and new.max_calls > old.max_calls:
            v.append(
                (
                    (*here, "max_calls"),
                    f"raises tool '{name}' max_calls from {old.max_calls} to {new.max_calls}",
                )
            )
        else:
            changes["max_calls"] = new.max_calls
    if new.args:
        args = dict(old.args)
        for arg, rule in new.args.items():
            at: PathKey = (*here, "args", arg)
            args[arg] = (
                rule if arg not in old.args else _merge_arg(name, arg, old.args[arg], rule, at, v)
            )
        changes["args"] = args
    return old.model_copy(update=changes)


def _merge_arg(
    tool: str, arg: str, old: ArgRule, new: ArgRule, at: PathKey, v: list[Violation]
) -> ArgRule:
    what = f"tool '{tool}' argument '{arg}'"
    changes: dict[str, Any] = {"patterns": _union(old.patterns, new.patterns)}
    if new.allow is not None:
        extra = [x for x in new.allow if old.allow is not None and x not in old.allow]
        if extra:
            v.append(((*at, "allow"), f"adds {extra!r} to the allowed values of {what}"))
        else:
            changes["allow"] = new.allow
    for field, direction in (("min", "higher"), ("max", "lower"), ("max_length", "lower")):
        value = getattr(new, field)
        if value is None:
            continue
        problem = _param_problem(direction, getattr(old, field), value)
        if problem is None:
            changes[field] = value
        else:
            v.append(((*at, field), f"loosens {what} {field}: {problem}"))
    if "clamp" in new.model_fields_set and new.clamp != old.clamp:
        if new.clamp:
            v.append(((*at, "clamp"), f"lets {what} be clamped instead of denied (may only deny)"))
        else:
            changes["clamp"] = False
    return old.model_copy(update=changes)


def _merge_modes(
    old: SideEffectModes, new: SideEffectModesOverlay, at: PathKey, v: list[Violation]
) -> SideEffectModes:
    changes: dict[str, Any] = {}
    for cls in SIDE_EFFECT_ORDER:
        value = getattr(new, cls)
        if value is None:
            continue
        if GATE_MODE_ORDER[value] < GATE_MODE_ORDER[getattr(old, cls)]:
            v.append(((*at, cls), f"relaxes {cls} tools from {getattr(old, cls)} to {value}"))
        else:
            changes[cls] = value
    return old.model_copy(update=changes)


def _merge_agent(old: AgentSettings, new: AgentOverlay, v: list[Violation]) -> AgentSettings:
    changes: dict[str, Any] = {}
    for field in ("max_steps", "max_tool_calls", "approval_timeout_s"):
        value = getattr(new, field)
        if value is None:
            continue
        problem = _param_problem("lower", getattr(old, field), value)
        if problem is None:
            changes[field] = value
        else:
            v.append((("agent", field), f"loosens agent {field}: {problem}"))
    for field in ("decisions", "after_untrusted"):
        modes = getattr(new, field)
        if modes is not None:
            changes[field] = _merge_modes(getattr(old, field), modes, ("agent", field), v)
    if new.exfiltration is not None:
        exfil: dict[str, Any] = {}
        action = new.exfiltration.action
        if action is not None:
            if action == "require_approval" and old.exfiltration.action == "deny":
                v.append(
                    (
                        ("agent", "exfiltration", "action"),
                        "relaxes agent exfiltration action from deny to require_approval",
                    )
                )
            else:
                exfil["action"] = action
        words = new.exfiltration.min_words
        if words is not None:
            problem = _param_problem("lower", old.exfiltration.min_words, words)
            if problem is None:
                exfil["min_words"] = words
            else:
                v.append(
                    (
                        ("agent", "exfiltration", "min_words"),
                        f"loosens exfiltration min_words: {problem}",
                    )
                )
        changes["exfiltration"] = old.exfiltration.model_copy(update=exfil)
    if new.on_injection is not None:
        if new.on_injection == "log" and old.on_injection == "withhold":
            v.append((("agent", "on_injection"), "relaxes agent on_injection from withhold to log"))
        else:
            changes["on_injection"] = new.on_injection
    return old.model_copy(update=changes)


def _merge_recovery(old: Recovery, new: RecoveryOverlay, v: list[Violation]) -> Recovery:
    changes: dict[str, Any] = {}
    if new.enabled is not None:
        if new.enabled and not old.enabled:
            v.append(
                (
                    ("recovery", "enabled"),
                    "turns on over-refusal recovery, which the base policy has off",
                )
            )
        else:
            changes["enabled"] = new.enabled
    if new.max_input_score is not None:
        problem = _param_problem("lower", old.max_input_score, new.max_input_score)
        if problem is None:
            changes["max_input_score"] = new.max_input_score
        else:
            v.append(
                (("recovery", "max_input_score"), f"loosens recovery max_input_score: {problem}")
            )
    if new.fallback is not None:
        if new.fallback == "instruct" and old.fallback == "none":
            v.append((("recovery", "fallback"), "relaxes recovery fallback from none to instruct"))
        else:
            changes["fallback"] = new.fallback
    return old.model_copy(update=changes)


def _recovery_looser(base: Recovery, derived: Recovery) -> list[str]:
    if not derived.enabled:
        return []
    if not base.enabled:
        return ["recovery: turned on"]
    out = []
    if derived.max_input_score > base.max_input_score:
        out.append("recovery.max_input_score: raised")
    if derived.fallback == "instruct" and base.fallback == "none":
        out.append("recovery.fallback: none → instruct")
    if derived.opener != base.opener or derived.instruction != base.instruction:
        out.append("recovery: opener or instruction changed")
    return out


def _union(base: tuple[Any, ...], added: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*base, *(x for x in added if x not in base))


def _merge_scope(base: Policy, overlay: TenantOverlay, v: list[Violation]) -> Any:
    scope = overlay.scope
    assert scope is not None
    allowed = base.scope.allowed_topics
    if scope.allowed_topics is not None:
        known = {t.name for t in allowed}
        for i, name in enumerate(scope.allowed_topics):
            if name not in known:
                v.append(
                    (
                        ("scope", "allowed_topics", i),
                        f"adds allowed topic '{name}': an overlay may only narrow scope",
                    )
                )
        keep = set(scope.allowed_topics)
        allowed = tuple(t for t in allowed if t.name in keep)
    forbidden = list(base.scope.forbidden_topics)
    allowed_names = {t.name for t in base.scope.allowed_topics}
    for i, topic in enumerate(scope.forbidden_topics):
        here: PathKey = ("scope", "forbidden_topics", i)
        if topic.name in allowed_names:
            # Forbidding a base allowed topic narrows scope: drop it from the allowed list.
            allowed = tuple(t for t in allowed if t.name != topic.name)
        existing = next((j for j, t in enumerate(forbidden) if t.name == topic.name), None)
        if existing is None:
            forbidden.append(topic)
            continue
        old = forbidden[existing]
        if TOPIC_ACTION_ORDER[topic.action] < TOPIC_ACTION_ORDER[old.action]:
            v.append(
                (
                    (*here, "action"),
                    f"relaxes forbidden topic '{topic.name}' from {old.action} to {topic.action}",
                )
            )
        forbidden[existing] = ForbiddenTopic(
            name=old.name,
            description=topic.description,
            examples=_union(old.examples, topic.examples),
            action=max(old.action, topic.action, key=TOPIC_ACTION_ORDER.__getitem__),
        )
    out_of_scope = base.scope.out_of_scope
    if scope.out_of_scope is not None:
        if TOPIC_ACTION_ORDER[scope.out_of_scope] < TOPIC_ACTION_ORDER[out_of_scope]:
            v.append(
                (
                    ("scope", "out_of_scope"),
                    f"relaxes out_of_scope from {out_of_scope} to {scope.out_of_scope}",
                )
            )
        else:
            out_of_scope = scope.out_of_scope
    return base.scope.model_copy(
        update={
            "allowed_topics": allowed,
            "forbidden_topics": tuple(forbidden),
            "out_of_scope": out_of_scope,
        }
    )


_HISTORY_ORDER = {"off": 0, "answers": 1, "strict": 2}


def _merge_guards(base: Guards, overlay: Guards, v: list[Violation]) -> Guards:
    merged: dict[str, tuple[GuardConfig, ...]] = {}
    for stage in ("input", "output"):
        out = list(getattr(base, stage))
        for i, cfg in enumerate(getattr(overlay, stage)):
            here: PathKey = ("guards", stage, i)
            j = next((k for k, b in enumerate(out) if b.key == cfg.key), None)
            if j is None:
                out.append(cfg)
                continue
            out[j] = _merge_guard(out[j], cfg, here, v)
        merged[stage] = tuple(out)
    skip = overlay.skip_after_block if "skip_after_block" in overlay.model_fields_set else None
    history = base.check_history
    if "check_history" in overlay.model_fields_set:
        if _HISTORY_ORDER[overlay.check_history] < _HISTORY_ORDER[base.check_history]:
            v.append(
                (
                    ("guards", "check_history"),
                    f"loosens the base policy's check of the history ({base.check_history} → "
                    f"{overlay.check_history}): a tenant may only tighten",
                )
            )
        else:
            history = overlay.check_history
    return Guards(
        input=merged["input"],
        output=merged["output"],
        skip_after_block=base.skip_after_block if skip is None else skip,
        check_history=history,
    )


def _merge_guard(
    old: GuardConfig, new: GuardConfig, here: PathKey, v: list[Violation]
) -> GuardConfig:
    key = old.key
    if new.guard != old.guard:
        v.append(
            (
                (*here, "guard"),
                f"replaces guard '{key}' ({old.guard}) with {new.guard}: add it under a new id",
            )
        )
        return old
    action = old.action
    if ACTION_ORDER[new.action] < ACTION_ORDER[old.action]:
        v.append(
            ((*here, "action"), f"weakens guard '{key}' action from {old.action} to {new.action}")
        )
    else:
        action = new.action
    fail = old.fail
    if old.fail == "closed" and new.fail == "open":
        v.append(((*here, "fail"), f"makes guard '{key}' fail open; the base fails closed"))
    else:
        fail = new.fail
    params = _merge_params(old, new, here, v)
    return old.model_copy(
        update={
            "action": action,
            "fail": fail,
            "params": params,
            "timeout_ms": new.timeout_ms
            if "timeout_ms" in new.model_fields_set
            else old.timeout_ms,
            "message": new.message if new.message is not None else old.message,
        }
    )


def _merge_params(
    old: GuardConfig, new: GuardConfig, here: PathKey, v: list[Violation]
) -> dict[str, Any]:
    try:
        reg = registry.lookup("guard", old.guard)
    except UserError:
        return dict(old.params)
    model = reg.params
    if model is None:
        return dict(old.params)
    base_vals = model.model_validate(old.params)
    out = dict(old.params)
    for name, raw in new.params.items():
        direction = tighten_direction(model, name)
        at = (*here, "params", name)
        try:
            new_val = model.model_validate({**old.params, name: raw}).__dict__[name]
        except (ValidationError, KeyError):
            continue  # reported by the parameter check with its own location
        old_val = base_vals.__dict__[name]
        if direction == "superset" and isinstance(new_val, list | tuple):
            out[name] = [*old_val, *(x for x in new_val if x not in old_val)]
            continue
        problem = _param_problem(direction, old_val, new_val)
        if problem is None:
            out[name] = raw
        else:
            v.append((at, f"loosens guard '{old.key}' parameter {name}: {problem}"))
    return out


def _param_problem(direction: str, old: Any, new: Any) -> str | None:
    if new == old:
        return None
    if direction == "lower":
        if new is None:
            return f"removes the limit {old!r}"
        return None if old is None or new <= old else f"{old!r} → {new!r} (may only go lower)"
    if direction == "higher":
        if new is None:
            return f"removes the minimum {old!r}"
        return None if old is None or new >= old else f"{old!r} → {new!r} (may only go higher)"
    if direction.startswith("order:"):
        ranks = direction[len("order:") :].split(",")
        if old in ranks and new in ranks and ranks.index(new) >= ranks.index(old):
            return None
        return f"{old!r} → {new!r} (may only move towards {ranks[-1]!r})"
    if direction == "subset":
        extra = [x for x in new if x not in old]
        return None if not extra else f"adds {extra!r} (may only remove entries)"
    return f"{old!r} → {new!r} (this parameter cannot be changed by a tenant)"


def tightening_violations(base: Policy, derived: Policy) -> list[str]:
    """Every way ``derived`` is looser than ``base``, comparing the resolved policies."""
    out: list[str] = []
    for field_name in ("constraints", "context", "examples"):
        missing = [x for x in getattr(base, field_name) if x not in getattr(derived, field_name)]
        if missing:
            out.append(f"{field_name}: drops {missing!r}")
    if any(p not in derived.revision.principles for p in base.revision.principles):
        out.append("revision.principles: drops a principle")
    if base.tone.rules and any(r not in derived.tone.rules for r in base.tone.rules):
        out.append("tone.rules: drops a rule")
    base_allowed = {t.name for t in base.scope.allowed_topics}
    extra = {t.name for t in derived.scope.allowed_topics} - base_allowed
    if extra:
        out.append(f"scope.allowed_topics: adds {sorted(extra)}")
    derived_forbidden = {t.name: t for t in derived.scope.forbidden_topics}
    for t in base.scope.forbidden_topics:
        d = derived_forbidden.get(t.name)
        if d is None:
            out.append(f"scope.forbidden_topics: drops {t.name}")
        elif TOPIC_ACTION_ORDER[d.action] < TOPIC_ACTION_ORDER[t.action]:
            out.append(f"scope.forbidden_topics.{t.name}: {t.action} → {d.action}")
        elif any(e not in d.examples for e in t.examples):
            out.append(f"scope.forbidden_topics.{t.name}: drops examples")
    if TOPIC_ACTION_ORDER[derived.scope.out_of_scope] < TOPIC_ACTION_ORDER[base.scope.out_of_scope]:
        out.append("scope.out_of_scope: relaxed")
    if {t.name for t in derived.tools} - {t.name for t in base.tools}:
        out.append("tools: adds a tool")
    base_tools = {t.name: t for t in base.tools}
    for tool in derived.tools:
        if tool.name in base_tools:
            out += [
                f"tools.{tool.name}: {m}"
                for m in _tool_looser(base.agent, base_tools[tool.name], tool)
            ]
    out += [f"agent: {m}" for m in _agent_looser(base.agent, derived.agent)]
    out += _recovery_looser(base.recovery, derived.recovery)
    if derived.output != base.output:
        out.append("output: changed")
    for stage in ("input", "output"):
        derived_guards = {g.key: g for g in getattr(derived.guards, stage)}
        for g in getattr(base.guards, stage):
            d_guard = derived_guards.get(g.key)
            if d_guard is None:
                out.append(f"guards.{stage}.{g.key}: dropped")
                continue
            out += [f"guards.{stage}.{g.key}: {m}" for m in _guard_looser(g, d_guard)]
    return out


def _guard_looser(base: GuardConfig, derived: GuardConfig) -> list[str]:
    out: list[str] = []
    if derived.guard != base.guard:
        out.append("guard type changed")
    if ACTION_ORDER[derived.action] < ACTION_ORDER[base.action]:
        out.append("action weakened")
    if base.fail == "closed" and derived.fail == "open":
        out.append("fails open")
    try:
        model = registry.lookup("guard", base.guard).params
    except UserError:
        return out
    if model is None:
        return out
    old = model.model_validate(base.params).__dict__
    new = model.model_validate(derived.params).__dict__
    for name, old_val in old.items():
        direction = tighten_direction(model, name)
        new_val = new[name]
        if direction == "superset":
            if any(x not in new_val for x in old_val):
                out.append(f"{name} drops entries")
        elif _param_problem(direction, old_val, new_val) is not None:
            out.append(f"{name} loosened")
    return out


def _tool_looser(agent: AgentSettings, base: ToolSpec, derived: ToolSpec) -> list[str]:
    out: list[str] = []
    if derived.side_effect != base.side_effect:
        if base.side_effect is None or derived.side_effect is None:
            out.append("side_effect changed where the base leaves it to the code")
        elif _reclass_looser(agent, base.side_effect, derived.side_effect):
            out.append("side_effect relaxed")
    if derived.decision != base.decision:
        floor = base.decision or _strictest_default(agent, base.side_effect)
        if derived.decision is None or GATE_MODE_ORDER[derived.decision] < GATE_MODE_ORDER[floor]:
            out.append("decision relaxed")
    for flag in ("untrusted", "outward"):
        if getattr(derived, flag) != getattr(base, flag) and getattr(derived, flag) is not True:
            out.append(f"{flag} turned off")
    if base.max_calls is not None and (
        derived.max_calls is None or derived.max_calls > base.max_calls
    ):
        out.append("max_calls raised")
    for arg, rule in base.args.items():
        got = derived.args.get(arg)
        if got is None:
            out.append(f"args.{arg} dropped")
            continue
        if rule.allow is not None and (
            got.allow is None or any(x not in rule.allow for x in got.allow)
        ):
            out.append(f"args.{arg}.allow widened")
        for field, direction in (("min", "higher"), ("max", "lower"), ("max_length", "lower")):
            if _param_problem(direction, getattr(rule, field), getattr(got, field)) is not None:
                out.append(f"args.{arg}.{field} loosened")
        if any(p not in got.patterns for p in rule.patterns):
            out.append(f"args.{arg}.patterns dropped")
        if got.clamp and not rule.clamp:
            out.append(f"args.{arg}.clamp turned on")
    return out


def _agent_looser(base: AgentSettings, derived: AgentSettings) -> list[str]:
    out: list[str] = []
    for field in ("max_steps", "max_tool_calls", "approval_timeout_s"):
        if getattr(derived, field) > getattr(base, field):
            out.append(f"{field} raised")
    for field in ("decisions", "after_untrusted"):
        for cls in SIDE_EFFECT_ORDER:
            old = getattr(getattr(base, field), cls)
            new = getattr(getattr(derived, field), cls)
            if GATE_MODE_ORDER[new] < GATE_MODE_ORDER[old]:
                out.append(f"{field}.{cls} relaxed")
    if base.exfiltration.action == "deny" and derived.exfiltration.action != "deny":
        out.append("exfiltration.action relaxed")
    if derived.exfiltration.min_words > base.exfiltration.min_words:
        out.append("exfiltration.min_words raised")
    if base.on_injection == "withhold" and derived.on_injection == "log":
        out.append("on_injection relaxed")
    return out
