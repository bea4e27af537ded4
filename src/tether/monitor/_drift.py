"""Drift: are live inputs (or outputs) still distributed like a reference? A kernel two-sample
test (unbiased MMD², Gaussian kernel, median-distance bandwidth) on sentence embeddings with a
permutation p-value, and the topics whose share grew: the policy's topics (nearest by
embedding) and clusters of the texts themselves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from tether.embed import Embedder, default_embedder
from tether.policy import Policy
from tether.store import DriftReport, Store

from ._alerts import rise_p_value

__all__ = ["DriftResult", "drift_between", "drift_check", "mmd_test", "suite_texts"]

Matrix = npt.NDArray[np.float32]
# Below this cosine similarity to every policy topic, a text is "outside the policy's topics".
TOPIC_MIN_SIMILARITY = 0.3
OUTSIDE = "(outside the policy's topics)"


class DriftResult(BaseModel):
    """A drift test's answer (what a :class:`DriftReport` stores, without its record fields)."""

    model_config = ConfigDict(frozen=True)

    n_reference: int
    n_live: int
    statistic: float
    p_value: float
    alpha: float
    drifted: bool
    topics: list[dict[str, Any]]


def _sq_dists(x: Matrix) -> npt.NDArray[np.float64]:
    x64 = x.astype(np.float64)
    norms = (x64 * x64).sum(axis=1)
    d = norms[:, None] + norms[None, :] - 2.0 * (x64 @ x64.T)
    out: npt.NDArray[np.float64] = np.maximum(d, 0.0)
    return out


def mmd_test(
    reference: Matrix, live: Matrix, *, permutations: int = 500, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD² between two samples of vectors and its permutation p-value."""
    n, m = len(reference), len(live)
    if n < 2 or m < 2:
        raise ValueError("each sample needs at least 2 texts")
    pooled = np.vstack([reference, live])
    d = _sq_dists(pooled)
    off = d[~np.eye(n + m, dtype=bool)]
    bandwidth = float(np.median(off)) or 1.0
    k = np.exp(-d / bandwidth)
    np.fill_diagonal(k, 0.0)
    row = k.sum(axis=1)
    total = float(row.sum())

    def mmd(labels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # labels: (N, P) indicator of the "reference" side for P assignments at once.
        kx = k @ labels
        s_xx = (labels * kx).sum(axis=0)
        s_xy = labels.T @ row - s_xx
        s_yy = total - s_xx - 2.0 * s_xy
        out: npt.NDArray[np.float64] = (
            s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)
        )
        return out

    observed_labels = np.zeros((n + m, 1))
    observed_labels[:n] = 1.0
    observed = float(mmd(observed_labels)[0])
    rng = np.random.default_rng(seed)
    exceed = 0
    done = 0
    while done < permutations:
        batch = min(100, permutations - done)
        labels = np.zeros((n + m, batch))
        for j in range(batch):
            labels[rng.permutation(n + m)[:n], j] = 1.0
        exceed += int((mmd(labels) >= observed).sum())
        done += batch
    return observed, (1 + exceed) / (1 + permutations)


def _kmeans(x: Matrix, k: int, seed: int, iterations: int = 30) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):  # k-means++ seeding
        d = np.min(((x[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
        probs = d / d.sum() if d.sum() > 0 else np.full(len(x), 1 / len(x))
        centers.append(x[rng.choice(len(x), p=probs)])
    c = np.array(centers)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        new = np.argmax(x @ c.T, axis=1)  # unit vectors: nearest = most similar
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                mean = members.mean(axis=0)
                c[j] = mean / (np.linalg.norm(mean) or 1.0)
    return labels


def _shares(
    names: Sequence[str],
    ref_labels: Sequence[str],
    live_labels: Sequence[str],
    live_texts: Sequence[str],
    live_vecs: Matrix,
    centers: dict[str, npt.NDArray[np.float32]] | None,
    source: str,
) -> list[dict[str, Any]]:
    n, m = len(ref_labels), len(live_labels)
    out = []
    for name in names:
        a = sum(1 for x in ref_labels if x == name)
        b = sum(1 for x in live_labels if x == name)
        if b == 0:
            continue
        members = [i for i, x in enumerate(live_labels) if x == name]
        if centers is not None and name in centers:
            best = members[int(np.argmax(live_vecs[members] @ centers[name]))]
        else:
            best = members[0]
        out.append(
            {
                "source": source,
                "topic": name,
                "reference_share": a / n,
                "live_share": b / m,
                "growth": b / m - a / n,
                "p_value": rise_p_value(a, n, b, m),
                "example": live_texts[best],
            }
        )
    return out


def topic_growth(
    ref_texts: Sequence[str],
    ref_vecs: Matrix,
    live_texts: Sequence[str],
    live_vecs: Matrix,
    *,
    policy: Policy | None = None,
    embedder: Embedder | None = None,
    clusters: int = 8,
    seed: int = 0,
    top: int = 5,
) -> list[dict[str, Any]]:
    """Topics whose share of texts grew from reference to live, largest growth first: the
    policy's topics (a text goes to the nearest, by its examples' centroid) and clusters of
    the pooled texts (named by their most central live text)."""
    found: list[dict[str, Any]] = []
    topics = (
        [] if policy is None else [*policy.scope.allowed_topics, *policy.scope.forbidden_topics]
    )
    if topics:
        emb = embedder or default_embedder()
        centers: dict[str, npt.NDArray[np.float32]] = {}
        for t in topics:
            vecs = emb.embed([t.description, *t.examples])
            mean = vecs.mean(axis=0)
            centers[t.name] = (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)
        names = list(centers)
        matrix = np.array([centers[nm] for nm in names])

        def assign(vecs: Matrix) -> list[str]:
            sims = vecs @ matrix.T
            best = np.argmax(sims, axis=1)
            return [
                names[j] if sims[i, j] >= TOPIC_MIN_SIMILARITY else OUTSIDE
                for i, j in enumerate(best)
            ]

        found += _shares(
            [*names, OUTSIDE], assign(ref_vecs), assign(live_vecs), live_texts, live_vecs,
            centers, "policy",
        )  # fmt: skip
    pooled = np.vstack([ref_vecs, live_vecs])
    k = max(2, min(clusters, len(pooled) // 20))
    labels = _kmeans(pooled, k, seed)
    cluster_centers = {}
    for j in range(k):
        members = pooled[labels == j]
        if len(members):
            mean = members.mean(axis=0)
            cluster_centers[f"cluster {j}"] = (mean / (np.linalg.norm(mean) or 1.0)).astype(
                np.float32
            )
    named = [f"cluster {j}" for j in labels]
    n = len(ref_vecs)
    rows = _shares(
        list(cluster_centers), named[:n], named[n:], live_texts, live_vecs, cluster_centers,
        "cluster",
    )  # fmt: skip
    for r in rows:  # a cluster is known by its most central live text
        r["topic"] = f"{r['topic']}: {r['example'][:80]}"
    found += rows
    grew = [r for r in found if r["growth"] > 0]
    grew.sort(key=lambda r: -r["growth"])
    per_source: dict[str, int] = {}
    kept = []
    for r in grew:
        if per_source.get(r["source"], 0) < top:
            per_source[r["source"]] = per_source.get(r["source"], 0) + 1
            kept.append(r)
    return kept


def _sample(texts: Sequence[str], limit: int, seed: int) -> list[str]:
    clean = [t for t in texts if t and t.strip()]
    if len(clean) <= limit:
        return clean
    rng = np.random.default_rng(seed)
    return [clean[i] for i in sorted(rng.choice(len(clean), size=limit, replace=False))]


def drift_between(
    reference: Sequence[str],
    live: Sequence[str],
    *,
    alpha: float = 0.01,
    samples: int = 300,
    permutations: int = 500,
    policy: Policy | None = None,
    embedder: Embedder | None = None,
    seed: int = 0,
) -> DriftResult:
    """Test whether ``live`` texts are distributed like ``reference`` texts (at most
    ``samples`` drawn from each)."""
    ref = _sample(reference, samples, seed)
    cur = _sample(live, samples, seed + 1)
    if len(ref) < 10 or len(cur) < 10:
        raise ValueError(
            "a drift test needs at least 10 texts on each side "
            f"(reference {len(ref)}, live {len(cur)})"
        )
    emb = embedder or default_embedder()
    ref_vecs, live_vecs = emb.embed(ref), emb.embed(cur)
    statistic, p_value = mmd_test(ref_vecs, live_vecs, permutations=permutations, seed=seed)
    topics = topic_growth(ref, ref_vecs, cur, live_vecs, policy=policy, embedder=emb, seed=seed)
    return DriftResult(
        n_reference=len(ref),
        n_live=len(cur),
        statistic=statistic,
        p_value=p_value,
        alpha=alpha,
        drifted=p_value < alpha,
        topics=topics,
    )


def suite_texts(path: str | Path) -> list[str]:
    """The user messages of an eval suite's cases (a drift reference)."""
    from tether.evals import load_suite

    return [case.last_user_text for case in load_suite(path).cases]


def drift_check(
    store: Store,
    tenant: str,
    *,
    since: datetime,
    until: datetime,
    reference_suite: str | Path | None = None,
    reference_since: datetime | None = None,
    reference_until: datetime | None = None,
    stream: Literal["input", "output"] = "input",
    alpha: float = 0.01,
    samples: int = 300,
    permutations: int = 500,
    policy: Policy | None = None,
    embedder: Embedder | None = None,
    save: bool = True,
) -> DriftReport:
    """Test ``tenant``'s live traffic in ``[since, until)`` against an eval suite's inputs or a
    past window of its own traffic, and (with ``save``) store the report."""
    live = store.sample_texts(tenant, since=since, until=until, stream=stream, limit=samples)
    if reference_suite is not None:
        if stream == "output":
            raise ValueError("an eval suite has no outputs: compare outputs with a past window")
        reference = suite_texts(reference_suite)
        described = f"suite:{reference_suite}"
    elif reference_since is not None and reference_until is not None:
        reference = store.sample_texts(
            tenant, since=reference_since, until=reference_until, stream=stream, limit=samples
        )
        described = f"window:{reference_since.isoformat()}..{reference_until.isoformat()}"
    else:
        raise ValueError("give a reference: an eval suite or a past window")
    result = drift_between(
        reference, live, alpha=alpha, samples=samples, permutations=permutations,
        policy=policy, embedder=embedder,
    )  # fmt: skip
    fields = {
        "tenant": tenant,
        "stream": stream,
        "reference": described,
        "since": since,
        "until": until,
        **result.model_dump(),
    }
    if save:
        return store.add_drift_report(**fields)
    from datetime import UTC

    return DriftReport(id=0, created_at=datetime.now(UTC), **fields)
