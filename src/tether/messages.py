"""The chat message shape shared by every layer (OpenAI's ``{"role", "content"}`` dicts)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = ["Message", "Role"]

Role = Literal["system", "user", "assistant", "tool"]


class Message(TypedDict):
    """One chat message; extra keys follow OpenAI's chat format."""

    role: Role
    content: str
    name: NotRequired[str]
    tool_call_id: NotRequired[str]
    tool_calls: NotRequired[list[dict[str, Any]]]
