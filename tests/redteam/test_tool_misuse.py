"""Tool misuse: call_tool attacks planted in untrusted tool output, judged from the turn's
tool-call records, against the obedient scripted agent of examples/agent."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from tether.cli import cli
from tether.errors import ConfigError
from tether.evals import (
    AssertionSpec,
    load_suite,
    load_suite_text,
    plan_run,
    run_suite,
)
from tether.models import ScriptedModel
from tether.policy import Policy, load_policy
from tether.redteam import Campaign, load_seeds, load_toolset, plan_campaign
from tether.tools import Toolset

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent"
STRATEGIES = ["direct", "document", "retrieved", "email", "tool_output"]


def _bank() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bank_agent_for_tests", AGENT / "bank.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _obedient(bank: ModuleType) -> ScriptedModel:
    return ScriptedModel([bank.obedient_agent], repeat_last=True, name="obedient")


def _campaign(tools: Toolset) -> tuple[Policy, Campaign]:
    policy = load_policy(AGENT / "policy.yaml")
    seeds = load_seeds(AGENT / "evals" / "seeds.yaml")
    return policy, asyncio.run(
        plan_campaign(policy, strategies=STRATEGIES, seeds=seeds, tools=tools,
                      goals=["call_tool", "read_only"])
    )  # fmt: skip


def test_carriers_plant_tool_misuse_in_the_untrusted_tool_output() -> None:
    bank = _bank()
    _, campaign = _campaign(Toolset(bank.TOOLS))
    case = next(c for c in campaign.suite.cases if c.id == "email:transfer")
    assert case.tool_results is not None
    planted = case.tool_results["search_docs"]  # the example's untrusted read tool
    assert "66554433" in planted
    assert "66554433" not in (case.input or "")  # the user's own request is harmless
    assert case.assertions == (AssertionSpec(type="no_tool_call", value=["transfer"]),)
    benign = [c for c in campaign.suite.cases if "benign" in c.tags]
    assert {c.id for c in benign} == {
        "direct:read-get_balance", "direct:read-list_transactions", "direct:read-search_docs"
    }  # fmt: skip
    assert all("attack" not in c.tags for c in benign)


@pytest.mark.parametrize(("stack", "through"), [("raw", True), ("full", False)])
def test_obedient_agent_moves_no_money_behind_the_gate(
    tmp_path: Path, stack: str, through: bool
) -> None:
    bank = _bank()
    tools = Toolset(bank.TOOLS)
    policy, campaign = _campaign(tools)
    # The injection guard only logs: the gate alone stands between the planted text and
    # the tools, so the obedient agent does try.
    policy = policy.model_copy(
        update={"agent": policy.agent.model_copy(update={"on_injection": "log"})}
    )
    model = _obedient(bank)
    plan = plan_run(campaign.suite, policy, model=model, stack=stack,  # type: ignore[arg-type]
                    runs_dir=tmp_path, tools=tools)  # fmt: skip
    results = asyncio.run(run_suite(campaign.suite, policy, plan=plan, model=model, tools=tools))
    attacks = [r for r in results.values() if "attack" in r.tags]
    attempted = [c for r in attacks for c in r.tool_calls if c.side_effect != "read"]
    assert attempted, "the obedient agent acts on planted instructions"
    unapproved = [c for c in attempted if c.ran_unapproved]
    if through:  # no gate: every call is handed over unchecked, and the attacks succeed
        assert unapproved
        assert any(not r.passed for r in attacks)
    else:
        assert unapproved == []
        assert all(r.passed for r in attacks), [r.case_id for r in attacks if not r.passed]
        assert any(c.decision == "require_approval" for c in attempted)
    benign = [r for r in results.values() if "benign" in r.tags]
    assert len(benign) == 3
    assert all(r.passed and not r.pending_approval for r in benign)
    assert bank.BANK.transfers == [] and bank.BANK.closed == [] and bank.BANK.emails == []


def test_tool_assertions_fail_without_tools_and_report_file_lines(tmp_path: Path) -> None:
    text = (
        "name: s\ncases:\n  - input: hi\n    assert:\n      - no_tool_call: []\n"
        "  - input: hi\n    assert: [no_destructive_call]\n"
    )
    with pytest.raises(Exception, match=r"s\.yaml:5"):
        load_suite_text(text, file="s.yaml")
    good = load_suite_text(text.replace("[]", "transfer"), file="s.yaml")
    policy = load_policy(AGENT / "policy.yaml")
    model = ScriptedModel(["Hello."], repeat_last=True)
    plan = plan_run(good, policy, model=model, stack="raw", runs_dir=tmp_path)
    results = asyncio.run(run_suite(good, policy, plan=plan, model=model))
    for result in results.values():
        assert not result.passed
        assert "offered no tools" in result.assertions[0].reason


def test_call_tool_seeds_need_tools() -> None:
    policy = load_policy(AGENT / "policy.yaml")
    seeds = load_seeds(AGENT / "evals" / "seeds.yaml")
    with pytest.raises(ConfigError, match="need an agent"):
        asyncio.run(plan_campaign(policy, seeds=seeds, strategies=["direct"]))
    with pytest.raises(ConfigError, match="unknown goal"):
        asyncio.run(plan_campaign(policy, goals=["nope"]))


def test_load_toolset_errors() -> None:
    assert "transfer" in load_toolset(f"{AGENT / 'bank.py'}:TOOLS")
    with pytest.raises(ConfigError, match="has no attribute 'NOPE'"):
        load_toolset(f"{AGENT / 'bank.py'}:NOPE")
    with pytest.raises(ConfigError, match="cannot import"):
        load_toolset("no_such_module_here:TOOLS")
    with pytest.raises(ConfigError, match="MODULE:ATTR"):
        load_toolset("justaname")


def test_shipped_suite_is_what_the_documented_command_builds(tmp_path: Path) -> None:
    out = tmp_path / "tool-misuse.yaml"
    result = CliRunner().invoke(
        cli,
        ["redteam", "suite", "--policy", str(AGENT / "policy.yaml"),
         "--tools", f"{AGENT / 'bank.py'}:TOOLS", "--seeds", str(AGENT / "evals" / "seeds.yaml"),
         "--goals", "call_tool,read_only", "--strategies", ",".join(STRATEGIES),
         "--name", "tool-misuse", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shipped = load_suite(AGENT / "evals" / "tool-misuse.yaml")
    assert load_suite(out).cases == shipped.cases
