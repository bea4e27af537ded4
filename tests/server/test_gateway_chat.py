"""The OpenAI-compatible API through the official `openai` SDK, against a real uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from gateway_harness import RunningGateway

from tether.errors import ModelError
from tether.messages import Message
from tether.models import ScriptedModel
from tether.server import GatewayConfig

USER = [{"role": "user", "content": "How do I reset my password?"}]


def test_models_lists_the_policy_and_the_upstream(gateway: RunningGateway, acme_key: str) -> None:
    ids = [m.id for m in gateway.openai(acme_key).models.list()]
    assert ids == ["support", "echo"]


def test_chat_answers_in_openai_shape_and_records_the_event(
    gateway: RunningGateway, acme_key: str
) -> None:
    client = gateway.openai(acme_key)
    completion = client.chat.completions.create(
        model="support",
        messages=USER,
        user="user-42",
        extra_headers={"X-Tether-Conversation": "c1"},
    )
    assert completion.object == "chat.completion" and completion.model == "support"
    (choice,) = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "You said: How do I reset my password?"
    assert choice.finish_reason == "stop"
    tether: dict[str, Any] = completion.tether  # type: ignore[attr-defined]
    assert tether["action"] == "allow" and tether["flagged"] == []
    assert tether["policy_version"].startswith("support@")
    assert completion.id == f"chatcmpl-{tether['event_id']}"
    with gateway.http(acme_key) as http:
        event = http.get(f"/v1/events/{tether['event_id']}").json()
    assert event["tenant"] == "acme" and event["user"] == "user-42"
    assert event["conversation_id"] == "c1" and event["model"] == "echo"
    assert event["input"] == "How do I reset my password?"
    assert event["policy_version"] == tether["policy_version"]


def test_a_blocked_turn_answers_with_the_refusal(gateway: RunningGateway, acme_key: str) -> None:
    completion = gateway.openai(acme_key).chat.completions.create(
        model="support", messages=[{"role": "user", "content": "Should I buy bitcoin?"}]
    )
    (choice,) = completion.choices
    assert choice.message.content == "Sorry, I can't help with that."
    assert choice.finish_reason == "content_filter"
    tether: dict[str, Any] = completion.tether  # type: ignore[attr-defined]
    assert tether["action"] == "block"
    assert [f["guard"] for f in tether["flagged"]] == ["crypto"]
    assert tether["flagged"][0]["reason"] == "matched 'bitcoin'"
    assert completion.usage is not None and completion.usage.completion_tokens == 0


def test_output_redaction(gateway: RunningGateway, acme_key: str) -> None:
    completion = gateway.openai(acme_key).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "my card is 4111 1111 1111 1111"}]
    )
    text = completion.choices[0].message.content or ""
    assert "4111" not in text and text.startswith("You said: my card is [")
    assert completion.tether["action"] == "redact"  # type: ignore[attr-defined]


def test_system_developer_and_content_parts_are_accepted(
    gateway: RunningGateway, acme_key: str
) -> None:
    completion = gateway.openai(acme_key).chat.completions.create(
        model="support",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "part one, "}]},
            {"role": "assistant", "content": "Go on."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "and "}, {"type": "text", "text": "two"}],
            },
        ],
    )
    assert completion.choices[0].message.content == "You said: and two"


def test_stream_arrives_in_pieces_and_ends_with_the_summary(
    gateway: RunningGateway, acme_key: str
) -> None:
    stream = gateway.openai(acme_key).chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": "one two three four five six seven eight"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 2
    assert "".join(pieces) == "You said: one two three four five six seven eight"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert finals[0].tether["action"] == "allow"  # type: ignore[attr-defined]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len({c.id for c in chunks}) == 1


def test_a_blocked_stream_never_shows_the_secret(gateway: RunningGateway, acme_key: str) -> None:
    secret = "sk-" + "abcdefghij" * 3
    stream = gateway.openai(acme_key).chat.completions.create(
        model="support",
        messages=[{"role": "user", "content": f"one two three {secret} four five"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "sk-" not in text
    assert text.endswith("Sorry, I can't help with that.")
    final = chunks[-1]
    assert final.choices[0].finish_reason == "content_filter"
    assert final.tether["action"] == "block"  # type: ignore[attr-defined]


def failing(messages: list[Message]) -> str:
    raise ModelError("upstream exploded")


def test_upstream_failure_is_a_502_and_still_recorded(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(
        make_config(), {"echo": ScriptedModel([failing], repeat_last=True, name="echo")}
    )
    key = gateway.new_key("acme")
    client = gateway.openai(key)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="support", messages=USER)
    assert caught.value.status_code == 502
    assert "upstream exploded" in caught.value.message
    with pytest.raises(openai.APIStatusError) as streamed:
        list(client.chat.completions.create(model="support", messages=USER, stream=True))
    assert streamed.value.status_code == 502
    with gateway.http(key) as http:
        events = http.get("/v1/events").json()["data"]
    assert [e["action"] for e in events] == ["error", "error"]
    assert all("upstream exploded" in e["error"] for e in events)


def test_feedback_on_an_answer(gateway: RunningGateway, acme_key: str) -> None:
    completion = gateway.openai(acme_key).chat.completions.create(model="support", messages=USER)
    event_id = completion.tether["event_id"]  # type: ignore[attr-defined]
    with gateway.http(acme_key) as http:
        saved = http.post("/v1/feedback", json={"event_id": event_id, "rating": 1, "comment": "ok"})
    assert saved.status_code == 201 and saved.json()["event_id"] == event_id
    assert gateway.gateway.store.list_feedback("acme")[0].comment == "ok"
