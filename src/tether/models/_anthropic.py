"""A client for Anthropic's Messages API (``POST /v1/messages``), translated to and from the
OpenAI chat shape the rest of tether speaks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import Field

from tether.errors import ConfigError, ModelError, ModelHTTPError
from tether.messages import Message
from tether.registry import register

from ._openai import (
    ConnectionPool,
    OpenAICompatibleModel,
    OpenAIParams,
    _error_message,
    _truncate,
)
from ._protocol import ModelResponse, ToolCall, Usage

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_ANTHROPIC_BASE_URL",
    "AnthropicModel",
    "AnthropicParams",
    "to_anthropic_messages",
]

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
# Anthropic's stop reasons in OpenAI's words, so events and the gateway speak one language.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicParams(OpenAIParams):
    """Parameters of an Anthropic model: the OpenAI client's, plus the ``max_tokens`` the
    Messages API requires; the API key is never one (it comes from env)."""

    default_max_tokens: int = Field(1024, gt=0)


@register("model", "anthropic", params=AnthropicParams)
class AnthropicModel(OpenAICompatibleModel):
    """A model behind Anthropic's Messages API, with the same retries as the OpenAI client.

    ``base_url`` defaults to ``$ANTHROPIC_BASE_URL``, then Anthropic's; ``api_key`` to
    ``$ANTHROPIC_API_KEY``. System messages become the request's ``system`` text (Anthropic
    has no system turns), tool results become ``tool_result`` blocks of a user turn, an
    assistant's tool calls ``tool_use`` blocks, and consecutive turns of one role are merged.
    The API requires ``max_tokens``; ``default_max_tokens`` applies when a call gives none.
    Anthropic has no sampling seed, so ``seed`` is ignored.
    """

    _kind = "anthropic"
    # A conversation that ends with an assistant turn is continued from it (Anthropic's
    # "prefill"): over-refusal recovery primes answers this way.
    supports_prefill = True
    _base_url_env = "ANTHROPIC_BASE_URL"
    _default_base_url = DEFAULT_ANTHROPIC_BASE_URL
    _key_env = "ANTHROPIC_API_KEY"
    _key_hint = "set ANTHROPIC_API_KEY, or pass api_key"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        default_max_tokens: int = 1024,
        connection_pool: ConnectionPool = "httpx",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            model,
            base_url=base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            connection_pool=connection_pool,
            transport=transport,
        )
        self.default_max_tokens = default_max_tokens

    @staticmethod
    def _endpoint(base_url: str) -> str:
        # A base URL given with its version ("…/v1") is accepted as well as the bare host.
        return f"{base_url.removesuffix('/v1')}/v1/messages"

    @staticmethod
    def _headers(key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def _tool_definitions(self, tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_tool_definition(t) for t in tools]

    def _response(self, data: Any) -> ModelResponse:
        return response_from_anthropic(data, self.name, source=self._url)

    def _piece(self, data: str) -> tuple[str | None, bool]:
        event = self._event(data)
        kind = event.get("type")
        if kind == "message_stop":
            return None, True
        delta = (event.get("delta") or {}) if kind == "content_block_delta" else {}
        text = delta.get("text") if delta.get("type") == "text_delta" else None
        return (str(text) if text else None), False

    def _payload(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None,
        max_tokens: int | None,
        seed: int | None,
    ) -> dict[str, Any]:
        system, turns = to_anthropic_messages(messages)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
        }
        if system:
            payload["system"] = system
        if temperature is not None:
            # Anthropic accepts 0..1 (OpenAI 0..2): the same value, clamped.
            payload["temperature"] = min(max(temperature, 0.0), 1.0)
        return payload

    def _event(self, data: str) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise ModelError(f"{self._url} streamed invalid JSON: {_truncate(data)}") from exc
        if not isinstance(event, dict):
            raise ModelError(f"{self._url} streamed an event that is no object: {_truncate(data)}")
        if event.get("type") == "error":
            raise ModelHTTPError(f"{self._url} failed mid-stream: {_error_message(event, data)}")
        return event


def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """``(system text, turns)`` for the Messages API from OpenAI-shaped messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for index, message in enumerate(messages):
        role, content = message["role"], message.get("content") or ""
        if role == "system":
            system.append(content)
        elif role == "user":
            add("user", [{"type": "text", "text": content}])
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id:
                raise ConfigError(f"messages[{index}]: a tool message needs its tool_call_id")
            add(
                "user",
                [{"type": "tool_result", "tool_use_id": call_id, "content": content}],
            )
        elif role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
            for call in message.get("tool_calls") or ():
                blocks.append(_tool_use(call, index))
            add("assistant", blocks or [{"type": "text", "text": ""}])
        else:
            raise ConfigError(f"messages[{index}]: unknown role {role!r}")
    last = turns[-1]["content"][-1] if turns and turns[-1]["role"] == "assistant" else None
    if last is not None and last.get("type") == "text":
        # A final assistant turn is a prefill the model continues; the API refuses one that
        # ends in whitespace.
        last["text"] = last["text"].rstrip()
    return "\n\n".join(s for s in system if s), turns


def response_from_anthropic(data: Any, model: str, *, source: str) -> ModelResponse:
    """A ModelResponse from a Messages API body."""
    try:
        blocks = data["content"]
        usage = data.get("usage") or {}
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        calls = tuple(
            ToolCall(id=b["id"], name=b["name"], arguments=json.dumps(b.get("input") or {}))
            for b in blocks
            if b.get("type") == "tool_use"
        )
        stop = data.get("stop_reason")
        return ModelResponse(
            text=text,
            model=model,
            tool_calls=calls,
            usage=Usage(
                prompt_tokens=usage.get("input_tokens") or 0,
                completion_tokens=usage.get("output_tokens") or 0,
            ),
            finish_reason=_FINISH_REASONS.get(stop, stop) if stop else None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"{source} returned a message without the expected fields ({exc!r}): "
            f"{_truncate(json.dumps(data, default=str))}"
        ) from exc


def _tool_use(call: Mapping[str, Any], index: int) -> dict[str, Any]:
    try:
        function = call["function"]
        arguments = function.get("arguments") or "{}"
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"messages[{index}]: a tool call needs id, function.name and JSON arguments ({exc})"
        ) from exc


def _tool_definition(tool: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's ``{"type": "function", "function": {...}}`` as Anthropic's tool definition."""
    function = tool.get("function", tool)
    if not isinstance(function, Mapping) or not function.get("name"):
        raise ConfigError(f"a tool definition needs function.name: {_truncate(str(tool))}")
    definition: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        definition["description"] = function["description"]
    return definition
