"""The foundation's acceptance checks, on the real embedded model and the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether import Guardrails, load_policy_text

pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[2]
TETHER = shutil.which("tether", path=str(Path(sys.executable).parent)) or "tether"


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TETHER, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.mark.parametrize("tenant", ["northbank", "southbank"])
def test_bank_pin_question_answered_by_the_embedded_model_with_policy_version(tenant: str) -> None:
    def ask() -> dict[str, Any]:
        done = tether(
            "chat",
            "--policy",
            "examples/bank/policy.yaml",
            "--tenant",
            tenant,
            "-m",
            "How do I reset my card PIN?",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    doc = ask()
    if doc["action"] == "block":
        # The answer is sampled (each turn's canary makes its prompt new), and an output guard
        # may rightly stop a draft, such as one with an invented name and phone number. It
        # happened once in a CI run of 2026-11-29 (which guard was not recorded; the assertion
        # below now says) and in none of 81 samples after it. A fresh draft must get through.
        doc = ask()
    assert doc["model"] == "embedded:SmolLM2-135M-Instruct"
    assert doc["policy_version"].startswith(f"bank-support/{tenant}@")
    flagged = [v for v in doc["verdicts"] if v.get("flagged") or v.get("error")]
    assert doc["action"] in ("allow", "redact"), (doc["text"], flagged)
    assert doc["text"].strip()
    assert doc["usage"]["completion_tokens"] > 0
    assert doc["latency"]["model_ms"] > 0
    assert {v["guard"] for v in doc["verdicts"]} >= {
        "length",
        "invisible_text",
        "investment",
        "no_card_echo",
    }


def test_deny_listed_request_blocked_without_json_shows_the_action() -> None:
    done = tether(
        "chat",
        "--policy",
        "examples/bank/policy.yaml",
        "--tenant",
        "northbank",
        "-m",
        "Should I buy bitcoin?",
    )
    assert done.returncode == 0
    assert (
        "I'm sorry, I can't give investment advice. North Bank can put you in touch" in done.stdout
    )
    assert "blocked (input) by investment" in done.stdout and "matched 'bitcoin'" in done.stdout


def test_clinic_escalates_emergencies_before_the_model() -> None:
    done = tether(
        "chat", "--policy", "examples/clinic/policy.yaml", "-m", "My dad has chest pain", "--json"
    )
    doc = json.loads(done.stdout)
    assert doc["action"] == "escalate" and "Call 999" in doc["text"]
    assert doc["usage"]["completion_tokens"] == 0


async def test_json_policy_on_the_embedded_model_gives_valid_json_or_a_clear_failure() -> None:
    policy = load_policy_text(
        """
name: triage
identity: {purpose: Sort customer messages into a topic.}
examples:
  - {user: My card is stuck in the ATM, assistant: '{"topic": "cards"}'}
  - {user: I want a bigger loan, assistant: '{"topic": "loans"}'}
output:
  format: json
  max_reasks: 2
  json_schema: {type: object, required: [topic], properties: {topic: {enum: [cards, loans, other]}}}
model: {max_tokens: 40, temperature: 0}
"""
    )
    reply = await Guardrails(policy).chat("I lost my debit card yesterday")
    if reply.action == "allow":
        assert json.loads(reply.text)["topic"] in ("cards", "loans", "other")
    else:
        assert reply.action == "block"
        assert reply.text == "Sorry, I couldn't produce a valid answer. Please try again."
        assert reply.reasks == 2
        assert reply.actions[-1].reason.startswith("still failing after 2 re-asks")


def test_make_demo_runs_the_main_job() -> None:
    if not (ROOT / ".venv" / ".tether-installed").exists() or Path(sys.prefix) != ROOT / ".venv":
        pytest.skip("make demo is exercised where the suite runs from the Makefile's .venv")
    done = subprocess.run(
        ["make", "-s", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
