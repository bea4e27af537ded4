"""The ChatModel protocol and the types every adapter returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from tether.messages import Message

__all__ = ["ChatModel", "ModelResponse", "ToolCall", "Usage"]


class ToolCall(BaseModel):
    """A tool call the model asked for, in OpenAI's shape (arguments as a JSON string)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str


class Usage(BaseModel):
    """Token counts as the model reported them (zero when it reports none)."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ModelResponse(BaseModel):
    """One completed answer."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    finish_reason: str | None = None


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers a chat. ``name`` identifies the model in events."""

    name: str

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ModelResponse:
        """The whole answer at once."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> AsyncIterator[str]:
        """The answer as text chunks, as the model produces them."""
        ...
