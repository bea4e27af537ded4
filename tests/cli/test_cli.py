"""The `tether` command, driven in-process (fast) and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tether import __version__
from tether.cli import cli

ROOT = Path(__file__).resolve().parents[2]
BANK = str(ROOT / "examples/bank/policy.yaml")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out


def test_policy_check_ok_lists_tenants() -> None:
    code, out, _ = run("policy", "check", BANK)
    assert code == 0
    assert "ok bank-support@" in out and "northbank" in out and "southbank" in out


def test_policy_check_loosening_overlay_fails_naming_the_field() -> None:
    code, _, err = run("policy", "check", str(ROOT / "examples/bank/loosening-overlay.yaml"))
    assert code == 2
    assert "loosening-overlay.yaml:18:11: tenants.laxbank.guards.input[0].action" in err
    assert "weakens guard 'investment' action from block to log" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: x\nidentity: {purpose: [unclosed\n", "p.yaml:3:1: invalid YAML"),
        (
            "name: x\nidentity: {purpose: p}\ncolour: red\n",
            "p.yaml:3:1: colour: unknown field 'colour'",
        ),
        (
            "name: x\nidentity: {purpose: p}\nmodel: {seed: many}\n",
            "p.yaml:3:9: model.seed: Input should be a valid integer",
        ),
    ],
)
def test_policy_check_bad_files_one_clear_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(content)
    code, out, err = run("policy", "check", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: " + str(tmp_path) + "/" + expected)
    assert "Traceback" not in err + out


def test_policy_compile_is_deterministic_and_json() -> None:
    first = run("policy", "compile", BANK, "--tenant", "northbank", "--json")
    second = run("policy", "compile", BANK, "--tenant", "northbank", "--json")
    assert first == second and first[0] == 0
    doc = json.loads(first[1])
    assert doc["version"].startswith("bank-support/northbank@")
    assert doc["messages"][0]["role"] == "system" and "North Bank" in doc["messages"][0]["content"]


def test_policy_compile_unknown_tenant() -> None:
    code, _, err = run("policy", "compile", BANK, "--tenant", "eastbank")
    assert code == 2 and "unknown tenant 'eastbank'" in err


def test_policy_schema_is_json_schema() -> None:
    code, out, _ = run("policy", "schema")
    doc = json.loads(out)
    assert code == 0 and doc["title"] == "tether policy"
    assert "tenant" not in doc["properties"] and "identity" in doc["required"]
    rules = doc["$defs"]["GuardConfig"]["allOf"]
    length = next(r for r in rules if r["if"]["properties"]["guard"]["const"] == "length")
    assert "max_chars" in length["then"]["properties"]["params"]["properties"]


def test_policy_schema_validates_the_examples_and_catches_bad_params() -> None:
    import jsonschema
    import yaml

    schema = json.loads(run("policy", "schema")[1])
    for path in ["examples/bank/policy.yaml", "examples/clinic/policy.yaml"]:
        jsonschema.validate(yaml.safe_load((ROOT / path).read_text()), schema)
    bad = {
        "name": "x",
        "identity": {"purpose": "p"},
        "guards": {"input": [{"guard": "length", "params": {"max_chars": "many"}}]},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_chat_blocked_turn_shows_action_line_and_json(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    code, out, _ = run(
        "chat",
        "--policy",
        BANK,
        "--tenant",
        "southbank",
        "-m",
        "Should I buy bitcoin?",
        "--model",
        "scripted:" + str(_replies(tmp_path, ["never used"])),
        "--events",
        str(events),
    )
    assert code == 0
    assert "can't give investment advice" in out
    assert "blocked (input) by investment" in out and "matched 'bitcoin'" in out
    code, out, _ = run(
        "chat",
        "--policy",
        BANK,
        "--tenant",
        "southbank",
        "-m",
        "Should I buy bitcoin?",
        "--json",
        "--model",
        "scripted:" + str(_replies(tmp_path, ["never used"])),
    )
    doc = json.loads(out)
    assert doc["action"] == "block" and doc["policy_version"].startswith("bank-support/southbank@")
    assert doc["verdicts"] and all("reason" in v for v in doc["verdicts"])
    assert json.loads(events.read_text())["action"] == "block"


def test_chat_repl_keeps_history(tmp_path: Path) -> None:
    replies = _replies(tmp_path, ["Hello!", "Still here."])
    result = CliRunner().invoke(
        cli,
        ["chat", "--policy", BANK, "--model", f"scripted:{replies}"],
        # A follow-up judged with the turn before it ("and now?" after "hi" is not one).
        input="how do I reset my card PIN?\nand in the app?\n/reset\n",
    )
    assert result.exit_code == 0
    assert (
        "Hello!" in result.stdout
        and "Still here." in result.stdout
        and "conversation cleared" in result.stdout
    )


def test_chat_missing_policy_is_one_line() -> None:
    code, _, err = run("chat", "--policy", "nope.yaml", "-m", "hi")
    assert code == 2 and err.strip() == "error: nope.yaml: policy file not found"


def test_real_subprocess_exit_codes() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether",
            "policy",
            "check",
            str(ROOT / "examples/bank/loosening-overlay.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr


def _replies(tmp_path: Path, replies: list[str]) -> Path:
    path = tmp_path / f"replies-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(replies))
    return path


def test_policy_compile_shows_the_guarded_or_the_plain_prompt() -> None:
    code, full, _ = run("policy", "compile", BANK, "--tenant", "northbank", "--json")
    code2, plain, _ = run(
        "policy", "compile", BANK, "--tenant", "northbank", "--json", "--stack", "prompt"
    )
    assert code == code2 == 0
    full_system = json.loads(full)["messages"][0]["content"]
    plain_system = json.loads(plain)["messages"][0]["content"]
    assert "For any other request, reply:" in plain_system
    assert "For any other request" not in full_system and "You do not help with:" in full_system
