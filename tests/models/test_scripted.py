from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.errors import ConfigError, ModelError
from tether.messages import Message
from tether.models import ChatModel, ModelResponse, ScriptedModel, ToolCall

HELLO: list[Message] = [{"role": "user", "content": "hello"}]


def test_is_a_chat_model() -> None:
    assert isinstance(ScriptedModel(["hi"]), ChatModel)


async def test_replies_in_order_then_runs_out() -> None:
    model = ScriptedModel(["one", "two"])
    first = await model.generate(HELLO)
    second = await model.generate(HELLO)
    assert (first.text, second.text) == ("one", "two")
    assert first.model == "scripted"
    assert first.finish_reason == "stop"
    with pytest.raises(ModelError, match="ran out of replies after 2 calls"):
        await model.generate(HELLO)


async def test_repeat_last() -> None:
    model = ScriptedModel(["one", "again"], repeat_last=True)
    texts = [(await model.generate(HELLO)).text for _ in range(4)]
    assert texts == ["one", "again", "again", "again"]


def test_repeat_last_needs_a_reply() -> None:
    with pytest.raises(ConfigError, match="at least one reply"):
        ScriptedModel([], repeat_last=True)


async def test_records_copies_of_every_calls_messages() -> None:
    model = ScriptedModel(["a", "b"])
    conversation: list[Message] = [{"role": "user", "content": "first"}]
    await model.generate(conversation)
    conversation[0]["content"] = "changed"
    conversation.append({"role": "assistant", "content": "a"})
    await model.generate(conversation)
    assert model.calls == [
        [{"role": "user", "content": "first"}],
        [{"role": "user", "content": "changed"}, {"role": "assistant", "content": "a"}],
    ]


async def test_callable_and_model_response_replies() -> None:
    canned = ModelResponse(
        text="",
        model="scripted",
        tool_calls=(ToolCall(id="call_1", name="lookup", arguments='{"q": "x"}'),),
        finish_reason="tool_calls",
    )
    model = ScriptedModel([lambda messages: messages[-1]["content"].upper(), canned])
    assert (await model.generate(HELLO)).text == "HELLO"
    assert await model.generate(HELLO) is canned


async def test_stream_yields_the_reply_in_chunks() -> None:
    model = ScriptedModel(["The quick brown fox. "])
    chunks = [chunk async for chunk in model.stream(HELLO)]
    assert len(chunks) > 1
    assert "".join(chunks) == "The quick brown fox. "
    assert model.calls == [HELLO]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_from_yaml_file(tmp_path: Path) -> None:
    replies = write(
        tmp_path / "replies.yaml",
        "- Hello there.\n"
        "- text: Let me look.\n"
        "  tool_calls:\n"
        "    - name: search\n"
        "      arguments: {query: refunds}\n",
    )
    model = ScriptedModel.from_file(replies)
    assert (await model.generate(HELLO)).text == "Hello there."
    second = await model.generate(HELLO)
    assert second.text == "Let me look."
    assert second.finish_reason == "tool_calls"
    assert second.tool_calls == (
        ToolCall(id="call_2_0", name="search", arguments='{"query": "refunds"}'),
    )


async def test_from_json_file(tmp_path: Path) -> None:
    replies = write(
        tmp_path / "replies.json",
        json.dumps(["a", {"tool_calls": [{"id": "t1", "name": "f", "arguments": "{}"}]}]),
    )
    model = ScriptedModel.from_file(replies, repeat_last=True)
    assert (await model.generate(HELLO)).text == "a"
    for _ in range(2):
        assert (await model.generate(HELLO)).tool_calls == (
            ToolCall(id="t1", name="f", arguments="{}"),
        )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("replies.txt", "- a\n", r"must be a \.json, \.yaml or \.yml file"),
        ("replies.yaml", "- a\n- [b\n", r"replies\.yaml:3:1: invalid YAML: while parsing"),
        ("replies.json", '["a",\n oops]', r"replies\.json:2:2: invalid JSON"),
        ("replies.yaml", "text: a\n", "must be a non-empty list"),
        ("replies.yaml", "[]\n", "must be a non-empty list"),
        ("replies.yaml", "- a\n- 3\n", "reply 2: must be a string or a mapping"),
        ("replies.yaml", "- txt: a\n", "reply 1: txt: Extra inputs are not permitted"),
        ("replies.yaml", "- tool_calls: [{arguments: '{}'}]\n", r"tool_calls\.0\.name: Field"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ScriptedModel.from_file(write(tmp_path / name, content))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scripted replies"):
        ScriptedModel.from_file(tmp_path / "absent.yaml")
