"""Property: whatever tool or agent overlay the merge accepts, the independent field-by-field
comparison (``tightening_violations``) finds nothing looser in the merged policy."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tether.policy import Policy, TenantOverlay, merge_overlay, tightening_violations

MODES = ["allow", "require_approval", "deny"]
CLASSES = ["read", "write", "destructive"]

BASE: dict[str, Any] = {
    "name": "p",
    "identity": {"purpose": "x"},
    "tools": [
        {"name": "lookup", "side_effect": "read"},
        {
            "name": "transfer",
            "side_effect": "write",
            "decision": "require_approval",
            "args": {"amount": {"min": 1, "max": 1000}, "currency": {"allow": ["GBP", "EUR"]}},
            "max_calls": 5,
        },
        {"name": "fetch", "untrusted": True, "args": {"limit": {"max": 50, "clamp": True}}},
    ],
    "agent": {"max_steps": 8, "decisions": {"write": "require_approval"}},
}

maybe = st.one_of(st.none(), st.booleans())
arg_rules = st.fixed_dictionaries(
    {},
    optional={
        "min": st.integers(-5, 2000),
        "max": st.integers(-5, 6000),
        "allow": st.lists(st.sampled_from(["GBP", "EUR", "USD"]), unique=True),
        "max_length": st.integers(0, 100),
        "clamp": st.booleans(),
    },
)
tool_overlays = st.fixed_dictionaries(
    {"name": st.sampled_from(["lookup", "transfer", "fetch"])},
    optional={
        "side_effect": st.sampled_from(CLASSES),
        "decision": st.sampled_from(MODES),
        "untrusted": st.booleans(),
        "outward": st.booleans(),
        "max_calls": st.integers(0, 10),
        "args": st.dictionaries(st.sampled_from(["amount", "currency", "limit"]), arg_rules),
    },
)
modes = st.fixed_dictionaries({}, optional={c: st.sampled_from(MODES) for c in CLASSES})
agent_overlays = st.fixed_dictionaries(
    {},
    optional={
        "max_steps": st.integers(1, 20),
        "max_tool_calls": st.integers(0, 100),
        "decisions": modes,
        "after_untrusted": modes,
        "exfiltration": st.fixed_dictionaries(
            {},
            optional={
                "action": st.sampled_from(["require_approval", "deny"]),
                "min_words": st.integers(3, 20),
            },
        ),
        "on_injection": st.sampled_from(["log", "withhold"]),
        "approval_timeout_s": st.floats(1, 200_000),
    },
)
overlays = st.fixed_dictionaries(
    {},
    optional={
        "tools": st.lists(
            st.one_of(st.sampled_from(["lookup", "transfer", "fetch"]), tool_overlays),
            max_size=3,
        ),
        "agent": agent_overlays,
    },
)


@given(raw=overlays)
@settings(max_examples=400, deadline=None)
def test_accepted_overlays_are_never_looser(raw: dict[str, Any]) -> None:
    base = Policy.model_validate(BASE)
    try:
        overlay = TenantOverlay.model_validate(raw)
    except ValidationError:  # e.g. min above max: not an overlay at all
        assume(False)
        raise
    merged, violations = merge_overlay(base, overlay, "t")
    if not violations:
        assert tightening_violations(base, merged) == [], raw
