"""Tool and agent settings in tenant overlays: tighten only."""

from __future__ import annotations

import pytest

from tether.errors import PolicyError
from tether.policy import load_policy_text, tightening_violations
from tether.tools import ToolGate, tool

BASE = """\
name: agentic
identity: {purpose: Bank things.}
tools:
  - {name: lookup, side_effect: read}
  - name: transfer
    side_effect: write
    args:
      amount: {max: 1000}
      currency: {allow: [GBP, EUR]}
    max_calls: 5
  - name: close_account
  - name: search
    untrusted: true
    args:
      limit: {max: 50, clamp: true}
"""


@tool(side_effect="read")
def lookup(q: str) -> str:
    """Look up."""
    return q


@tool(side_effect="destructive")
def transfer(amount: float, currency: str = "GBP") -> str:
    """Transfer."""
    return "ok"


@tool(side_effect="destructive")
def close_account() -> str:
    """Close."""
    return "closed"


@tool(side_effect="read")
def search(q: str, limit: int = 5) -> str:
    """Search."""
    return q


def with_tenant(overlay: str) -> str:
    indented = "\n".join("    " + line for line in overlay.strip("\n").splitlines())
    return BASE + "tenants:\n  acme:\n" + indented + "\n"


def test_a_tightening_overlay_merges() -> None:
    policy = load_policy_text(
        with_tenant(
            """
tools:
  - lookup
  - name: transfer
    side_effect: destructive
    decision: deny
    args:
      amount: {max: 200, min: 1}
      currency: {allow: [GBP], patterns: ['[A-Z]{3}']}
    max_calls: 1
  - {name: search, outward: true, args: {limit: {clamp: false}}}
agent:
  max_steps: 3
  max_tool_calls: 5
  decisions: {read: require_approval}
  after_untrusted: {read: require_approval}
  exfiltration: {min_words: 5}
  approval_timeout_s: 60
"""
        )
    )
    acme = policy.for_tenant("acme")
    tools = {t.name: t for t in acme.tools}
    assert list(tools) == ["lookup", "transfer", "search"]  # close_account removed
    transfer_spec = tools["transfer"]
    assert transfer_spec.side_effect == "destructive" and transfer_spec.decision == "deny"
    assert transfer_spec.args["amount"].max == 200 and transfer_spec.args["amount"].min == 1
    assert transfer_spec.args["currency"].allow == ("GBP",)
    assert transfer_spec.max_calls == 1
    assert tools["search"].outward is True and tools["search"].args["limit"].clamp is False
    assert acme.agent.max_steps == 3 and acme.agent.decisions.read == "require_approval"
    assert acme.agent.exfiltration.min_words == 5
    assert tightening_violations(policy, acme) == []
    # The base is untouched, and the tenant's gate enforces the tighter rules.
    assert {t.name for t in policy.tools} == {"lookup", "transfer", "search", "close_account"}
    gate = ToolGate(acme, [lookup, transfer, close_account, search])
    assert "close_account" not in gate.tools
    state = gate.new_state()
    from tether.models import ToolCall

    denied = gate.check(ToolCall(id="1", name="close_account", arguments="{}"), state)
    assert denied.action == "deny" and denied.rules == ("unknown_tool",)
    small = gate.check(ToolCall(id="2", name="transfer", arguments='{"amount": 500}'), state)
    assert small.action == "deny" and "above the maximum 200" in small.reason


@pytest.mark.parametrize(
    ("overlay", "field", "needle"),
    [
        ("tools: [lookup, wire]", "tenants.acme.tools[1]", "adds tool 'wire'"),
        (
            "tools:\n  - {name: transfer, side_effect: read}",
            "tenants.acme.tools[0].side_effect",
            "relaxes tool 'transfer' side_effect from write to read",
        ),
        (
            "tools:\n  - {name: close_account, side_effect: destructive}",
            "tenants.acme.tools[0].side_effect",
            "set its side_effect in the base policy first",
        ),
        (
            "tools:\n  - {name: transfer, decision: allow}",
            "tenants.acme.tools[0].decision",
            "relaxes tool 'transfer' decision from require_approval to allow",
        ),
        (
            "tools:\n  - {name: search, untrusted: false}",
            "tenants.acme.tools[0].untrusted",
            "turns off untrusted",
        ),
        (
            "tools:\n  - {name: lookup, outward: false}",
            "tenants.acme.tools[0].outward",
            "turns off outward",
        ),
        (
            "tools:\n  - {name: transfer, max_calls: 6}",
            "tenants.acme.tools[0].max_calls",
            "raises tool 'transfer' max_calls from 5 to 6",
        ),
        (
            "tools:\n  - {name: transfer, args: {amount: {max: 5000}}}",
            "tenants.acme.tools[0].args.amount.max",
            "may only go lower",
        ),
        (
            "tools:\n  - {name: transfer, args: {currency: {allow: [GBP, BTC]}}}",
            "tenants.acme.tools[0].args.currency.allow",
            "adds ['BTC'] to the allowed values",
        ),
        (
            "tools:\n  - {name: transfer, args: {amount: {clamp: true}}}",
            "tenants.acme.tools[0].args.amount.clamp",
            "clamped instead of denied",
        ),
        ("agent: {max_steps: 20}", "tenants.acme.agent.max_steps", "may only go lower"),
        ("agent: {max_tool_calls: 99}", "tenants.acme.agent.max_tool_calls", "may only go lower"),
        (
            "agent: {decisions: {write: allow}}",
            "tenants.acme.agent.decisions.write",
            "relaxes write tools from require_approval to allow",
        ),
        (
            "agent: {after_untrusted: {destructive: allow}}",
            "tenants.acme.agent.after_untrusted.destructive",
            "relaxes destructive tools",
        ),
        (
            "agent: {exfiltration: {action: require_approval}}",
            "tenants.acme.agent.exfiltration.action",
            "from deny to require_approval",
        ),
        (
            "agent: {exfiltration: {min_words: 20}}",
            "tenants.acme.agent.exfiltration.min_words",
            "may only go lower",
        ),
        ("agent: {on_injection: log}", "tenants.acme.agent.on_injection", "withhold to log"),
        (
            "agent: {approval_timeout_s: 999999}",
            "tenants.acme.agent.approval_timeout_s",
            "may only go lower",
        ),
    ],
)
def test_loosening_overlays_are_rejected_naming_field_and_line(
    overlay: str, field: str, needle: str
) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text(with_tenant(overlay), file="p.yaml")
    (problem,) = info.value.problems
    assert problem.field == field
    assert needle in problem.message
    assert problem.message.startswith("tenant 'acme' ")
    assert problem.line is not None and problem.line > BASE.count("\n")


def test_a_decision_is_compared_with_the_strictest_default_when_the_class_is_unset() -> None:
    # close_account's class is left to the code; any decision below the strictest default
    # (require_approval here) might loosen, deny never does.
    load_policy_text(with_tenant("tools:\n  - {name: close_account, decision: deny}"))
    load_policy_text(with_tenant("tools:\n  - {name: close_account, decision: require_approval}"))
    with pytest.raises(PolicyError, match="from require_approval to allow"):
        load_policy_text(with_tenant("tools:\n  - {name: close_account, decision: allow}"))
    strict = BASE + "agent:\n  decisions: {write: deny}\n"
    with pytest.raises(PolicyError, match="from deny to require_approval"):
        load_policy_text(
            strict
            + "tenants:\n  acme:\n    tools:\n      - {name: close_account, decision: require_approval}\n"
        )


def test_a_reclassification_that_lowers_a_decision_is_rejected() -> None:
    # Upward in class, but this base treats write more strictly than destructive.
    odd = BASE + "agent:\n  decisions: {write: deny}\n"
    with pytest.raises(PolicyError, match="relaxes tool 'transfer' side_effect"):
        load_policy_text(
            odd
            + "tenants:\n  acme:\n    tools:\n      - {name: transfer, side_effect: destructive}\n"
        )


def test_tightening_violations_sees_loosened_tools_and_agent() -> None:
    base = load_policy_text(BASE)
    loose_tools = tuple(
        t.model_copy(update={"max_calls": None, "args": {}, "untrusted": None})
        if t.name in ("transfer", "search")
        else t
        for t in base.tools
    )
    derived = base.model_copy(
        update={
            "tools": loose_tools,
            "agent": base.agent.model_copy(
                update={
                    "max_steps": 50,
                    "decisions": base.agent.decisions.model_copy(update={"write": "allow"}),
                    "on_injection": "log",
                }
            ),
        }
    )
    found = tightening_violations(base, derived)
    assert "tools.transfer: max_calls raised" in found
    assert "tools.transfer: args.amount dropped" in found
    assert "tools.search: untrusted turned off" in found
    assert "agent: max_steps raised" in found
    assert "agent: decisions.write relaxed" in found
    assert "agent: on_injection relaxed" in found
