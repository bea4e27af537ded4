"""Tenant overlays: tighten-only merges, with loosening rejected at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ConfigError, PolicyError
from tether.policy import load_policy, load_policy_text, tightening_violations

BASE = """\
name: demo
identity:
  name: Penny
  purpose: Answer questions about cards.
scope:
  allowed_topics:
    - {name: cards, description: Cards.}
    - {name: loans, description: Loans.}
  forbidden_topics:
    - {name: investing, description: Investing., action: refuse}
constraints: [Never give investment advice.]
guards:
  input:
    - guard: length
      params: {max_chars: 1000}
    - guard: deny_list
      id: words
      params: {terms: [bitcoin]}
      action: block
"""


def with_tenant(overlay: str) -> str:
    indented = "\n".join("    " + line for line in overlay.strip("\n").splitlines())
    return BASE + "tenants:\n  acme:\n" + indented + "\n"


def test_tightening_overlay_merges() -> None:
    policy = load_policy_text(
        with_tenant(
            """
identity: {name: Ace}
constraints: [Never discuss rates.]
scope:
  allowed_topics: [cards]
  forbidden_topics:
    - {name: investing, description: Investing., action: escalate, examples: ["Buy stocks?"]}
guards:
  input:
    - guard: length
      params: {max_chars: 500}
    - guard: deny_list
      id: words
      params: {terms: [forex]}
"""
        )
    )
    acme = policy.for_tenant("acme")
    assert acme.tenant == "acme"
    assert acme.identity.name == "Ace"
    assert acme.constraints == ("Never give investment advice.", "Never discuss rates.")
    assert [t.name for t in acme.scope.allowed_topics] == ["cards"]
    assert acme.scope.forbidden_topics[0].action == "escalate"
    guards = {g.key: g for g in acme.guards.input}
    assert guards["length"].params["max_chars"] == 500
    assert guards["words"].params["terms"] == ["bitcoin", "forex"]
    assert tightening_violations(policy, acme) == []
    assert acme.version != policy.version
    assert acme.version.startswith("demo/acme@")


@pytest.mark.parametrize(
    ("overlay", "field", "needle"),
    [
        (
            "guards:\n  input:\n    - {guard: deny_list, id: words, action: log}",
            "tenants.acme.guards.input[0].action",
            "weakens guard 'words' action from block to log",
        ),
        (
            "guards:\n  input:\n    - {guard: length, params: {max_chars: 5000}}",
            "tenants.acme.guards.input[0].params.max_chars",
            "may only go lower",
        ),
        (
            "guards:\n  input:\n    - {guard: length, fail: open}",
            "tenants.acme.guards.input[0].fail",
            "fail open",
        ),
        (
            "guards:\n  input:\n    - {guard: deny_list, id: words, params: {whole_words: true, case_sensitive: true}}",
            "tenants.acme.guards.input[0].params.case_sensitive",
            "may only go lower",
        ),
        (
            "scope:\n  allowed_topics: [cards, crypto]",
            "tenants.acme.scope.allowed_topics[1]",
            "adds allowed topic 'crypto'",
        ),
        (
            "scope:\n  forbidden_topics:\n    - {name: investing, description: x, action: redirect}",
            "tenants.acme.scope.forbidden_topics[0].action",
            "relaxes forbidden topic 'investing'",
        ),
        ("scope:\n  out_of_scope: redirect\n", None, None),
        ("tools: [delete_account]", "tenants.acme.tools[0]", "adds tool 'delete_account'"),
        (
            "guards:\n  input:\n    - {guard: invisible_text, id: words}",
            "tenants.acme.guards.input[0].guard",
            "replaces guard 'words'",
        ),
    ],
)
def test_loosening_overlay_rejected_with_field_and_line(
    overlay: str, field: str | None, needle: str | None
) -> None:
    text = with_tenant(overlay)
    if field is None:  # same strictness as the base: allowed
        load_policy_text(text)
        return
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, file="p.yaml")
    (problem,) = info.value.problems
    assert problem.field == field
    assert needle is not None and needle in problem.message
    assert problem.message.startswith("tenant 'acme' ")
    assert problem.file == "p.yaml"
    assert problem.line is not None and problem.line > BASE.count("\n")


def test_loosening_overlay_file_rejected_at_load(tmp_path: Path) -> None:
    (tmp_path / "lax.yaml").write_text(
        "# lax\nguards:\n  input:\n    - guard: deny_list\n      id: words\n      action: log\n"
    )
    (tmp_path / "policy.yaml").write_text(BASE + "tenants:\n  lax: lax.yaml\n")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "policy.yaml")
    (problem,) = info.value.problems
    assert problem.file == str(tmp_path / "lax.yaml")
    assert problem.line == 6
    assert problem.field == "tenants.lax.guards.input[0].action"


def test_unknown_tenant() -> None:
    policy = load_policy_text(with_tenant("constraints: [x]"))
    with pytest.raises(
        ConfigError, match=r"unknown tenant 'nope' in policy 'demo' \(tenants: acme\)"
    ):
        policy.for_tenant("nope")


def test_forbidding_an_allowed_topic_narrows_scope() -> None:
    policy = load_policy_text(
        with_tenant("scope:\n  forbidden_topics:\n    - {name: loans, description: No loans here.}")
    )
    acme = policy.for_tenant("acme")
    assert [t.name for t in acme.scope.allowed_topics] == ["cards"]
    assert "loans" in {t.name for t in acme.scope.forbidden_topics}
    assert tightening_violations(policy, acme) == []


def test_base_policy_for_none_is_itself() -> None:
    policy = load_policy_text(BASE)
    assert policy.for_tenant(None) is policy


def with_recovery(base_recovery: str, overlay: str) -> str:
    """BASE with a scope guard (recovery needs one) and ``base_recovery``, plus ``overlay``."""
    text = BASE + "    - guard: scope\n" + base_recovery
    indented = "\n".join("    " + line for line in overlay.strip("\n").splitlines())
    return text + "tenants:\n  acme:\n" + indented + "\n"


ON = "recovery: {enabled: true, max_input_score: 0.05, fallback: instruct}\n"


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ("recovery: {enabled: false}", {"enabled": False}),
        ("recovery: {max_input_score: 0.01}", {"enabled": True, "max_input_score": 0.01}),
        ("recovery: {fallback: none}", {"enabled": True, "fallback": "none"}),
    ],
)
def test_tenant_narrows_recovery(overlay: str, expected: dict[str, object]) -> None:
    policy = load_policy_text(with_recovery(ON, overlay))
    acme = policy.for_tenant("acme")
    for field, value in expected.items():
        assert getattr(acme.recovery, field) == value
    assert policy.recovery.enabled and policy.recovery.max_input_score == 0.05
    assert tightening_violations(policy, acme) == []


@pytest.mark.parametrize(
    ("base", "overlay", "field", "needle"),
    [
        ("", "recovery: {enabled: true}", "enabled", "turns on over-refusal recovery"),
        (ON, "recovery: {max_input_score: 0.5}", "max_input_score", "may only go lower"),
        (
            "recovery: {enabled: true, fallback: none}\n",
            "recovery: {fallback: instruct}",
            "fallback",
            "from none to instruct",
        ),
    ],
)
def test_tenant_cannot_widen_recovery(base: str, overlay: str, field: str, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text(with_recovery(base, overlay), file="p.yaml")
    (problem,) = info.value.problems
    assert problem.field == f"tenants.acme.recovery.{field}"
    assert needle in problem.message
    assert problem.line is not None


def test_tightening_violations_sees_recovery_turned_on() -> None:
    off = load_policy_text(with_recovery("", "context: [Open 9 to 5.]"))
    on = load_policy_text(with_recovery(ON, "context: [Open 9 to 5.]"))
    assert tightening_violations(off, on) == ["recovery: turned on"]
    assert tightening_violations(on, off) == []
    raised = on.model_copy(
        update={"recovery": on.recovery.model_copy(update={"max_input_score": 0.2})}
    )
    assert tightening_violations(on, raised) == ["recovery.max_input_score: raised"]


def test_skip_after_block_is_the_base_policys_unless_a_tenant_sets_it() -> None:
    base = BASE.replace("guards:\n", "guards:\n  skip_after_block: true\n", 1)
    overlay = "guards:\n  input:\n    - guard: length\n      params: {max_chars: 500}\n"
    policy = load_policy_text(base + "tenants:\n  acme:\n" + _indent(overlay))
    assert policy.guards.skip_after_block and policy.for_tenant("acme").guards.skip_after_block
    # Either way is allowed: skipping changes no reply, only how many guards are on record.
    policy = load_policy_text(
        base + "tenants:\n  acme:\n" + _indent("guards:\n  skip_after_block: false\n")
    )
    assert not policy.for_tenant("acme").guards.skip_after_block
    assert not load_policy_text(BASE).guards.skip_after_block


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip("\n").splitlines()) + "\n"
