"""Property-based tests of the tighten-only merge rules.

Overlays are generated as lists of operations, each known to tighten or to loosen. The merge
must accept exactly the overlays with no loosening operation, and whatever it accepts must
pass the independent field-by-field comparison ``tightening_violations``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import Policy, TenantOverlay, merge_overlay, tightening_violations

ACTIONS = ["log", "redact", "reask", "escalate", "block"]
INPUT_ACTIONS = ["log", "escalate", "block"]  # actions valid for these input guards
TOPIC_ACTIONS = ["redirect", "refuse", "escalate"]
ALLOWED = ["cards", "loans", "app", "fees"]
FORBIDDEN = ["investing", "tax", "legal"]
TERMS = ["bitcoin", "forex", "shares", "gold"]


@st.composite
def bases(draw: st.DrawFn) -> dict[str, Any]:
    allowed = draw(st.lists(st.sampled_from(ALLOWED), unique=True, min_size=1))
    forbidden = draw(st.lists(st.sampled_from(FORBIDDEN), unique=True))
    return {
        "name": "demo",
        "identity": {"purpose": "Help."},
        "scope": {
            "allowed_topics": [{"name": n, "description": n} for n in allowed],
            "forbidden_topics": [
                {"name": n, "description": n, "action": draw(st.sampled_from(TOPIC_ACTIONS))}
                for n in forbidden
            ],
            "out_of_scope": draw(st.sampled_from(TOPIC_ACTIONS)),
        },
        "constraints": draw(st.lists(st.sampled_from(["No tax advice.", "Be safe."]), unique=True)),
        "tools": [
            {"name": n} for n in draw(st.lists(st.sampled_from(["lookup", "refund"]), unique=True))
        ],
        "guards": {
            "input": [
                {
                    "guard": "length",
                    "params": {"max_chars": draw(st.one_of(st.none(), st.integers(10, 5000)))},
                    "fail": draw(st.sampled_from(["open", "closed"])),
                },
                {
                    "guard": "deny_list",
                    "id": "words",
                    "params": {
                        "terms": draw(st.lists(st.sampled_from(TERMS), unique=True, min_size=1))
                    },
                    "action": draw(st.sampled_from(INPUT_ACTIONS)),
                },
            ]
        },
    }


Op = tuple[bool, dict[str, Any]]  # (loosens?, overlay fragment)


def ops_for(draw: st.DrawFn, base: dict[str, Any]) -> list[Op]:
    scope = base["scope"]
    allowed = [t["name"] for t in scope["allowed_topics"]]
    forbidden = {t["name"]: t["action"] for t in scope["forbidden_topics"]}
    length = base["guards"]["input"][0]
    words = base["guards"]["input"][1]
    rank = TOPIC_ACTIONS.index
    ops: list[Op] = []
    kind = draw(
        st.sampled_from(
            ["constraint", "allowed", "forbidden", "oos", "length", "words", "fail", "tools"]
        )
    )
    if kind == "constraint":
        ops.append(
            (False, {"constraints": [draw(st.text(min_size=1, max_size=8).filter(str.strip))]})
        )
    elif kind == "allowed":
        keep = draw(st.lists(st.sampled_from(allowed), unique=True))
        loosen = draw(st.booleans())
        extra = [n for n in ALLOWED if n not in allowed]
        if loosen and extra:
            keep = [*keep, extra[0]]
        ops.append((loosen and bool(extra), {"scope": {"allowed_topics": keep}}))
    elif kind == "forbidden":
        name = draw(st.sampled_from(FORBIDDEN))
        action = draw(st.sampled_from(TOPIC_ACTIONS))
        loosens = name in forbidden and rank(action) < rank(forbidden[name])
        ops.append(
            (
                loosens,
                {
                    "scope": {
                        "forbidden_topics": [{"name": name, "description": "d", "action": action}]
                    }
                },
            )
        )
    elif kind == "oos":
        action = draw(st.sampled_from(TOPIC_ACTIONS))
        ops.append(
            (rank(action) < rank(scope["out_of_scope"]), {"scope": {"out_of_scope": action}})
        )
    elif kind == "length":
        old = length["params"]["max_chars"]
        new = draw(st.one_of(st.none(), st.integers(10, 6000)))
        loosens = (new is None and old is not None) or (
            new is not None and old is not None and new > old
        )
        ops.append(
            (loosens, {"guards": {"input": [{"guard": "length", "params": {"max_chars": new}}]}})
        )
    elif kind == "words":
        action = draw(st.sampled_from(INPUT_ACTIONS))
        terms = draw(st.lists(st.sampled_from(TERMS), unique=True))
        loosens = ACTIONS.index(action) < ACTIONS.index(words.get("action", "block"))
        fragment = {
            "guard": "deny_list",
            "id": "words",
            "action": action,
            "params": {"terms": terms},
        }
        ops.append((loosens, {"guards": {"input": [fragment]}}))
    elif kind == "fail":
        fail = draw(st.sampled_from(["open", "closed"]))
        loosens = fail == "open" and length["fail"] == "closed"
        ops.append((loosens, {"guards": {"input": [{"guard": "length", "fail": fail}]}}))
    else:
        have = [t["name"] for t in base["tools"]]
        keep = draw(st.lists(st.sampled_from(["lookup", "refund"]), unique=True))
        ops.append((any(n not in have for n in keep), {"tools": keep}))
    return ops


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_merge_accepts_exactly_the_tightening_overlays(data: st.DataObject) -> None:
    raw_base = data.draw(bases())
    base = Policy.model_validate(raw_base)
    ((loosens, fragment),) = ops_for(data.draw, raw_base)
    overlay = TenantOverlay.model_validate(fragment)
    merged, violations = merge_overlay(base, overlay, "t")
    assert bool(violations) == loosens, (fragment, violations)
    if not violations:
        assert tightening_violations(base, merged) == []


@given(raw=bases())
@settings(max_examples=100, deadline=None)
def test_empty_overlay_changes_nothing_but_the_tenant(raw: dict[str, Any]) -> None:
    base = Policy.model_validate(raw)
    merged, violations = merge_overlay(base, TenantOverlay(), "t")
    assert violations == []
    assert merged.model_dump(exclude={"tenant", "tenants"}) == base.model_dump(
        exclude={"tenant", "tenants"}
    )


@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_merge_is_deterministic_and_idempotent(data: st.DataObject) -> None:
    raw_base = data.draw(bases())
    base = Policy.model_validate(raw_base)
    ((_, fragment),) = ops_for(data.draw, raw_base)
    overlay = TenantOverlay.model_validate(fragment)
    once, v1 = merge_overlay(base, overlay, "t")
    again, v2 = merge_overlay(base, overlay, "t")
    assert once == again and v1 == v2
    if not v1:
        twice, v3 = merge_overlay(once, overlay, "t")
        assert v3 == []
        assert twice.model_dump() == once.model_dump()
