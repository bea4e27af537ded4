"""Tool calls for a local model that has no tool-calling format of its own: the tools are
described in the system prompt, and generation is constrained by a grammar (built from a JSON
Schema) to exactly one of ``{"tool": NAME, "arguments": {...}}`` — the arguments following
that tool's own schema — or ``{"answer": TEXT}``. Whatever the model writes therefore parses,
names a tool it was offered and carries arguments of the right shape; whether it is the right
call is still the model's judgement (and the tool gate's)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.errors import ConfigError
from tether.messages import Message

from ._protocol import ModelResponse, ToolCall

__all__ = ["ToolPrompt", "parse_tool_reply", "tool_prompt"]

_INSTRUCTIONS = """\
You can use these tools:
{tools}

Reply with JSON only. To use a tool: {{"tool": "<name>", "arguments": {{...}}}}.
To answer the user yourself (when no tool is needed, or with what a tool returned):
{{"answer": "<your reply>"}}."""
# An answer cut short by the token limit: keep what was written.
_PARTIAL_ANSWER = re.compile(r'^\s*\{\s*"answer"\s*:\s*"((?:[^"\\]|\\.)*)', re.S)


@dataclass(frozen=True, slots=True)
class ToolPrompt:
    """What to send instead of the conversation, and the schema the reply must follow."""

    messages: list[Message]
    schema: dict[str, Any]
    names: frozenset[str]


def _function(tool: Mapping[str, Any], index: int) -> tuple[str, str, dict[str, Any]]:
    function = tool.get("function", tool)
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(name, str) or not name:
        raise ConfigError(f"tools[{index}]: a tool definition needs function.name")
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, Mapping):
        raise ConfigError(f"tools[{index}]: function.parameters must be a JSON Schema object")
    return name, str(function.get("description") or ""), dict(parameters)


def tool_prompt(messages: Sequence[Message], tools: Sequence[Mapping[str, Any]]) -> ToolPrompt:
    """The conversation rewritten for a model that only reads text: the tool list joins the
    system message, earlier tool calls become the JSON the model would have written, and tool
    results become user turns that say which tool they come from."""
    functions = [_function(tool, i) for i, tool in enumerate(tools)]
    listing = "\n".join(
        f"- {name}: {description or 'no description'} "
        f"Arguments: {json.dumps(parameters.get('properties', {}), ensure_ascii=False)}"
        for name, description, parameters in functions
    )
    instructions = _INSTRUCTIONS.format(tools=listing)
    calls: dict[str, str] = {}
    out: list[Message] = []
    for message in messages:
        role = message["role"]
        if role == "assistant" and message.get("tool_calls"):
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                calls[str(call.get("id", ""))] = str(function.get("name", ""))
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                written = {"tool": function.get("name", ""), "arguments": arguments}
                out.append({"role": "assistant", "content": json.dumps(written)})
        elif role == "assistant":
            answer = {"answer": message["content"]}
            out.append({"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)})
        elif role == "tool":
            tool = calls.get(message.get("tool_call_id", ""), "the tool")
            out.append({"role": "user", "content": f"Result of {tool}:\n{message['content']}"})
        else:
            out.append({"role": role, "content": message["content"]})
    if out and out[0]["role"] == "system":
        out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{instructions}"}
    else:
        out.insert(0, {"role": "system", "content": instructions})
    schema = {
        "oneOf": [
            *(
                {
                    "type": "object",
                    "properties": {"tool": {"const": name}, "arguments": parameters},
                    "required": ["tool", "arguments"],
                }
                for name, _, parameters in functions
            ),
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            },
        ]
    }
    return ToolPrompt(out, schema, frozenset(name for name, _, _ in functions))


def parse_tool_reply(text: str, names: frozenset[str], *, model: str) -> ModelResponse:
    """The constrained reply as a ModelResponse: a tool call, or the answer's text."""
    try:
        data = json.loads(text)
    except ValueError:
        partial = _PARTIAL_ANSWER.match(text)
        if partial is None:
            return ModelResponse(text=text.strip(), model=model, finish_reason="length")
        try:
            answer = json.loads(f'"{partial[1]}"')
        except ValueError:
            answer = partial[1]
        return ModelResponse(text=str(answer).strip(), model=model, finish_reason="length")
    if isinstance(data, dict) and data.get("tool") in names:
        arguments = data.get("arguments")
        call = ToolCall(
            id=f"call_{uuid.uuid4().hex[:12]}",
            name=str(data["tool"]),
            arguments=json.dumps(arguments if isinstance(arguments, dict) else {}),
        )
        return ModelResponse(text="", model=model, tool_calls=(call,), finish_reason="tool_calls")
    if isinstance(data, dict) and isinstance(data.get("answer"), str):
        return ModelResponse(text=data["answer"].strip(), model=model, finish_reason="stop")
    return ModelResponse(text=text.strip(), model=model, finish_reason="stop")
