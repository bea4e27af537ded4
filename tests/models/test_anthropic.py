"""The Anthropic client against a local server that speaks (and checks) the Messages API:
translation of OpenAI-shaped conversations, answers, tool use, streaming, retries, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from anthropic_server import API_KEY, AnthropicServer, run_anthropic_server
from tether.errors import ConfigError, ModelError, ModelHTTPError
from tether.messages import Message
from tether.models import AnthropicModel, ChatModel, load_model
from tether.models._anthropic import to_anthropic_messages

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_balance",
            "description": "The balance of an account.",
            "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
        },
    }
]


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with run_anthropic_server() as running:
        yield running


def model(server: AnthropicServer, **settings: object) -> AnthropicModel:
    return AnthropicModel("claude-test", base_url=server.url, api_key=API_KEY, **settings)  # type: ignore[arg-type]


def test_a_conversation_translates_to_alternating_turns_with_a_system_text() -> None:
    messages: list[Message] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "my balance?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_balance", "arguments": '{"id": 7}'},
                }
            ],
        },
        {"role": "tool", "content": "42 EUR", "tool_call_id": "c1"},
        {"role": "system", "content": "Never give advice."},
    ]
    system, turns = to_anthropic_messages(messages)
    assert system == "Be brief.\n\nNever give advice."
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == [
        {"type": "text", "text": "hi"},
        {"type": "text", "text": "my balance?"},
    ]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "get_balance", "input": {"id": 7}}
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "42 EUR"}
    ]


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"role": "tool", "content": "x"}, "tool_call_id"),
        (
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
            },
            "JSON arguments",
        ),
        ({"role": "robot", "content": "x"}, "unknown role"),
    ],
)
def test_a_malformed_conversation_is_named(message: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        to_anthropic_messages([{"role": "user", "content": "hi"}, message])  # type: ignore[list-item]
    assert "messages[1]" in str(caught.value)


async def test_generate_sends_the_documented_request_and_reads_the_answer(
    server: AnthropicServer,
) -> None:
    client = model(server)
    assert isinstance(client, ChatModel)
    answer = await client.generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
        temperature=0.2,
    )
    await client.aclose()
    assert answer.text == "You said: hello [system: Be brief.]"
    assert answer.model == "anthropic:claude-test"
    assert answer.finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 5)
    request, headers = server.requests[0], server.headers[0]
    assert headers["x-api-key"] == API_KEY and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert request["max_tokens"] == 1024 and request["temperature"] == 0.2
    assert request["system"] == "Be brief."


async def test_tool_use_comes_back_as_openai_tool_calls_and_the_result_goes_back(
    server: AnthropicServer,
) -> None:
    client = model(server)
    first = await client.generate([{"role": "user", "content": "what is my balance?"}], tools=TOOLS)
    assert first.finish_reason == "tool_calls"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in first.tool_calls] == [
        ("toolu_01", "get_balance", {"id": 7})
    ]
    assert server.requests[0]["tools"] == [
        {
            "name": "get_balance",
            "description": "The balance of an account.",
            "input_schema": TOOLS[0]["function"]["parameters"],  # type: ignore[index]
        }
    ]
    call = first.tool_calls[0]
    follow_up: list[Message] = [
        {"role": "user", "content": "what is my balance?"},
        {
            "role": "assistant",
            "content": first.text,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "content": "42 EUR", "tool_call_id": call.id},
    ]
    second = await client.generate(follow_up, tools=TOOLS)
    await client.aclose()
    assert second.text == "You said: 42 EUR"  # the server accepted the tool_result turn


async def test_stream_yields_the_text_deltas(server: AnthropicServer) -> None:
    client = model(server)
    pieces = [p async for p in client.stream([{"role": "user", "content": "stream this please"}])]
    await client.aclose()
    assert len(pieces) > 3
    assert "".join(pieces) == "You said: stream this please"


async def test_an_error_event_mid_stream_raises(server: AnthropicServer) -> None:
    client = model(server)
    seen: list[str] = []

    async def read() -> None:
        async for piece in client.stream([{"role": "user", "content": "fail midway now"}]):
            seen.append(piece)

    with pytest.raises(ModelHTTPError, match="Overloaded"):
        await read()
    await client.aclose()
    assert "".join(seen) == "You said"


async def test_overloaded_is_retried(server: AnthropicServer) -> None:
    server.overloaded = 2
    client = model(server, backoff_s=0.01)
    answer = await client.generate([{"role": "user", "content": "again"}])
    await client.aclose()
    assert answer.text == "You said: again"
    assert len(server.requests) == 3


async def test_a_bad_key_names_the_variable_to_set(server: AnthropicServer) -> None:
    client = AnthropicModel("claude-test", base_url=server.url, api_key="wrong")
    with pytest.raises(ModelHTTPError, match="ANTHROPIC_API_KEY") as caught:
        await client.generate([{"role": "user", "content": "hi"}])
    await client.aclose()
    assert caught.value.status == 401 and len(server.requests) == 1  # a 401 is not retried


async def test_a_rejected_request_reports_anthropics_message(server: AnthropicServer) -> None:
    client = model(server)
    with pytest.raises(ModelHTTPError, match="roles must alternate"):
        await client.generate([{"role": "assistant", "content": "I start"}])
    await client.aclose()


async def test_an_unreachable_server_is_a_model_error() -> None:
    client = AnthropicModel(
        "claude-test", base_url="http://127.0.0.1:9", api_key=API_KEY, max_retries=0
    )
    with pytest.raises(ModelError, match="could not reach"):
        await client.generate([{"role": "user", "content": "hi"}])
    await client.aclose()


def test_the_spec_names_model_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://from-env.test")
    plain = load_model("anthropic:claude-x")
    at = load_model("anthropic:claude-x@http://127.0.0.1:8080/v1")
    assert isinstance(plain, AnthropicModel) and isinstance(at, AnthropicModel)
    assert plain._url == "http://from-env.test/v1/messages"
    assert at._url == "http://127.0.0.1:8080/v1/messages"
    with pytest.raises(ConfigError, match="malformed model spec"):
        load_model("anthropic:")


async def test_a_final_assistant_turn_is_sent_as_a_prefill_to_continue(
    server: AnthropicServer,
) -> None:
    client = model(server)
    assert client.supports_prefill is True
    await client.generate(
        [{"role": "user", "content": "How do I reset my PIN?"},
         {"role": "assistant", "content": "Sure! Here is how "}]
    )  # fmt: skip
    await client.aclose()
    assert server.requests[0]["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Sure! Here is how"}],  # no trailing whitespace
    }
