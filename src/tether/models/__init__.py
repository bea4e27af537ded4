"""Chat models: the ChatModel protocol, the embedded default, OpenAI-compatible and Anthropic
clients, fakes."""

from __future__ import annotations

from ._anthropic import AnthropicModel
from ._embedded import DEFAULT_MODEL_FILE, EmbeddedModel
from ._openai import OpenAICompatibleModel
from ._protocol import ChatModel, ModelResponse, ToolCall, Usage
from ._scripted import ScriptedModel
from ._spec import load_model

__all__ = [
    "DEFAULT_MODEL_FILE",
    "AnthropicModel",
    "ChatModel",
    "EmbeddedModel",
    "ModelResponse",
    "OpenAICompatibleModel",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "load_model",
]
