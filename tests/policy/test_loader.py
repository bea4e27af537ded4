"""Loading policy files: every problem reported once, with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import PolicyError
from tether.policy import load_policy, load_policy_text

MINIMAL = """\
name: demo
identity:
  purpose: Answer questions about cards.
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, file="p.yaml")
    return [str(p) for p in info.value.problems]


def test_minimal_policy_loads_with_defaults() -> None:
    policy = load_policy_text(MINIMAL)
    assert policy.name == "demo"
    assert policy.identity.name == "Assistant"
    assert policy.model.spec == "embedded"
    assert policy.version.startswith("demo@")


def test_malformed_yaml_names_file_and_line() -> None:
    found = problems("name: demo\nidentity:\n  purpose: [unclosed\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:4:")
    assert "invalid YAML" in found[0]


def test_unknown_field_is_an_error_with_line_and_suggestion() -> None:
    found = problems(MINIMAL + "scope:\n  allowed_topic: []\n")
    assert found == [
        "p.yaml:5:3: scope.allowed_topic: unknown field 'allowed_topic'; did you mean 'allowed_topics'?"
    ]


def test_wrong_type_names_field_line_and_value() -> None:
    found = problems(MINIMAL + "model:\n  max_tokens: lots\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:5:3: model.max_tokens: Input should be a valid integer")
    assert "(got 'lots')" in found[0]


def test_missing_required_field_points_at_its_parent() -> None:
    found = problems("name: demo\nidentity:\n  name: Bob\n")
    assert found == ["p.yaml:2:1: identity.purpose: required field is missing"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = MINIMAL + "tone:\n  voyce: calm\nmodel:\n  temperature: 9\n"
    found = problems(text)
    assert len(found) == 2
    assert any("p.yaml:5:3: tone.voyce" in p for p in found)
    assert any("p.yaml:7:3: model.temperature" in p for p in found)


def test_duplicate_keys_are_errors() -> None:
    found = problems(MINIMAL + "name: other\n")
    assert found == ["p.yaml:4:1: name: duplicate key 'name' (first on line 1)"]


def test_empty_and_non_mapping_files() -> None:
    assert problems("") == ["p.yaml:1: the file is empty"]
    assert problems("- a\n- b\n") == [
        "p.yaml:1: a policy must be a YAML mapping (key: value lines)"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")


def test_unknown_template_placeholder() -> None:
    found = problems(MINIMAL + "refusal:\n  message: 'Sorry {nmae}'\n")
    assert len(found) == 1
    assert "refusal.message" in found[0]
    assert "unknown placeholder {nmae}" in found[0]


def test_unknown_guard_and_bad_params_located() -> None:
    text = MINIMAL + (
        "guards:\n"
        "  input:\n"
        "    - guard: deny_lst\n"
        "    - guard: length\n"
        "      params: {max_chars: -1, colour: red}\n"
    )
    found = problems(text)
    assert any(
        p.startswith(
            "p.yaml:6:7: guards.input[0].guard: unknown guard 'deny_lst'; did you mean 'deny_list'?"
        )
        for p in found
    )
    assert any("guards.input[1].params.max_chars" in p and p.startswith("p.yaml:8:") for p in found)
    assert any("guards.input[1].params.colour: unknown field 'colour'" in p for p in found)


def test_regex_without_linear_time_support_is_rejected_at_load() -> None:
    text = MINIMAL + (
        "guards:\n  input:\n    - guard: deny_list\n      params:\n        patterns: ['(a)\\1']\n"
    )
    found = problems(text)
    assert len(found) == 1
    assert "guards.input[0].params.patterns" in found[0]
    assert "linear-time regex engine (RE2)" in found[0]


def test_reask_on_input_and_redact_without_spans_rejected() -> None:
    text = MINIMAL + (
        "guards:\n  input:\n    - guard: length\n      action: reask\n"
        "  output:\n    - guard: length\n      action: redact\n"
    )
    found = problems(text)
    assert any("guards.input[0].action: reask is only for output guards" in p for p in found)
    assert any(
        "guards.output[0].action: guard 'length' finds no spans to redact" in p for p in found
    )


def test_duplicate_guard_ids_rejected() -> None:
    text = MINIMAL + "guards:\n  input:\n    - guard: length\n    - guard: length\n"
    found = problems(text)
    assert len(found) == 1
    assert "repeated: length" in found[0]


def test_tenant_key_in_file_rejected() -> None:
    found = problems(MINIMAL + "tenant: acme\n")
    assert found == ["p.yaml:4:1: tenant: set by choosing a tenant (--tenant), not in a file"]


def test_overlay_file_errors_point_into_the_overlay_file(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text("tone:\n  rules: [Be brief]\nconstrains: [x]\n")
    (tmp_path / "policy.yaml").write_text(MINIMAL + "tenants:\n  acme: acme.yaml\n")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "policy.yaml")
    (problem,) = info.value.problems
    assert problem.file == str(tmp_path / "acme.yaml")
    assert problem.line == 3
    assert "unknown field 'constrains'; did you mean 'constraints'?" in problem.message


def test_missing_overlay_file(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(MINIMAL + "tenants:\n  acme: nope.yaml\n")
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "policy.yaml")
    (problem,) = info.value.problems
    assert problem.line == 5
    assert "cannot read overlay file 'nope.yaml'" in problem.message


def test_json_schema_must_be_valid() -> None:
    found = problems(MINIMAL + "output:\n  format: json\n  json_schema: {type: 12}\n")
    assert len(found) == 1
    assert "output" in found[0]
    assert "not a valid JSON Schema" in found[0]
