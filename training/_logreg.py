"""Logistic regression by full-batch Adam on sparse rows, shared by the training scripts."""

from __future__ import annotations

import numpy as np


def train_sparse_logreg(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    n_features: int,
    *,
    epochs: int,
    l2: float,
    lr: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest heads: ``y`` and ``weight`` are (rows, heads); rows are CSR-style
    (``indptr``, ``indices``, ``values``). Deterministic for the same inputs."""
    n, k = y.shape
    row_of = np.repeat(np.arange(n), np.diff(indptr))
    w = np.zeros((n_features, k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    beta1, beta2 = 0.9, 0.999
    for step in range(1, epochs + 1):
        logits = np.zeros((n, k), dtype=np.float32)
        np.add.at(logits, row_of, w[indices] * values[:, None])
        logits += b
        p = 1 / (1 + np.exp(-logits))
        err = (p - y) * weight / n
        g_w = np.zeros_like(w)
        np.add.at(g_w, indices, err[row_of] * values[:, None])
        g_w += l2 * w
        g_b = err.sum(axis=0)
        for param, grad, m, v in ((w, g_w, m_w, v_w), (b, g_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= lr * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + 1e-8)
    return w, b
