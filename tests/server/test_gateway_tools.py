"""Tool calls through the gateway with the openai SDK: the client's own tools are offered as
the tenant's policy allows, every call passes the tool gate before the client sees it, an
injected tool result cannot make the client move money, a destructive call waits for an
approval that is decided and resumed over HTTP, and no tenant can touch another's."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from gateway_harness import RunningGateway

from tether.models import ScriptedModel
from tether.server import GatewayConfig, TenantConfig

AGENT_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent"


@pytest.fixture
def bank() -> ModuleType:
    name = "tether_example_bank_gateway"
    spec = importlib.util.spec_from_file_location(name, AGENT_EXAMPLE / "bank.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def agent_gateway(
    bank: ModuleType,
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    policies: dict[str, Path],
) -> RunningGateway:
    config = make_config(
        tenants={
            "bank": TenantConfig(policy=AGENT_EXAMPLE / "policy.yaml"),
            "acme": TenantConfig(policy=policies["support"]),
        }
    )
    model = ScriptedModel([bank.obedient_agent], repeat_last=True, name="echo")
    return start_gateway(config, {"echo": model})


def tools(bank: ModuleType) -> list[dict[str, Any]]:
    return [t.openai_schema() for t in bank.TOOLS]


def run_locally(bank: ModuleType, message: Any) -> list[dict[str, Any]]:
    """The client runs the calls it was handed and writes the messages to send back."""
    functions = {t.name: t for t in bank.TOOLS}
    out: list[dict[str, Any]] = [message.model_dump(exclude_none=True)]
    for call in message.tool_calls:
        result = functions[call.function.name](**json.loads(call.function.arguments))
        out.append({"role": "tool", "tool_call_id": call.id, "content": str(result)})
    return out


def test_a_read_call_goes_to_the_client_and_its_result_is_answered(
    agent_gateway: RunningGateway, bank: ModuleType
) -> None:
    client = agent_gateway.openai(agent_gateway.new_key("bank"))
    messages: list[Any] = [{"role": "user", "content": "What's my balance?"}]
    first = client.chat.completions.create(model="bank-agent", messages=messages, tools=tools(bank))
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or ()] == ["get_balance"]
    messages += run_locally(bank, choice.message)
    second = client.chat.completions.create(
        model="bank-agent", messages=messages, tools=tools(bank)
    )
    assert second.choices[0].finish_reason == "stop"
    assert "12,400.50" in (second.choices[0].message.content or "")


def test_streaming_with_tools_sends_the_calls_as_deltas(
    agent_gateway: RunningGateway, bank: ModuleType
) -> None:
    client = agent_gateway.openai(agent_gateway.new_key("bank"))
    stream = client.chat.completions.create(
        model="bank-agent",
        messages=[{"role": "user", "content": "Show my recent transactions"}],
        tools=tools(bank),
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                entry = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                entry["name"] += (delta.function.name or "") if delta.function else ""
                entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls == {0: {"name": "list_transactions", "arguments": '{"limit": 50}'}}


def test_an_injected_document_cannot_make_the_client_move_money(
    agent_gateway: RunningGateway, bank: ModuleType
) -> None:
    client = agent_gateway.openai(agent_gateway.new_key("bank"))
    messages: list[Any] = [{"role": "user", "content": "What does an arranged overdraft cost?"}]
    handed = []
    for _ in range(4):
        answer = client.chat.completions.create(
            model="bank-agent", messages=messages, tools=tools(bank)
        )
        message = answer.choices[0].message
        if not message.tool_calls:
            break
        handed += [c.function.name for c in message.tool_calls]
        messages += run_locally(bank, message)
    assert handed == ["search_docs"]
    assert not bank.BANK.money_moved and bank.BANK.emails == []


def test_approval_over_http_then_resume_hands_the_call_over(
    agent_gateway: RunningGateway, bank: ModuleType
) -> None:
    key = agent_gateway.new_key("bank")
    client = agent_gateway.openai(key)
    asked = client.chat.completions.create(
        model="bank-agent",
        messages=[{"role": "user", "content": "Please transfer £250 to account 12345678"}],
        tools=tools(bank),
    )
    extra = asked.model_extra or {}
    approval_id = extra["tether"]["pending_approval"]
    assert approval_id and asked.choices[0].finish_reason == "content_filter"
    assert not asked.choices[0].message.tool_calls
    with agent_gateway.http(key) as http:
        early = http.post(f"/v1/approvals/{approval_id}/resume")
        assert early.status_code == 400 and "still pending" in early.text
        shown = http.get(f"/v1/approvals/{approval_id}").json()
        assert shown["tool"] == "transfer" and shown["tenant"] == "bank"
        decided = http.post(
            f"/v1/approvals/{approval_id}/approve",
            json={"approver": "alice", "arguments": {"to_account": "12345678", "amount": 100.0}},
        )
        assert decided.status_code == 200, decided.text
        resumed = http.post(f"/v1/approvals/{approval_id}/resume")
        assert resumed.status_code == 200, resumed.text
        again = http.post(f"/v1/approvals/{approval_id}/resume")
    body = resumed.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "transfer"
    assert json.loads(call["function"]["arguments"]) == {"to_account": "12345678", "amount": 100.0}
    (record,) = body["tether"]["tool_calls"]
    assert record["approver"] == "alice" and record["status"] == "returned"
    assert again.status_code == 400 and "already resumed" in again.text


def test_another_tenant_cannot_resume_or_see_the_approval(
    agent_gateway: RunningGateway, bank: ModuleType
) -> None:
    key = agent_gateway.new_key("bank")
    asked = agent_gateway.openai(key).chat.completions.create(
        model="bank-agent",
        messages=[{"role": "user", "content": "Please transfer £250 to account 12345678"}],
        tools=tools(bank),
    )
    approval_id = (asked.model_extra or {})["tether"]["pending_approval"]
    with agent_gateway.http(agent_gateway.new_key("acme")) as http:
        assert http.get(f"/v1/approvals/{approval_id}").status_code == 404
        assert http.post(f"/v1/approvals/{approval_id}/approve", json={}).status_code == 404
        resumed = http.post(f"/v1/approvals/{approval_id}/resume")
        assert resumed.status_code == 400 and "no approval" in resumed.text
    with agent_gateway.http(key) as http:
        assert http.get(f"/v1/approvals/{approval_id}").json()["status"] == "pending"


def test_a_tenant_whose_policy_lists_no_tools_offers_none(
    agent_gateway: RunningGateway, bank: ModuleType
) -> None:
    client = agent_gateway.openai(agent_gateway.new_key("acme"))
    answer = client.chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "What's my balance?"}],
        tools=tools(bank),
    )
    # The obedient model asks for get_balance anyway: not offered, so the gate denies it.
    assert not answer.choices[0].message.tool_calls
    records = (answer.model_extra or {})["tether"]["tool_calls"]
    assert (records[0]["tool"], records[0]["decision"]) == ("get_balance", "deny")
