"""Chat models: the ChatModel protocol, the embedded default, an OpenAI-compatible client, fakes."""

from __future__ import annotations

from ._embedded import DEFAULT_MODEL_FILE, EmbeddedModel
from ._openai import OpenAICompatibleModel
from ._protocol import ChatModel, ModelResponse, ToolCall, Usage
from ._scripted import ScriptedModel
from ._spec import load_model

__all__ = [
    "DEFAULT_MODEL_FILE",
    "ChatModel",
    "EmbeddedModel",
    "ModelResponse",
    "OpenAICompatibleModel",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "load_model",
]
