"""The OpenAI-compatible client over aiohttp's connection pool (``connection_pool="aiohttp"``),
against a real HTTP/1.1 server on a local socket: what it sends, retries, timeouts, streaming,
connection reuse, and use from several event loops."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tether.errors import ConfigError, ModelError, ModelHTTPError
from tether.messages import Message
from tether.models import OpenAICompatibleModel, load_model
from tether.models._aiohttp import AiohttpTransport

HELLO: list[Message] = [{"role": "user", "content": "hello"}]


def completion(text: str = "Hi!") -> dict[str, Any]:
    return {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2},
    }


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Writer = Callable[[asyncio.StreamWriter, Received], Awaitable[None]]


@dataclass
class Wire:
    """A minimal HTTP/1.1 server: each request is answered by the next writer in turn (the
    last one repeats), on keep-alive connections."""

    writers: list[Writer]
    port: int = 0
    received: list[Received] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, body)
                self.received.append(request)
                respond = self.writers[min(len(self.received), len(self.writers)) - 1]
                await respond(writer, request)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return  # the client left, or the test ended
        finally:
            writer.close()


def reply(status: int, body: bytes, **headers: str) -> Writer:
    async def write(writer: asyncio.StreamWriter, _: Received) -> None:
        fields = {"content-length": str(len(body)), "content-type": "application/json", **headers}
        head = f"HTTP/1.1 {status} X\r\n" + "".join(
            f"{k.replace('_', '-')}: {v}\r\n" for k, v in fields.items()
        )
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()

    return write


def ok(text: str = "Hi!") -> Writer:
    return reply(200, json.dumps(completion(text)).encode())


async def hang_up(writer: asyncio.StreamWriter, _: Received) -> None:
    writer.close()


async def stall(writer: asyncio.StreamWriter, _: Received) -> None:
    await asyncio.sleep(5)


def chunked_sse(*events: str, pause_s: float = 0.0) -> Writer:
    async def write(writer: asyncio.StreamWriter, _: Received) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for event in events:
            data = f"data: {event}\n\n".encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
            await asyncio.sleep(pause_s)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return write


@asynccontextmanager
async def running(*writers: Writer) -> AsyncIterator[Wire]:
    wire = Wire(list(writers))
    server = await asyncio.start_server(wire.serve, "127.0.0.1", 0)
    wire.port = server.sockets[0].getsockname()[1]
    try:
        yield wire
    finally:
        server.close()


def pooled(url: str, **options: Any) -> OpenAICompatibleModel:
    options = {"backoff_s": 0.001, "max_backoff_s": 0.01, "api_key": "sk-test", **options}
    return OpenAICompatibleModel("m", base_url=url, connection_pool="aiohttp", **options)


async def test_sends_the_request_and_reads_the_answer() -> None:
    async with running(ok("pooled")) as wire:
        model = pooled(wire.url)
        answer = await model.generate(HELLO, temperature=0.2)
        await model.aclose()
    assert isinstance(model._client._transport, AiohttpTransport)
    assert answer.text == "pooled" and answer.usage.completion_tokens == 2
    sent = wire.received[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == {"model": "m", "messages": HELLO, "temperature": 0.2}


async def test_keeps_connections_alive_between_requests() -> None:
    async with running(ok()) as wire:
        model = pooled(wire.url)
        for _ in range(5):
            await model.generate(HELLO)
        await asyncio.gather(*(model.generate(HELLO) for _ in range(4)))
        await model.aclose()
    assert len(wire.received) == 9
    assert wire.connections <= 4  # the concurrent four at most; the sequential five share one


async def test_retries_a_429_as_retry_after_asks_then_succeeds() -> None:
    async with running(
        reply(429, b'{"error": {"message": "slow down"}}', retry_after="0"), ok()
    ) as wire:
        model = pooled(wire.url)
        assert (await model.generate(HELLO)).text == "Hi!"
        await model.aclose()
    assert len(wire.received) == 2


async def test_an_error_status_names_the_servers_message() -> None:
    async with running(reply(404, b'{"error": {"message": "no such model"}}')) as wire:
        model = pooled(wire.url)
        with pytest.raises(ModelHTTPError, match="404 X: no such model") as raised:
            await model.generate(HELLO)
        await model.aclose()
    assert raised.value.status == 404


async def test_a_dropped_connection_is_retried() -> None:
    async with running(hang_up, ok()) as wire:
        model = pooled(wire.url)
        assert (await model.generate(HELLO)).text == "Hi!"
        await model.aclose()


async def test_a_server_that_keeps_hanging_up_is_reported_with_its_url() -> None:
    async with running(hang_up) as wire:
        model = pooled(wire.url, max_retries=2)
        with pytest.raises(ModelError, match=r"could not reach .*/v1/chat/completions after 3"):
            await model.generate(HELLO)
        await model.aclose()
    assert len(wire.received) == 3


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request: nothing listens
    model = pooled(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(ModelError, match=r"could not reach .* after 2 attempt"):
        await model.generate(HELLO)
    await model.aclose()


async def test_a_silent_server_times_out() -> None:
    async with running(stall) as wire:
        model = pooled(wire.url, timeout_s=0.2, max_retries=0)
        with pytest.raises(ModelError, match=r"timed out after 0.2s"):
            await model.generate(HELLO)
        await model.aclose()


async def test_streams_chunked_server_sent_events_as_they_come() -> None:
    def delta(text: str) -> str:
        return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})

    async with running(chunked_sse(delta("Hel"), delta("lo"), "[DONE]", pause_s=0.05)) as wire:
        model = pooled(wire.url)
        seen = []
        async for piece in model.stream(HELLO):
            seen.append((piece, len(wire.received)))
        await model.aclose()
    assert [p for p, _ in seen] == ["Hel", "lo"]
    assert json.loads(wire.received[0].body)["stream"] is True


async def test_a_gzipped_answer_is_decoded() -> None:
    body = gzip.compress(json.dumps(completion("squeezed")).encode())
    async with running(reply(200, body, content_encoding="gzip")) as wire:
        model = pooled(wire.url)
        assert (await model.generate(HELLO)).text == "squeezed"
        await model.aclose()


def test_another_event_loop_is_told_to_use_httpx() -> None:
    """Connections belong to the loop that opened them: a second loop gets a clear error."""

    async def ask(model: OpenAICompatibleModel | None) -> OpenAICompatibleModel:
        async with running(ok("again")) as wire:
            model = model or pooled(wire.url)
            model._url = f"{wire.url}/chat/completions"
            assert (await model.generate(HELLO)).text == "again"
        return model

    with asyncio.Runner() as first:
        model = first.run(ask(None))
        with pytest.raises(ConfigError, match="use connection_pool 'httpx'"):
            asyncio.run(ask(model))
        first.run(model.aclose())


def test_load_model_takes_the_hint_where_it_applies(tmp_path: Any) -> None:
    model = load_model("openai:m@http://127.0.0.1:9/v1", connection_pool="aiohttp")
    assert isinstance(model, OpenAICompatibleModel)
    assert isinstance(model._client._transport, AiohttpTransport)
    replies = tmp_path / "replies.yaml"
    replies.write_text("- Hello.\n")
    assert load_model(f"scripted:{replies}", connection_pool="aiohttp").name.startswith("scripted")
    with pytest.raises(ConfigError, match="connection_pool"):
        load_model("openai:m@http://127.0.0.1:9/v1", connection_pool="urllib")
