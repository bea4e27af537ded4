"""A scripted ChatModel: canned replies in order, for tests that need a model but not its whims."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tether.errors import ConfigError, ModelError
from tether.messages import Message
from tether.registry import register

from ._protocol import ModelResponse, ToolCall

__all__ = ["Reply", "ScriptedModel", "ScriptedParams", "read_replies"]

Reply = str | ModelResponse | Callable[[list[Message]], str | ModelResponse]
_DEFAULT_NAME = "scripted"
_CHUNK = re.compile(r"\S+\s*|\s+")


class ScriptedParams(BaseModel):
    """Parameters of a scripted model (callable replies exist only in Python, not here)."""

    model_config = ConfigDict(extra="forbid")

    replies: tuple[str | ModelResponse, ...] = ()
    repeat_last: bool = False
    name: str = _DEFAULT_NAME
    prefill: bool = False


@register("model", "scripted", params=ScriptedParams)
class ScriptedModel:
    """A fake ChatModel that answers with canned replies, in order.

    A reply is a string, a :class:`ModelResponse` (for tool calls or usage), or a callable that
    gets the call's messages and returns either. Every call's messages are kept in ``calls``.
    Once the replies are used up, a call raises :class:`ModelError`, unless ``repeat_last``.
    With ``prefill``, it claims to continue a conversation that ends with an assistant message
    (as the embedded model does): its reply then stands for the continuation only.
    """

    def __init__(
        self,
        replies: Iterable[Reply],
        *,
        repeat_last: bool = False,
        name: str = _DEFAULT_NAME,
        prefill: bool = False,
    ) -> None:
        self.name = name
        self.repeat_last = repeat_last
        self.supports_prefill = prefill
        self.calls: list[list[Message]] = []
        # The tools offered with each generate() call (empty when none were).
        self.tools_offered: list[list[dict[str, Any]]] = []
        self._replies = list(replies)
        if repeat_last and not self._replies:
            raise ConfigError("a scripted model with repeat_last=True needs at least one reply")

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        repeat_last: bool = False,
        name: str = _DEFAULT_NAME,
    ) -> ScriptedModel:
        """Replies from a YAML or JSON list of strings or ``{text, tool_calls}`` mappings."""
        return cls(read_replies(path, model=name), repeat_last=repeat_last, name=name)

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ModelResponse:
        self.tools_offered.append([dict(t) for t in tools or ()])
        return self._answer(messages)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> AsyncGenerator[str, None]:
        # Word-sized chunks, so stream consumers see the answer arrive in pieces.
        for chunk in _CHUNK.findall(self._answer(messages).text):
            yield chunk

    def _answer(self, messages: Sequence[Message]) -> ModelResponse:
        # Copies, so that a caller reusing its message list cannot rewrite the record.
        conversation = [message.copy() for message in messages]
        self.calls.append(conversation)
        index = len(self.calls) - 1
        if index < len(self._replies):
            reply = self._replies[index]
        elif self.repeat_last:
            reply = self._replies[-1]
        else:
            raise ModelError(f"scripted model ran out of replies after {len(self._replies)} calls")
        if callable(reply):
            reply = reply(conversation)
        if isinstance(reply, str):
            return ModelResponse(text=reply, model=self.name, finish_reason="stop")
        return reply


class _FileToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    name: str
    arguments: str | dict[str, Any] = "{}"


class _FileReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = ""
    tool_calls: list[_FileToolCall] = []


def read_replies(
    path: str | os.PathLike[str], *, model: str = _DEFAULT_NAME
) -> list[str | ModelResponse]:
    """The replies in a YAML (``.yaml``/``.yml``) or JSON file; ConfigError names what is wrong."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".json", ".yaml", ".yml"}:
        raise ConfigError(f"{path}: scripted replies must be a .json, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read scripted replies: {exc.strerror}") from exc
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{where}: invalid YAML: {what}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: scripted replies must be a non-empty list")
    return [_reply(item, path, number, model) for number, item in enumerate(data, 1)]


def _reply(item: object, path: Path, number: int, model: str) -> str | ModelResponse:
    where = f"{path}: reply {number}"
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be a string or a mapping with text and tool_calls")
    try:
        reply = _FileReply.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from exc
    tool_calls = tuple(
        ToolCall(
            id=call.id or f"call_{number}_{index}",
            name=call.name,
            arguments=call.arguments
            if isinstance(call.arguments, str)
            else json.dumps(call.arguments),
        )
        for index, call in enumerate(reply.tool_calls)
    )
    return ModelResponse(
        text=reply.text,
        model=model,
        tool_calls=tool_calls,
        finish_reason="tool_calls" if tool_calls else "stop",
    )
