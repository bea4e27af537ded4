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
    TOPIC_ACTION_ORDER,
    ForbiddenTopic,
    GuardConfig,
    Guards,
    Policy,
    TenantOverlay,
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
        known = {t.name for t in base.tools}
        for i, name in enumerate(overlay.tools):
            if name not in known:
                v.append((("tools", i), f"adds tool '{name}' that the base policy does not have"))
        keep = set(overlay.tools)
        update["tools"] = tuple(t for t in base.tools if t.name in keep)

    merged = base.model_copy(update=update)
    merged._source = base._source
    return merged, v


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
    return Guards(input=merged["input"], output=merged["output"])


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
