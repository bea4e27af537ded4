"""Train the adversarial-input classifier, fit the fusion and calibrate thresholds.

    .venv/bin/python training/train_adversarial.py        (or: make train)

Writes src/tether/guards/data/adversarial.npz (the versioned artifact the guards load) and
training/adversarial-report.json (sizes, splits, calibration figures). Deterministic: same
data and seed, same artifact.
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _artifacts import write_artifact
from _logreg import train_sparse_logreg
from data import LABELS, Item, load_items

from tether.guards._adversarial import AdversarialModel, scan_adversarial, text_features
from tether.guards._normalize import normalize
from tether.guards._rules import CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "src/tether/guards/data/adversarial.npz"
REPORT = ROOT / "training/adversarial-report.json"
SEED = 13
MAX_VOCAB = 40_000
# Target false-positive rates on calibration benign text, per preset.
PRESET_FPR = {"permissive": 0.002, "balanced": 0.01, "strict": 0.03}
PRESET_FLOOR = {"permissive": 0.7, "balanced": 0.5, "strict": 0.3}


def featurize(
    items: list[Item], vocab: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR-style (indptr, indices, values), rows L2-normalised like inference does."""
    indptr = [0]
    indices: list[int] = []
    values: list[float] = []
    for item in items:
        idx = sorted(
            {vocab[f] for f in text_features(normalize(item.text).text, item.role) if f in vocab}
        )
        indices += idx
        values += [1.0 / math.sqrt(len(idx))] * len(idx) if idx else []
        indptr.append(len(indices))
    return np.array(indptr), np.array(indices, dtype=np.int64), np.array(values, dtype=np.float32)


def train_classifier(
    items: list[Item], vocab: dict[str, int], *, epochs: int = 400, l2: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest logistic regression by full-batch Adam on the sparse features."""
    indptr, indices, values = featurize(items, vocab)
    n, k = len(items), len(CATEGORIES)
    y = np.zeros((n, k), dtype=np.float32)
    for i, item in enumerate(items):
        if item.label != "benign":
            y[i, CATEGORIES.index(item.label)] = 1.0
    # Balance each head: positives and negatives weigh the same in total.
    pos = y.sum(axis=0).clip(1)
    weight = np.where(y == 1, n / (2 * pos), n / (2 * (n - pos).clip(1))).astype(np.float32)
    return train_sparse_logreg(indptr, indices, values, y, weight, len(vocab), epochs=epochs, l2=l2)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, steps: int = 3000
) -> np.ndarray:
    """Small dense logistic regression (balanced), returns weights with the bias last."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    # Positives weigh at most 3x their natural share: fully balanced weights would pull the
    # boundary deep into benign territory, where unseen everyday prompts live.
    pos = max(1.0, float(y.sum()))
    neg = max(1.0, float(len(y) - y.sum()))
    sw = np.where(y == 1, min(3.0, neg / pos), 1.0)
    sw = sw * len(y) / sw.sum()
    theta = np.zeros(x1.shape[1])
    lr = 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x1 @ theta)))
        grad = x1.T @ ((p - y) * sw) / len(y) + l2 * np.r_[theta[:-1], 0]
        theta -= lr * grad
    return theta


def main() -> None:
    random.seed(SEED)
    items = load_items()
    by_split = {s: [i for i in items if i.split == s] for s in ("train", "calib", "test")}
    train = by_split["train"]
    print(f"items: {len(items)}; " + ", ".join(f"{s}: {len(v)}" for s, v in by_split.items()))
    print("train labels:", dict(Counter(i.label for i in train)))

    df: Counter[str] = Counter()
    for item in train:
        df.update(set(text_features(normalize(item.text).text, item.role)))
    names = sorted(
        (f for f, c in df.items() if c >= 2 or f.startswith("r:")), key=lambda f: (-df[f], f)
    )[:MAX_VOCAB]
    names.sort()
    vocab = {f: i for i, f in enumerate(names)}
    print(f"vocabulary: {len(vocab)} features")
    weights, bias = train_classifier(train, vocab)

    # Exemplars for embedding similarity: attacks and benign text from the training split.
    from tether.embed import default_embedder

    rng = random.Random(SEED)
    chosen: list[Item] = []
    for label, cap in (
        ("benign", 1500),
        ("jailbreak", 400),
        ("injection", 400),
        ("prompt_extraction", 300),
    ):
        pool = [i for i in train if i.label == label]
        rng.shuffle(pool)
        chosen += pool[:cap]
    exemplars = (
        default_embedder().embed([normalize(i.text).text for i in chosen]).astype(np.float32)
    )
    exemplar_labels = np.array([LABELS.index(i.label) for i in chosen], dtype=np.int8)

    provisional = AdversarialModel(
        vocab=vocab,
        weights=weights,
        bias=bias,
        fusion_fast=np.tile([1.0, 0.0, 0.0], (len(CATEGORIES), 1)),
        fusion_full=np.tile([1.0, 0.0, 0.0, 0.0, 0.0], (len(CATEGORIES), 1)),
        thresholds={},
        exemplars=exemplars,
        exemplar_labels=exemplar_labels,
    )

    calib = by_split["calib"]
    feats = []
    emb_benign_list = []
    for item in calib:
        scan = scan_adversarial(item.text, role=item.role, embeddings=True, model=provisional)
        row = []
        for c in CATEGORIES:
            s = scan.scores[c]
            clf_logit = math.log(max(s.classifier, 1e-9) / max(1 - s.classifier, 1e-9))
            row.append((clf_logit, s.rules, s.embedding or 0.0))
        feats.append(row)
        emb_benign_list.append(scan.benign_similarity or 0.0)
    f = np.array(feats)  # (n, categories, 3)
    emb_benign = np.array(emb_benign_list)
    labels = np.array([i.label for i in calib])

    fusion_fast = np.zeros((len(CATEGORIES), 3))
    fusion_full = np.zeros((len(CATEGORIES), 5))
    thresholds: dict[str, dict[str, dict[str, float]]] = {"fast": {}, "full": {}}
    calibration: dict[str, dict[str, float]] = {}
    for c, category in enumerate(CATEGORIES):
        keep = (labels == "benign") | (labels == category)
        y = (labels[keep] == category).astype(float)
        x_fast = f[keep, c, :2]
        x_full = np.hstack([f[keep, c, :], emb_benign[keep, None]])
        fusion_fast[c] = fit_logistic(x_fast, y)
        fusion_full[c] = fit_logistic(x_full, y)
        for mode, theta, x in (("fast", fusion_fast[c], x_fast), ("full", fusion_full[c], x_full)):
            scores = 1 / (1 + np.exp(-(np.hstack([x, np.ones((len(x), 1))]) @ theta)))
            benign_scores = np.sort(scores[y == 0])
            for preset, fpr in PRESET_FPR.items():
                q = float(np.quantile(benign_scores, 1 - fpr)) if len(benign_scores) else 0.5
                t = round(min(0.99, max(PRESET_FLOOR[preset], q + 1e-4)), 4)
                thresholds[mode].setdefault(preset, {})[category] = t
            t = thresholds[mode]["balanced"][category]
            calibration[f"{category}/{mode}"] = {
                "positives": int(y.sum()),
                "negatives": int(len(y) - y.sum()),
                "detection_at_balanced": round(
                    float((scores[y == 1] >= t).mean()) if y.sum() else 0.0, 4
                ),
                "fpr_at_balanced": round(
                    float((scores[y == 0] >= t).mean()) if (y == 0).any() else 0.0, 4
                ),
            }
    # Embedding gate: the transformer only runs on texts whose fast score reaches it. Chosen so
    # that 99% of calibration attacks of every category pass; report how much benign text does.
    fast_scores = np.zeros((len(calib), len(CATEGORIES)))
    for c in range(len(CATEGORIES)):
        x = np.hstack([f[:, c, :2], np.ones((len(calib), 1))])
        fast_scores[:, c] = 1 / (1 + np.exp(-(x @ fusion_fast[c])))
    top = fast_scores.max(axis=1)
    attack_top = top[labels != "benign"]
    gate = float(np.clip(np.quantile(attack_top, 0.01), 0.005, 0.2))
    calibration["embedding_gate"] = {
        "gate": round(gate, 4),
        "attacks_passing": round(float((attack_top >= gate).mean()), 4),
        "benign_passing": round(float((top[labels == "benign"] >= gate).mean()), 4),
    }
    print(json.dumps(calibration, indent=1))

    meta = {
        "thresholds": thresholds,
        "embedding_gate": round(gate, 4),
        "categories": list(CATEGORIES),
        "trained_on": {s: dict(Counter(i.label for i in v)) for s, v in by_split.items()},
        "sources": dict(Counter(i.source for i in items)),
        "seed": SEED,
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        meta=np.array(json.dumps(meta, sort_keys=True)),
        vocab=np.array("\n".join(names)),
        weights=weights.astype(np.float16),
        bias=bias.astype(np.float32),
        fusion_fast=fusion_fast,
        fusion_full=fusion_full,
        exemplars=exemplars.astype(np.float16),
        exemplar_labels=exemplar_labels,
    )
    digest = write_artifact(
        ARTIFACT, REPORT, buffer.getvalue(), {**meta, "calibration": calibration}
    )
    print(
        f"wrote {ARTIFACT.relative_to(ROOT)} ({len(buffer.getvalue()) / 1e6:.2f} MB, sha256 {digest})"
    )


if __name__ == "__main__":
    main()
