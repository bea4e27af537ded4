"""A slow or failing upstream: 504 on a timeout, 502 on a failure, a circuit breaker that
stops calling it for a while — and every turn still recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from gateway_harness import RunningGateway

from tether.errors import ModelError
from tether.messages import Message
from tether.models import ModelResponse
from tether.server import GatewayConfig, Upstream

CHAT = "/v1/chat/completions"
HELLO = {"model": "support", "messages": [{"role": "user", "content": "hello"}]}


class Flaky:
    """An upstream that answers, hangs or fails, as the test says; it counts its calls."""

    name = "echo"

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0

    async def generate(self, messages: Sequence[Message], **_: Any) -> ModelResponse:
        self.calls += 1
        if self.mode == "hang":
            await asyncio.sleep(30)
        if self.mode == "fail":
            raise ModelError("upstream said 500")
        return ModelResponse(text="fine", model=self.name)

    async def stream(self, messages: Sequence[Message], **_: Any) -> AsyncIterator[str]:
        self.calls += 1
        for _ in range(10):  # enough to pass the hold-back: the client gets a first piece
            yield "fine "
        if self.mode == "hang":
            await asyncio.sleep(30)
        yield "again"


def test_timeout_is_a_504_and_the_turn_is_recorded(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    upstream = Flaky()
    upstream.mode = "hang"
    gateway = start_gateway(make_config(upstream=Upstream(timeout_s=0.3)), {"echo": upstream})
    key = gateway.new_key("acme")
    with gateway.http(key) as http:
        answer = http.post(CHAT, json=HELLO)
        assert answer.status_code == 504, answer.text
        error = answer.json()["error"]
        assert error["type"] == "upstream_timeout" and "timed out after 0.3 s" in error["message"]
        streamed = http.post(CHAT, json={**HELLO, "stream": True})
        events = http.get("/v1/events").json()["data"]
    assert streamed.status_code == 200  # the first piece came in time; the second did not
    assert streamed.text.split("data: ")[-1].startswith('{"error"')
    assert "[DONE]" not in streamed.text
    assert [e["action"] for e in events] == ["error", "error"]
    assert "timed out" in events[1]["error"]


def test_the_circuit_opens_after_repeated_failures_and_closes_after_a_good_probe(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    upstream = Flaky()
    upstream.mode = "fail"
    gateway = start_gateway(
        make_config(upstream=Upstream(failures_to_open=3, open_s=0.5)), {"echo": upstream}
    )
    key = gateway.new_key("acme")
    with gateway.http(key) as http:
        failures = [http.post(CHAT, json=HELLO) for _ in range(5)]
        assert [a.status_code for a in failures] == [502] * 5
        assert upstream.calls == 3  # the last two never reached it
        assert "not calling it for another" in failures[-1].json()["error"]["message"]
        upstream.mode = "ok"
        time.sleep(0.6)
        assert http.post(CHAT, json=HELLO).status_code == 200
        assert upstream.calls == 4
        assert len(http.get("/v1/events").json()["data"]) == 6  # every turn is on record
