"""A local HTTP server that speaks Anthropic's Messages API (no internet here, so the real one
cannot be reached): it checks requests the way Anthropic documents them — key and version
headers, ``max_tokens`` required, no system turns, roles alternating from a user turn, every
``tool_result`` answering a ``tool_use`` of the turn before — and answers by echoing the
last user text, with a ``tool_use`` when tools are offered and the text asks for one."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

API_KEY = "sk-ant-test"


@dataclass
class AnthropicServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # Answer this many requests with 529 "overloaded" before serving.
    overloaded: int = 0


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _problem(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        return "messages: at least one message is required"
    previous_uses: set[str] = set()
    for i, turn in enumerate(turns):
        role = turn.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if role != ("user" if i % 2 == 0 else "assistant"):
            return f"messages.{i}: roles must alternate, starting with user"
        content = turn.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        uses = set()
        for block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous_uses:
                return f"messages.{i}: tool_result for an unknown tool_use_id"
            if block.get("type") == "tool_use":
                if not isinstance(block.get("input"), dict):
                    return f"messages.{i}: tool_use.input must be an object"
                uses.add(block["id"])
        previous_uses = uses
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    texts = [b.get("text") or b.get("content") or "" for b in content]
    return " ".join(str(t) for t in texts if t)


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    text = _last_user_text(body)
    tools = body.get("tools") or []
    if tools and "balance" in text.lower():
        content: list[dict[str, Any]] = [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01", "name": tools[0]["name"], "input": {"id": 7}},
        ]
        stop = "tool_use"
    else:
        reply = f"You said: {text}"
        if body.get("system"):
            reply += f" [system: {body['system'][:40]}]"
        content, stop = [{"type": "text", "text": reply}], "end_turn"
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 11, "output_tokens": 5},
    }


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


async def _stream(answer: dict[str, Any], fail_midway: bool) -> AsyncIterator[str]:
    yield _sse("message_start", {"message": {**answer, "content": []}})
    yield _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    yield 'event: ping\ndata: {"type": "ping"}\n\n'
    text = answer["content"][0]["text"]
    for start in range(0, len(text), 4):
        if fail_midway and start >= 8:
            yield _sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
            return
        piece = text[start : start + 4]
        yield _sse(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
        )
    yield _sse("content_block_stop", {"index": 0})
    yield _sse(
        "message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}
    )
    yield _sse("message_stop", {})


def _app(state: AnthropicServer) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        state.headers.append(dict(request.headers))
        if request.headers.get("x-api-key") != API_KEY:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        if state.overloaded > 0:
            state.overloaded -= 1
            return _error(529, "overloaded_error", "Overloaded")
        problem = _problem(body)
        if problem:
            return _error(400, "invalid_request_error", problem)
        answer = _answer(body)
        if body.get("stream"):
            fail = "fail midway" in _last_user_text(body)
            return StreamingResponse(_stream(answer, fail), media_type="text/event-stream")
        return JSONResponse(answer)

    return app


@contextlib.contextmanager
def run_anthropic_server() -> Iterator[AnthropicServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state = AnthropicServer(url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = uvicorn.Server(uvicorn.Config(_app(state), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Anthropic-shaped test server did not start")
        time.sleep(0.02)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
