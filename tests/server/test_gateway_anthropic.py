"""A tenant whose upstream is Anthropic's Messages API: an OpenAI client talks to the gateway,
the gateway talks Anthropic (to a local server that checks the Messages API), both ways guarded
and recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from gateway_harness import RunningGateway

from anthropic_server import API_KEY, AnthropicServer, run_anthropic_server
from tether.server import GatewayConfig


@pytest.fixture
def anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[AnthropicServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    with run_anthropic_server() as server:
        yield server


def test_an_openai_client_reaches_an_anthropic_upstream(
    anthropic: AnthropicServer,
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
) -> None:
    spec = f"anthropic:claude-test@{anthropic.url}"
    gateway = start_gateway(make_config(model=spec), {})
    client = gateway.openai(gateway.new_key("acme"))
    answer = client.chat.completions.create(
        model="support", messages=[{"role": "user", "content": "where is my parcel?"}]
    )
    text = answer.choices[0].message.content or ""
    assert text.startswith("You said: where is my parcel?")
    assert answer.usage is not None and answer.usage.prompt_tokens == 11
    # The gateway's compiled system prompt went as Anthropic's top-level system text.
    sent = anthropic.requests[-1]
    assert sent["system"] and all(t["role"] in ("user", "assistant") for t in sent["messages"])

    stream = client.chat.completions.create(
        model="support", messages=[{"role": "user", "content": "stream it"}], stream=True
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed.startswith("You said: stream it")

    with gateway.http(gateway.new_key("acme")) as http:
        events = http.get("/v1/events").json()["data"]
    assert {e["model"] for e in events} == {spec.split("@")[0]}
    assert len(events) == 2


def test_an_anthropic_failure_is_a_502_and_recorded(
    anthropic: AnthropicServer,
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "revoked")
    gateway = start_gateway(make_config(model=f"anthropic:claude-test@{anthropic.url}"), {})
    key = gateway.new_key("acme")
    with gateway.http(key) as http:
        answer = http.post(
            "/v1/chat/completions",
            json={"model": "support", "messages": [{"role": "user", "content": "hi"}]},
        )
        events = http.get("/v1/events").json()["data"]
    assert answer.status_code == 502, answer.text
    assert "ANTHROPIC_API_KEY" in answer.json()["error"]["message"]
    assert [e["action"] for e in events] == ["error"]
