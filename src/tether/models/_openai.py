"""A client for any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp, Ollama)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import os
import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.errors import ModelError, ModelHTTPError
from tether.messages import Message
from tether.registry import register

from ._aiohttp import AiohttpTransport
from ._protocol import ModelResponse, ToolCall, Usage

__all__ = ["DEFAULT_OPENAI_BASE_URL", "OpenAICompatibleModel", "OpenAIParams"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
# Errors worth retrying: the same request may well succeed a moment later.
_RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_ERROR_TEXT_LIMIT = 300
ConnectionPool = Literal["httpx", "aiohttp"]


class OpenAIParams(BaseModel):
    """Parameters of an OpenAI-compatible model; the API key is never one (it comes from env)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(..., min_length=1)
    base_url: str | None = None
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(8.0, ge=0)
    connection_pool: ConnectionPool = "httpx"


@register("model", "openai", params=OpenAIParams)
class OpenAICompatibleModel:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint, with retries.

    ``base_url`` defaults to ``$OPENAI_BASE_URL``, then OpenAI's; ``api_key`` to
    ``$OPENAI_API_KEY`` (pass ``""`` to send none). 429s, 5xx answers, timeouts and connection
    errors are retried ``max_retries`` times with exponential backoff and jitter, waiting what a
    ``Retry-After`` header asks for when there is one; every wait is capped at ``max_backoff_s``.
    ``connection_pool="aiohttp"`` sends the requests through aiohttp's connection pool, which
    costs about a fifth of the CPU per request when many are in flight (the gateway's choice;
    see :mod:`tether.models._aiohttp`); a ``transport`` given explicitly takes precedence.
    """

    # What differs between the HTTP APIs this client's subclasses speak.
    _kind = "openai"
    _base_url_env = "OPENAI_BASE_URL"
    _default_base_url = DEFAULT_OPENAI_BASE_URL
    _key_env = "OPENAI_API_KEY"
    # Appended to a 401's message: how to give this client its key.
    _key_hint = "set OPENAI_API_KEY, or pass api_key"

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
        connection_pool: ConnectionPool = "httpx",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.name = f"{self._kind}:{model}"
        self.base_url = (
            base_url or os.environ.get(self._base_url_env) or self._default_base_url
        ).rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._url = self._endpoint(self.base_url)
        key = api_key if api_key is not None else os.environ.get(self._key_env)
        if transport is None and connection_pool == "aiohttp":
            transport = AiohttpTransport()
        # The key lives only in the client's headers, so no repr or event can show it.
        self._client = httpx.AsyncClient(
            headers=self._headers(key), timeout=httpx.Timeout(timeout_s), transport=transport
        )

    @staticmethod
    def _endpoint(base_url: str) -> str:
        return f"{base_url}/chat/completions"

    @staticmethod
    def _headers(key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ModelResponse:
        payload = self._payload(messages, temperature=temperature, max_tokens=max_tokens, seed=seed)
        if tools:
            payload["tools"] = self._tool_definitions(tools)
        response = await self._send(payload, stream=False)
        try:
            data = response.json()
        except ValueError as exc:
            raise ModelError(
                f"{self._url} answered with invalid JSON: {_truncate(response.text)}"
            ) from exc
        return self._response(data)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> AsyncGenerator[str, None]:
        payload = self._payload(messages, temperature=temperature, max_tokens=max_tokens, seed=seed)
        payload["stream"] = True
        response = await self._send(payload, stream=True)
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, "event:" lines, comments, other SSE fields
                text, done = self._piece(line.removeprefix("data:").strip())
                if text:
                    yield text
                if done:
                    return
        except httpx.HTTPError as exc:
            # Not retried: the caller has already been handed part of the answer.
            raise ModelError(f"the stream from {self._url} broke off: {exc!r}") from exc
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def _payload(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None,
        max_tokens: int | None,
        seed: int | None,
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            **sampling_options(temperature=temperature, max_tokens=max_tokens, seed=seed),
        }

    # The hooks where the HTTP APIs differ; the requests, retries and streaming are shared.
    def _tool_definitions(self, tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(tools)

    def _response(self, data: Any) -> ModelResponse:
        return response_from_openai(data, self.name, source=self._url)

    def _piece(self, data: str) -> tuple[str | None, bool]:
        """The text one streamed ``data:`` line adds, and whether the stream ends there."""
        if data == "[DONE]":
            return None, True
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ModelError(f"{self._url} streamed invalid JSON: {_truncate(data)}") from exc
        if isinstance(chunk, dict) and "error" in chunk:
            raise ModelHTTPError(f"{self._url} failed mid-stream: {_error_message(chunk, data)}")
        return delta_text(chunk, source=self._url), False

    async def _send(self, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
        """POST ``payload``, retrying what may pass on a later try; a 2xx response or an error."""
        request = self._client.build_request("POST", self._url, json=payload)
        attempt = 0
        while True:
            try:
                response = await self._client.send(request, stream=stream)
            except _RETRY_EXCEPTIONS as exc:
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"could not reach {self._url} after {attempt + 1} attempt(s): "
                        f"{_describe(exc, self.timeout_s)}"
                    ) from exc
                delay = self._backoff(attempt)
            except httpx.HTTPError as exc:  # e.g. a malformed URL: retrying cannot help
                raise ModelError(f"could not send a request to {self._url}: {exc}") from exc
            else:
                if response.is_success:
                    return response
                if stream:
                    await response.aread()  # the error body; reading it also closes the stream
                retryable = response.status_code == 429 or response.status_code >= 500
                if not retryable or attempt >= self.max_retries:
                    raise _http_error(response, self._url, self._key_hint)
                retry_after = _retry_after_s(response.headers)
                delay = (
                    self._backoff(attempt)
                    if retry_after is None
                    else min(retry_after, self.max_backoff_s)
                )
            attempt += 1
            await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        # Jitter spreads out clients that failed together; it is not a security measure.
        jitter = random.uniform(0.5, 1.0)  # noqa: S311
        return min(self.backoff_s * 2.0**attempt, self.max_backoff_s) * jitter


def sampling_options(
    *, temperature: float | None, max_tokens: int | None, seed: int | None
) -> dict[str, Any]:
    """The options that were given, so the server's defaults apply to the others."""
    options = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}
    return {key: value for key, value in options.items() if value is not None}


def response_from_openai(data: Any, model: str, *, source: str) -> ModelResponse:
    """A ModelResponse from a chat-completion body (llama-cpp-python returns the same shape)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        usage = data.get("usage") or {}
        return ModelResponse(
            text=message.get("content") or "",
            model=model,
            tool_calls=tuple(
                _tool_call(raw, index) for index, raw in enumerate(message.get("tool_calls") or ())
            ),
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            ),
            finish_reason=choice.get("finish_reason"),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValidationError) as exc:
        raise ModelError(
            f"{source} returned a chat completion without the expected fields ({exc!r}): "
            f"{_truncate(json.dumps(data, default=str))}"
        ) from exc


def delta_text(chunk: Any, *, source: str) -> str | None:
    """The text a streamed chat-completion chunk adds, if any."""
    try:
        choices = chunk["choices"]
        # Some servers end with a usage-only chunk that has no choices.
        return choices[0]["delta"].get("content") if choices else None
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"{source} streamed a chunk without the expected fields ({exc!r}): "
            f"{_truncate(json.dumps(chunk, default=str))}"
        ) from exc


def _tool_call(raw: Mapping[str, Any], index: int) -> ToolCall:
    function = raw["function"]
    arguments = function.get("arguments") or "{}"
    if not isinstance(arguments, str):  # some servers send an object, not a JSON string
        arguments = json.dumps(arguments)
    return ToolCall(id=raw.get("id") or f"call_{index}", name=function["name"], arguments=arguments)


def _http_error(response: httpx.Response, url: str, key_hint: str) -> ModelHTTPError:
    status = response.status_code
    message = f"{url} answered {status} {response.reason_phrase}"
    detail = _error_message(_json_or_none(response), response.text)
    if detail:
        message += f": {detail}"
    if status == 401:
        message += f" ({key_hint})"
    return ModelHTTPError(message, status=status)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(body: Any, raw_text: str) -> str:
    """OpenAI's ``{"error": {"message": ...}}``, else the raw text, truncated."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return _truncate(raw_text.strip())


def _retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms`` (OpenAI's), else ``Retry-After``."""
    if "retry-after-ms" in headers:
        with contextlib.suppress(ValueError):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:  # Retry-After may also be an HTTP date
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: httpx.HTTPError, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout_s:g}s"
    return str(exc) or type(exc).__name__


def _truncate(text: str) -> str:
    if len(text) <= _ERROR_TEXT_LIMIT:
        return text
    return text[:_ERROR_TEXT_LIMIT] + "…"
