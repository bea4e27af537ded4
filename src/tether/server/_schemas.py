"""Request and response bodies: OpenAI's chat-completions shape, the scan API, the admin API.

Requests are strict (a string where a number belongs is an error, not a guess) and unknown
fields are errors, as OpenAI's own API treats them. Sampling parameters are accepted for
compatibility, but the tenant's policy sets them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ChatCompletionRequest",
    "CreateKey",
    "CreateTenant",
    "FeedbackIn",
    "InMessage",
    "ScanRequest",
    "TextPart",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TextPart(_Request):
    """A text part of a message's content (the only kind of part this gateway takes)."""

    type: Literal["text"]
    text: str


class FunctionCall(_Request):
    name: str = Field(..., min_length=1, max_length=64)
    arguments: str = Field(..., max_length=100_000)


class InToolCall(_Request):
    """A tool call an earlier assistant turn made (the client ran it)."""

    id: str = Field(..., min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDefinition(_Request):
    name: str = Field(..., min_length=1, max_length=64)
    description: str | None = Field(None, max_length=8_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(_Request):
    """One of the client's own tools; the tenant's policy decides whether it is offered."""

    type: Literal["function"]
    function: FunctionDefinition


class InMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # OpenAI's clients send null content on an assistant turn that only calls tools.
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[InToolCall] | None = None

    @model_validator(mode="after")
    def _content_unless_tool_calls(self) -> InMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        return self

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for part in value:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind is not None and kind != "text":
                    raise ValueError(f"only text content parts are supported, not {kind!r}")
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    """``POST /v1/chat/completions``."""

    model: str = Field(..., min_length=1)
    messages: list[InMessage] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)
    n: int | None = None
    # Accepted for compatibility; the tenant's policy sets these.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    metadata: dict[str, str] | None = None
    # The client's own tools: those the tenant's policy lists are offered, and every call
    # the model makes passes the tool gate before it is handed back.
    tools: list[ToolDefinition] | None = Field(None, max_length=128)
    tool_choice: Literal["auto", "none"] | None = Field(
        None, description="auto (the default with tools) or none; forcing a tool is not supported."
    )
    parallel_tool_calls: bool | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only n=1 is supported")
        return value


class ScanRequest(_Request):
    """``POST /v1/scan``: run the tenant's guards for one stage on texts, without a model."""

    input: str | Annotated[list[str], Field(min_length=1, max_length=64)]
    stage: Literal["input", "output"] = "input"
    guards: list[str] | None = Field(
        None, description="Guard ids or names from the tenant's policy; default: all of them."
    )


class FeedbackIn(_Request):
    """``POST /v1/feedback``: rate one of the tenant's own events."""

    event_id: str = Field(..., min_length=1, max_length=64)
    rating: int = Field(..., ge=-1, le=1, description="-1 bad, 0 neutral, 1 good.")
    comment: str | None = Field(None, max_length=4000)
    corrected: str | None = Field(
        None, max_length=32000, description="The answer it should have been (for exports)."
    )


class CreateTenant(_Request):
    name: str = Field(..., min_length=1, max_length=64)
    retention_days: int | None = Field(None, gt=0)


class CreateKey(_Request):
    name: str | None = Field(None, max_length=200)
    expires_at: datetime | None = Field(None, description="When the key stops working (UTC).")

    @field_validator("expires_at", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> Any:
        # Strict mode takes no strings for datetimes, but JSON has nothing else.
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("expires_at must be an ISO 8601 date-time") from None
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a time zone, e.g. 2030-01-01T00:00:00Z")
        return value
