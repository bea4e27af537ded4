"""tether's numpy MiniLM forward pass against two other CPU runtimes for the same weights.

The guards' embedding passes are most of the full stack's time on attack traffic (see
BENCHMARKS.md, "Campaign overhead"). This measures whether another runtime would make them
cheaper, on the same all-MiniLM-L6-v2 weights and the same token ids (tether's tokenizer), so
that only the forward pass differs:

- numpy: tether's own forward pass (`tether.embed`), float32, OpenBLAS.
- llama.cpp (llama-cpp-python, already installed with the embedded model): the weights
  converted to GGUF as f32, f16 and q8_0 with the `gguf` package.
- ONNX Runtime: the same graph built with `onnx`, float32, and dynamically quantized to int8
  (per tensor and per channel).

For each: the median time of one pass at 8, 32, 128 and 256 tokens, the time to embed the
texts the injection/jailbreak scan embeds in the 1,000-attack campaign of
`benchmarks/redteam.py overhead` (one pass per text, as in the campaign), and the cosine of
each vector to numpy's (the calibrations were fitted on numpy's vectors).

The extra packages are not tether dependencies; install them aside:

    .venv/bin/pip install --target /tmp/rt-extra onnx onnxruntime gguf
    PYTHONPATH=/tmp/rt-extra .venv/bin/python benchmarks/embedding_runtimes.py

A runtime whose package is missing is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from tether.embed import default_embedder
from tether.embed._minilm import _model_dir
from tether.guards import _adversarial
from tether.policy import load_policy
from tether.redteam import default_strategies, plan_campaign

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "examples" / "bank" / "policy.yaml"
Ids = list[int]
Embed = Callable[[Sequence[Ids]], np.ndarray]


def campaign_texts(attacks: int) -> list[str]:
    """The texts the adversarial scan embeds in `redteam.py overhead`'s campaign."""
    policy = load_policy(BANK)
    names = [n for n in default_strategies() if n != "direct"]
    strategies = [*default_strategies(), *(f"{n}+base64" for n in names),
                  *(f"roleplay+{n}" for n in names)]  # fmt: skip
    campaign = asyncio.run(
        plan_campaign(policy, tenant="northbank", strategies=strategies, budget=attacks)
    )
    seen: list[str] = []
    original = _adversarial._embedding_features

    def spy(model: Any, text: str) -> Any:
        seen.append(text)
        return original(model, text)

    _adversarial._embedding_features = spy  # type: ignore[assignment]
    try:
        for case in campaign.suite.cases:
            if case.input is not None:
                texts = [case.input]
            elif case.turns:
                texts = list(case.turns)
            else:
                texts = [m.content for m in case.messages or () if m.role == "user"]
            for text in texts:
                _adversarial.scan_adversarial(text)
    finally:
        _adversarial._embedding_features = original  # type: ignore[assignment]
    return seen


def numpy_runtime() -> Embed:
    model = default_embedder()._loaded()
    return lambda batch: model.embed([_Enc(ids) for ids in batch])


class _Enc:
    """The one field of a tokenizers.Encoding that the forward pass reads."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids


def _weights() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    directory = _model_dir(None)
    config = json.loads((directory / "config.json").read_text())
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    return config, load_file(str(directory / "model.safetensors")), tokenizer


_LAYER_NAMES = (
    ("attention.self.query", "attn_q"),
    ("attention.self.key", "attn_k"),
    ("attention.self.value", "attn_v"),
    ("attention.output.dense", "attn_output"),
    ("attention.output.LayerNorm", "attn_output_norm"),
    ("intermediate.dense", "ffn_up"),
    ("output.dense", "ffn_down"),
    ("output.LayerNorm", "layer_output_norm"),
)


def llama_runtime(kind: str, workdir: Path, threads: int) -> Embed:
    import gguf  # type: ignore[import-not-found]
    import llama_cpp

    config, weights, tokenizer = _weights()
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    special = [t.startswith("[") and t.endswith("]") for t in tokens]
    path = workdir / f"minilm-{kind}.gguf"
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_tokenizer_model("bert")
    writer.add_token_type_count(config["type_vocab_size"])
    # Token texts only matter to llama.cpp's own tokenizer, which is not used: ids are given.
    writer.add_token_list(
        [
            t if s else (t[2:] if t.startswith("##") else "\u2581" + t)
            for t, s in zip(tokens, special, strict=True)
        ]
    )
    writer.add_token_types([3 if s else 1 for s in special])
    writer.add_unk_token_id(vocab["[UNK]"])
    writer.add_sep_token_id(vocab["[SEP]"])
    writer.add_pad_token_id(vocab["[PAD]"])
    writer.add_bos_token_id(vocab["[CLS]"])
    writer.add_eos_token_id(vocab["[SEP]"])
    writer.add_mask_token_id(vocab["[MASK]"])
    names = {
        "embeddings.word_embeddings.weight": "token_embd.weight",
        "embeddings.position_embeddings.weight": "position_embd.weight",
        "embeddings.token_type_embeddings.weight": "token_types.weight",
        "embeddings.LayerNorm.weight": "token_embd_norm.weight",
        "embeddings.LayerNorm.bias": "token_embd_norm.bias",
    }
    for i in range(config["num_hidden_layers"]):
        for hf, gg in _LAYER_NAMES:
            for part in ("weight", "bias"):
                names[f"encoder.layer.{i}.{hf}.{part}"] = f"blk.{i}.{gg}.{part}"
    for hf, gg in names.items():
        tensor = weights[hf].astype(np.float32)
        matrix = tensor.ndim == 2 and "norm" not in gg and gg != "token_types.weight"
        if matrix and kind == "f16":
            writer.add_tensor(gg, tensor.astype(np.float16))
        elif matrix and kind == "q8_0":
            q8 = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(gg, gguf.quants.quantize(tensor, q8), raw_dtype=q8)
        else:
            writer.add_tensor(gg, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    llm = llama_cpp.Llama(
        str(path), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        n_ctx=512, n_batch=512, n_ubatch=512, n_threads=threads, n_threads_batch=threads,
        verbose=False,
    )  # fmt: skip
    dim = config["hidden_size"]

    def embed(batch: Sequence[Ids]) -> np.ndarray:
        llm._batch.reset()
        for seq, ids in enumerate(batch):
            llm._batch.add_sequence(ids, seq, True)
        llm._ctx.kv_cache_clear()
        llm._ctx.decode(llm._batch)
        out = np.empty((len(batch), dim), np.float32)
        for seq in range(len(batch)):
            pointer = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, seq)
            out[seq] = np.ctypeslib.as_array(pointer, shape=(dim,))
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    return embed


def _onnx_graph(path: Path) -> None:
    import onnx  # type: ignore[import-not-found]
    from onnx import TensorProto, helper, numpy_helper

    config, weights, _ = _weights()
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(kind: str, inputs: list[str], **attrs: Any) -> str:
        out = f"n{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def w(name: str) -> np.ndarray:
        return weights[name].astype(np.float32)

    def norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, const(prefix + ".w", w(prefix + ".weight")),
                  const(prefix + ".b", w(prefix + ".bias"))], axis=-1,
                  epsilon=config["layer_norm_eps"])  # fmt: skip

    def linear(x: str, prefix: str) -> str:
        product = op("MatMul", [x, const(prefix + ".wT", w(prefix + ".weight").T)])
        return op("Add", [product, const(prefix + ".b", w(prefix + ".bias"))])

    x = op("Gather", [const("word", w("embeddings.word_embeddings.weight")), "input_ids"], axis=0)
    length = op("Shape", ["input_ids"], start=1, end=2)
    positions = op("Slice", [const("pos", w("embeddings.position_embeddings.weight")),
                   const("zero", np.array([0], np.int64)), length,
                   const("axis0", np.array([0], np.int64))])  # fmt: skip
    x = op("Add", [op("Add", [x, positions]),
                   const("type", w("embeddings.token_type_embeddings.weight")[0])])  # fmt: skip
    x = norm(x, "embeddings.LayerNorm")
    mask4 = op("Unsqueeze", ["attention_mask", const("axes12", np.array([1, 2], np.int64))])
    one = const("one", np.array(1.0, np.float32))
    key_bias = op("Mul", [op("Sub", [one, mask4]), const("neg", np.array(-1e9, np.float32))])
    split = const("split", np.array([0, 0, heads, hidden // heads], np.int64))
    merge = const("merge", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1 / math.sqrt(hidden // heads), np.float32))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (op("Reshape", [linear(x, p + f"attention.self.{n}"), split])
                   for n in ("query", "key", "value"))  # fmt: skip
        q = op("Transpose", [q], perm=[0, 2, 1, 3])
        k = op("Transpose", [k], perm=[0, 2, 3, 1])
        v = op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), key_bias])
        context = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        context = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        x = norm(op("Add", [linear(context, p + "attention.output.dense"), x]),
                 p + "attention.output.LayerNorm")  # fmt: skip
        up = linear(x, p + "intermediate.dense")
        erf = op("Erf", [op("Mul", [up, const(f"r{i}", np.array(0.5**0.5, np.float32))])])
        gelu = op("Mul", [op("Mul", [up, op("Add", [erf, one])]),
                          const(f"h{i}", np.array(0.5, np.float32))])  # fmt: skip
        x = norm(op("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
    mask3 = op("Unsqueeze", ["attention_mask", const("axis2", np.array([2], np.int64))])
    axis1 = const("axis1", np.array([1], np.int64))
    pooled = op("Div", [op("ReduceSum", [op("Mul", [x, mask3]), axis1], keepdims=0),
                        op("ReduceSum", [mask3, axis1], keepdims=0)])  # fmt: skip
    nodes.append(helper.make_node("LpNormalization", [pooled], ["embedding"], axis=-1, p=2))
    graph = helper.make_graph(
        nodes, "minilm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "T"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["B", "T"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", hidden])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_runtime(kind: str, workdir: Path, threads: int) -> Embed:
    import onnxruntime  # type: ignore[import-not-found]

    path = workdir / "minilm.onnx"
    if not path.exists():
        _onnx_graph(path)
    if kind != "fp32":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = workdir / f"minilm-{kind}.onnx"
        quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8,
                         per_channel=kind == "int8-per-channel")  # fmt: skip
        path = quantized
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip

    def embed(batch: Sequence[Ids]) -> np.ndarray:
        length = max(map(len, batch))
        ids = np.zeros((len(batch), length), np.int64)
        mask = np.zeros((len(batch), length), np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        out: np.ndarray = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out

    return embed


def median_ms(embed: Embed, ids: Ids, repeats: int) -> float:
    embed([ids])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed([ids])
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    embedder = default_embedder()
    model = embedder._loaded()
    texts = campaign_texts(args.attacks)
    windows = [text[a:b] for text in texts for a, b in embedder.windows(text)]
    encoded = [e.ids for e in model.encode(windows)]
    reference = numpy_runtime()
    expected = np.concatenate([reference([ids]) for ids in encoded[:200]])
    runtimes: list[tuple[str, Callable[[], Embed]]] = [("numpy float32 (tether)", numpy_runtime)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in ("f32", "f16", "q8_0"):
            runtimes.append((f"llama.cpp {kind}",
                             lambda k=kind: llama_runtime(k, work, args.threads)))  # type: ignore[misc]  # fmt: skip
        for kind in ("fp32", "int8", "int8-per-channel"):
            runtimes.append((f"ONNX Runtime {kind}",
                             lambda k=kind: onnx_runtime(k, work, args.threads)))  # type: ignore[misc]  # fmt: skip
        print(f"{len(texts)} texts the scan embeds ({len(windows)} windows, "
              f"{sum(map(len, encoded))} tokens) in a {args.attacks}-attack campaign; "
              f"{args.threads} threads; {platform.machine()}, "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")  # fmt: skip
        print("| runtime | 8 tok (ms) | 32 tok | 128 tok | 256 tok | campaign's texts (s) | "
              "cosine to numpy, min / median |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for name, build in runtimes:
            try:
                embed = build()
            except ImportError as exc:
                print(f"| {name} | skipped: {exc.name} is not installed | | | | | |")
                continue
            cells = [median_ms(embed, [101, *[2773] * (n - 2), 102], args.repeats)
                     for n in (8, 32, 128, 256)]  # fmt: skip
            t0 = time.perf_counter()
            for ids in encoded:
                embed([ids])
            total = time.perf_counter() - t0
            got = np.concatenate([embed([ids]) for ids in encoded[:200]])
            cosines = np.sum(got * expected, axis=1)
            print(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cells) +
                  f" | {total:.1f} | {cosines.min():.4f} / {np.median(cosines):.4f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
