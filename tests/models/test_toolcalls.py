"""Tool calls for a model without a tool format: the prompt that describes the tools, the
schema that constrains the reply, and the parsing back — without loading a model; and with
the real SmolLM2, that a constrained reply is always a well-formed call or an answer."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest

from tether.errors import ConfigError
from tether.messages import Message
from tether.models import EmbeddedModel
from tether.models._toolcalls import parse_tool_reply, tool_prompt

TRANSFER = {
    "type": "function",
    "function": {
        "name": "transfer",
        "description": "Send money.",
        "parameters": {
            "type": "object",
            "properties": {"to_account": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["to_account", "amount"],
        },
    },
}
BALANCE = {"type": "function", "function": {"name": "get_balance", "description": "The balance."}}
NAMES = frozenset({"transfer", "get_balance"})
AGENT_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent"


def test_the_prompt_lists_the_tools_and_rewrites_calls_and_results() -> None:
    messages: list[Message] = [
        {"role": "system", "content": "You are Penny."},
        {"role": "user", "content": "balance?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "function": {"name": "get_balance", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "£12"},
        {"role": "assistant", "content": "You have £12."},
        {"role": "user", "content": "send £5 to 12345678"},
    ]
    prompt = tool_prompt(messages, [TRANSFER, BALANCE])
    system = prompt.messages[0]["content"]
    assert system.startswith("You are Penny.") and "- transfer: Send money." in system
    assert '"to_account"' in system and "- get_balance: The balance." in system
    assert [m["role"] for m in prompt.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert json.loads(prompt.messages[2]["content"]) == {"tool": "get_balance", "arguments": {}}
    assert prompt.messages[3]["content"] == "Result of get_balance:\n£12"
    assert json.loads(prompt.messages[4]["content"]) == {"answer": "You have £12."}
    assert prompt.names == NAMES


def test_the_schema_admits_exactly_a_valid_call_or_an_answer() -> None:
    schema = tool_prompt([{"role": "user", "content": "x"}], [TRANSFER, BALANCE]).schema
    jsonschema.validate({"tool": "transfer", "arguments": {"to_account": "1", "amount": 2}}, schema)
    jsonschema.validate({"tool": "get_balance", "arguments": {}}, schema)
    jsonschema.validate({"answer": "hi"}, schema)
    for wrong in (
        {"tool": "transfer", "arguments": {"amount": 2}},  # a required argument missing
        {"tool": "wipe_disk", "arguments": {}},
        {"tool": "transfer", "arguments": {"to_account": "1", "amount": "lots"}},
        {"reply": "hi"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)


def test_a_system_message_is_added_when_there_is_none() -> None:
    prompt = tool_prompt([{"role": "user", "content": "x"}], [BALANCE])
    assert prompt.messages[0]["role"] == "system" and "get_balance" in prompt.messages[0]["content"]


@pytest.mark.parametrize(
    ("text", "name", "arguments", "answer"),
    [
        (
            '{"tool": "transfer", "arguments": {"to_account": "1", "amount": 2}}',
            "transfer",
            {"to_account": "1", "amount": 2},
            "",
        ),
        ('{"answer": "Hello there"}', None, None, "Hello there"),
        ('{"answer": "Cut short by the lim', None, None, "Cut short by the lim"),
        (
            '{"tool": "wipe_disk", "arguments": {}}',
            None,
            None,
            '{"tool": "wipe_disk", "arguments": {}}',
        ),
    ],
)
def test_replies_parse_back(
    text: str, name: str | None, arguments: dict[str, object] | None, answer: str
) -> None:
    reply = parse_tool_reply(text, NAMES, model="m")
    if name is None:
        assert reply.tool_calls == () and reply.text == answer
    else:
        (call,) = reply.tool_calls
        assert call.name == name and json.loads(call.arguments) == arguments
        assert reply.finish_reason == "tool_calls" and reply.text == ""


def test_a_definition_without_a_name_is_named() -> None:
    with pytest.raises(ConfigError, match=r"tools\[1\]: .*function.name"):
        tool_prompt(
            [{"role": "user", "content": "x"}], [BALANCE, {"type": "function", "function": {}}]
        )


@pytest.mark.embedded
async def test_smollm2_replies_with_a_well_formed_call_or_an_answer() -> None:
    model = EmbeddedModel()
    schema = tool_prompt([{"role": "user", "content": "x"}], [TRANSFER, BALANCE]).schema
    for request in (
        "Please transfer 250 pounds to account 12345678",
        "What is my balance?",
        "Hello!",
    ):
        reply = await model.generate(
            [{"role": "user", "content": request}],
            tools=[TRANSFER, BALANCE],
            temperature=0,
            max_tokens=96,
        )
        assert reply.usage.completion_tokens > 0
        for call in reply.tool_calls:
            jsonschema.validate(
                {"tool": call.name, "arguments": json.loads(call.arguments)}, schema
            )
        assert reply.tool_calls or reply.text


def _bank() -> ModuleType:
    name = "tether_example_bank_embedded"
    spec = importlib.util.spec_from_file_location(name, AGENT_EXAMPLE / "bank.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.embedded
async def test_the_agent_loop_runs_on_smollm2_and_moves_no_money_without_a_person() -> None:
    from tether.pipeline import Guardrails
    from tether.policy import load_policy

    bank = _bank()
    policy = load_policy(AGENT_EXAMPLE / "policy.yaml")
    rails = Guardrails(policy, model=EmbeddedModel(), tools=bank.TOOLS)
    reply = await rails.chat("Please transfer £250 to account 12345678")
    assert not bank.BANK.money_moved
    assert reply.steps >= 1
    for record in reply.tool_calls:
        assert record.tool in {t.name for t in bank.TOOLS} or record.decision == "deny"
        if record.side_effect == "destructive":
            assert record.status in ("pending", "denied")
