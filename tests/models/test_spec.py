from __future__ import annotations

from pathlib import Path

import pytest

from tether.errors import ConfigError, ModelNotAvailableError, UnknownComponentError
from tether.models import (
    DEFAULT_MODEL_FILE,
    ChatModel,
    EmbeddedModel,
    OpenAICompatibleModel,
    ScriptedModel,
    load_model,
)


def test_embedded_default() -> None:
    model = load_model("embedded", timeout_s=5)
    assert isinstance(model, EmbeddedModel)
    assert model.model_path.name == DEFAULT_MODEL_FILE
    assert model.name == "embedded:SmolLM2-135M-Instruct"


def test_embedded_with_path_and_settings(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny-chat.Q8_0.gguf"
    gguf.touch()  # the file is only read on first use
    model = load_model(f"embedded:{gguf}", n_ctx=512)
    assert isinstance(model, EmbeddedModel)
    assert (model.model_path, model.n_ctx, model.name) == (gguf, 512, "embedded:tiny-chat")


async def test_openai_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    model = load_model("openai:gpt-4o-mini", timeout_s=5)
    assert isinstance(model, OpenAICompatibleModel)
    assert (model.name, model.base_url, model.timeout_s) == (
        "openai:gpt-4o-mini",
        "https://api.openai.com/v1",
        5,
    )
    await model.aclose()

    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9999/v1/")
    model = load_model("openai:gpt-4o-mini")
    assert isinstance(model, OpenAICompatibleModel)
    assert model.base_url == "http://localhost:9999/v1"
    await model.aclose()


@pytest.mark.parametrize(
    ("spec", "model_id", "base_url"),
    [
        ("openai:llama3@http://127.0.0.1:8000/v1", "llama3", "http://127.0.0.1:8000/v1"),
        ("openai:claude@2024@https://u:p@host/v1", "claude@2024", "https://u:p@host/v1"),
    ],
)
async def test_openai_with_base_url(spec: str, model_id: str, base_url: str) -> None:
    model = load_model(spec)
    assert isinstance(model, OpenAICompatibleModel)
    assert (model.model, model.base_url) == (model_id, base_url)
    await model.aclose()


async def test_scripted_file(tmp_path: Path) -> None:
    replies = tmp_path / "replies.yaml"
    replies.write_text("- canned\n", encoding="utf-8")
    model = load_model(f"scripted:{replies}", timeout_s=5, repeat_last=True)
    assert isinstance(model, ScriptedModel)
    assert isinstance(model, ChatModel)
    assert [(await model.generate([])).text for _ in range(2)] == ["canned", "canned"]


@pytest.mark.parametrize(
    "spec",
    ["", "  ", ":x", "openai", "openai:", "anthropic", "anthropic:", "scripted", "embedded:"],
)
def test_malformed_spec_names_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"use one of: embedded, embedded:/path"):
        load_model(spec)


def test_unknown_kind() -> None:
    with pytest.raises(UnknownComponentError, match="did you mean 'embedded'"):
        load_model("embeded")
    with pytest.raises(UnknownComponentError, match="unknown model 'gemini'"):
        load_model("gemini:pro")


@pytest.mark.parametrize(
    ("spec", "settings", "message"),
    [
        ("openai:m@localhost:8000/v1", {}, "must start with http:// or https://"),
        ("openai:m", {"max_retries": -1}, "max_retries: Input should be greater than"),
        ("embedded", {"bogus": 1}, "bogus: Extra inputs are not permitted"),
        ("openai:m", {"model": "other"}, "already sets model"),
    ],
)
def test_bad_specs_and_settings(spec: str, settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_model(spec, **settings)


def test_missing_model_file() -> None:
    with pytest.raises(ModelNotAvailableError, match=r"model file not found: /nowhere/x\.gguf"):
        load_model("embedded:/nowhere/x.gguf")
