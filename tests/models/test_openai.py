from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tether.errors import ModelError, ModelHTTPError
from tether.messages import Message
from tether.models import ChatModel, OpenAICompatibleModel, ToolCall, Usage

BASE_URL = "http://llm.test/v1"
HELLO: list[Message] = [{"role": "user", "content": "hello"}]
Handler = Callable[[httpx.Request], httpx.Response]


def completion(text: str | None = "Hi!", **message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, **message},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }


class Server:
    """A fake server: answers requests with the given handlers in turn, and records them."""

    def __init__(self, *handlers: Handler) -> None:
        self.handlers = list(handlers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handlers[min(len(self.requests), len(self.handlers)) - 1](request)

    def model(self, **options: Any) -> OpenAICompatibleModel:
        options = {"backoff_s": 0.001, "max_backoff_s": 0.01, "api_key": "", **options}
        return OpenAICompatibleModel(
            "m", base_url=BASE_URL, transport=httpx.MockTransport(self), **options
        )

    def body(self, index: int = 0) -> Any:
        return json.loads(self.requests[index].content)


def answer(status: int, body: Any = None, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=completion() if body is None else body, headers=headers)

    return handler


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


async def test_generate_sends_only_the_given_options() -> None:
    server = Server(answer(200))
    model = server.model(api_key="sk-test")
    assert isinstance(model, ChatModel)
    response = await model.generate(HELLO, temperature=0.0, max_tokens=5)
    await model.aclose()
    assert response.text == "Hi!"
    assert response.model == "openai:m"
    assert response.usage == Usage(prompt_tokens=7, completion_tokens=2)
    assert response.finish_reason == "stop"
    request = server.requests[0]
    assert str(request.url) == f"{BASE_URL}/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert server.body() == {"model": "m", "messages": HELLO, "temperature": 0.0, "max_tokens": 5}


async def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    server = Server(answer(200))
    model = OpenAICompatibleModel("m", base_url=BASE_URL, transport=httpx.MockTransport(server))
    await model.generate(HELLO)
    await model.aclose()
    assert server.requests[0].headers["authorization"] == "Bearer sk-env"


async def test_tools_passed_through_and_tool_calls_parsed() -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    server = Server(
        answer(
            200,
            completion(
                None,
                tool_calls=[
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"q": "refunds"}'},
                    },
                    # Some servers send arguments as an object and leave out the id.
                    {"type": "function", "function": {"name": "noop", "arguments": {"x": 1}}},
                ],
            ),
        )
    )
    model = server.model()
    response = await model.generate(HELLO, tools=tools)
    await model.aclose()
    assert server.body()["tools"] == tools
    assert response.text == ""
    assert response.tool_calls == (
        ToolCall(id="call_a", name="search", arguments='{"q": "refunds"}'),
        ToolCall(id="call_1", name="noop", arguments='{"x": 1}'),
    )


async def test_retries_a_429_then_succeeds() -> None:
    server = Server(answer(429, {"error": {"message": "slow down"}}), answer(200))
    model = server.model()
    response = await model.generate(HELLO)
    await model.aclose()
    assert response.text == "Hi!"
    assert len(server.requests) == 2


async def test_5xx_exhausts_retries() -> None:
    server = Server(answer(503, "upstream overloaded"))
    model = server.model(max_retries=2)
    with pytest.raises(ModelHTTPError, match="answered 503 Service Unavailable") as caught:
        await model.generate(HELLO)
    await model.aclose()
    assert caught.value.status == 503
    assert "upstream overloaded" in str(caught.value)
    assert len(server.requests) == 3


async def test_400_surfaces_the_servers_message_without_retrying() -> None:
    error = {"error": {"message": "'messages' is too long", "type": "invalid_request_error"}}
    server = Server(answer(400, error))
    model = server.model()
    with pytest.raises(ModelHTTPError, match="answered 400 Bad Request: 'messages' is too long"):
        await model.generate(HELLO)
    await model.aclose()
    assert len(server.requests) == 1


async def test_401_says_how_to_give_a_key() -> None:
    server = Server(answer(401, "x" * 1000))
    model = server.model()
    with pytest.raises(ModelHTTPError, match=r"x…\s\(set OPENAI_API_KEY") as caught:
        await model.generate(HELLO)
    await model.aclose()
    assert caught.value.status == 401
    assert len(str(caught.value)) < 500  # the raw body is truncated


async def test_retry_after_is_honored() -> None:
    server = Server(answer(429, {}, **{"retry-after-ms": "150"}), answer(200))
    model = server.model(max_backoff_s=5)
    started = time.monotonic()
    await model.generate(HELLO)
    await model.aclose()
    assert time.monotonic() - started >= 0.15


async def test_retry_after_is_capped() -> None:
    server = Server(answer(429, {}, **{"Retry-After": "120"}), answer(200))
    model = server.model(max_backoff_s=0.05)
    started = time.monotonic()
    await model.generate(HELLO)
    await model.aclose()
    assert 0.05 <= time.monotonic() - started < 2


async def test_connection_errors_are_retried_then_name_the_url() -> None:
    server = Server(refuse)
    model = server.model(max_retries=2)
    with pytest.raises(ModelError, match=f"could not reach {BASE_URL}/chat/completions after 3"):
        await model.generate(HELLO)
    await model.aclose()
    assert len(server.requests) == 3


async def test_a_connection_error_then_success() -> None:
    server = Server(refuse, answer(200))
    model = server.model()
    assert (await model.generate(HELLO)).text == "Hi!"
    await model.aclose()


async def test_unreadable_completion() -> None:
    server = Server(answer(200, {"choices": []}))
    model = server.model()
    with pytest.raises(ModelError, match="without the expected fields"):
        await model.generate(HELLO)
    await model.aclose()


def sse(*events: str) -> Handler:
    body = "".join(f"data: {event}\n\n" for event in events)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"}
        )

    return handler


def delta(content: str | None = None, **extra: Any) -> str:
    chunk_delta = {} if content is None else {"content": content}
    return json.dumps({"choices": [{"index": 0, "delta": chunk_delta, **extra}]})


async def test_stream_parses_sse() -> None:
    server = Server(
        sse(
            json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
            delta("Hel"),
            delta("lo"),
            delta(finish_reason="stop"),
            json.dumps({"choices": [], "usage": {"prompt_tokens": 1}}),
            "[DONE]",
            delta("after the end"),
        )
    )
    model = server.model()
    chunks = [chunk async for chunk in model.stream(HELLO, temperature=0.5)]
    await model.aclose()
    assert chunks == ["Hel", "lo"]
    assert server.body() == {"model": "m", "messages": HELLO, "temperature": 0.5, "stream": True}


async def test_stream_retries_before_the_first_chunk() -> None:
    server = Server(answer(500, "boom"), sse(delta("ok"), "[DONE]"))
    model = server.model()
    assert [chunk async for chunk in model.stream(HELLO)] == ["ok"]
    await model.aclose()


async def test_stream_error_status_and_error_event() -> None:
    server = Server(
        answer(404, {"error": {"message": "no such model"}}),
        sse(json.dumps({"error": {"message": "out of memory"}})),
    )
    model = server.model()
    with pytest.raises(ModelHTTPError, match="404 Not Found: no such model"):
        [chunk async for chunk in model.stream(HELLO)]
    with pytest.raises(ModelHTTPError, match="failed mid-stream: out of memory"):
        [chunk async for chunk in model.stream(HELLO)]
    await model.aclose()
