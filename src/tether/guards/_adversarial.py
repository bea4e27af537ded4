"""Adversarial-input detectors: jailbreak, injection and prompt extraction.

Three layers score every normalized view of a text (see ``_normalize.views``):

1. the curated rule pack (``_rules``), RE2, linear time;
2. a small learned classifier: one-vs-rest logistic regression over word unigrams and
   bigrams, trained by ``training/train_adversarial.py`` (``make train``) into
   ``data/adversarial.npz``;
3. optionally, embedding similarity (all-MiniLM-L6-v2) to attack and benign exemplars, so
   paraphrases of known attacks score high even with new wording.

A per-category logistic fusion, fitted on a calibration split the classifier never saw,
turns the layer scores into one probability-like score; presets are thresholds chosen on
held-out benign text for a target false-positive rate. Long texts are scanned in
overlapping windows; nothing is truncated.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tether.errors import ModelNotAvailableError
from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import View, views
from ._rules import CATEGORIES, AdversarialCategory, RuleHit, compiled_rules

__all__ = [
    "PRESETS",
    "AdversarialModel",
    "AdversarialParams",
    "AdversarialScan",
    "CategoryScore",
    "InjectionGuard",
    "JailbreakGuard",
    "PromptExtractionGuard",
    "default_adversarial_model",
    "scan_adversarial",
    "text_features",
]

Preset = Literal["permissive", "balanced", "strict"]
PRESETS: tuple[Preset, ...] = ("permissive", "balanced", "strict")
UNTRUSTED_ROLES = frozenset({"tool", "document", "function", "retrieval"})

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]", re.UNICODE)
_WINDOW_TOKENS = 256
_WINDOW_STRIDE = 192
ARTIFACT = "adversarial.npz"


def text_features(text: str, role: str) -> list[str]:
    """The classifier's feature names for ``text`` (already normalized): unigrams, bigrams
    and the role. Shared with the training script so both sides featurize identically."""
    tokens = _TOKEN.findall(text)
    out = [f"w:{t}" for t in tokens]
    out += [f"b:{a} {b}" for a, b in itertools.pairwise(tokens)]
    out.append(f"r:{'untrusted' if role in UNTRUSTED_ROLES else 'user'}")
    return out


def _windows(text: str) -> list[str]:
    """Overlapping token windows of a long text; short texts are one window."""
    spans = [m.span() for m in _TOKEN.finditer(text)]
    if len(spans) <= _WINDOW_TOKENS + _WINDOW_TOKENS // 4:
        return [text]
    out = []
    for start in range(0, len(spans), _WINDOW_STRIDE):
        chunk = spans[start : start + _WINDOW_TOKENS]
        out.append(text[chunk[0][0] : chunk[-1][1]])
        if start + _WINDOW_TOKENS >= len(spans):
            break
    return out


@dataclass(frozen=True)
class AdversarialModel:
    """The trained artifact: classifier weights, fusion coefficients, thresholds, exemplars."""

    vocab: dict[str, int]
    weights: np.ndarray  # (vocab, categories)
    bias: np.ndarray  # (categories,)
    fusion_fast: np.ndarray  # (categories, 3): classifier, rules, bias
    fusion_full: np.ndarray  # (categories, 5): classifier, rules, emb attack, emb benign, bias
    thresholds: dict[str, dict[str, dict[str, float]]]  # mode -> preset -> category -> threshold
    exemplars: np.ndarray  # (n, dim) float32, L2-normalised
    exemplar_labels: np.ndarray  # (n,) int: 0 benign, 1.. = CATEGORIES index + 1
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> AdversarialModel:
        try:
            source = Path(path) if path else resources.files("tether.guards") / "data" / ARTIFACT
            with source.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                vocab_list = str(npz["vocab"]).split("\n")
                return cls(
                    vocab={name: i for i, name in enumerate(vocab_list)},
                    weights=npz["weights"].astype(np.float32),
                    bias=npz["bias"].astype(np.float32),
                    fusion_fast=npz["fusion_fast"].astype(np.float64),
                    fusion_full=npz["fusion_full"].astype(np.float64),
                    thresholds=meta.pop("thresholds"),
                    exemplars=npz["exemplars"].astype(np.float32),
                    exemplar_labels=npz["exemplar_labels"].astype(np.int8),
                    meta=meta,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"the adversarial-input model could not be read ({exc}); "
                "run `make train` to rebuild it"
            ) from exc

    def classify(self, text: str, role: str) -> np.ndarray:
        """Classifier logits per category for one normalized text (max over windows)."""
        best = np.full(len(CATEGORIES), -20.0, dtype=np.float32)
        for window in _windows(text):
            idx = sorted(
                {i for f in text_features(window, role) if (i := self.vocab.get(f)) is not None}
            )
            if idx:
                logits = self.weights[idx].sum(axis=0) / math.sqrt(len(idx)) + self.bias
            else:
                logits = self.bias.copy()
            best = np.maximum(best, logits)
        return best


@dataclass(frozen=True, slots=True)
class CategoryScore:
    """One category's fused score and the evidence behind it."""

    score: float
    classifier: float
    rules: float
    embedding: float | None
    hits: tuple[RuleHit, ...]
    spans: tuple[tuple[int, int], ...]
    view: str


@dataclass(frozen=True, slots=True)
class AdversarialScan:
    role: str
    embeddings: bool
    scores: dict[str, CategoryScore]
    benign_similarity: float | None = None


_model_lock = threading.Lock()
_model: AdversarialModel | None = None


def default_adversarial_model() -> AdversarialModel:
    """The packaged model, loaded once per process."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                _model = AdversarialModel.load()
    return _model


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, x))))


def _embedding_features(model: AdversarialModel, text: str) -> np.ndarray:
    """Per category: (max cosine to that category's exemplars, max cosine to benign ones)."""
    from tether.embed import default_embedder

    embedder = default_embedder()
    chunks = [text[a:b] for a, b in embedder.windows(text)] or [text]
    vectors = embedder.embed(chunks)
    sims = vectors @ model.exemplars.T  # (windows, exemplars)
    best = sims.max(axis=0)
    out = np.zeros((len(CATEGORIES), 2), dtype=np.float64)
    benign = best[model.exemplar_labels == 0]
    benign_max = float(benign.max()) if benign.size else 0.0
    for c in range(len(CATEGORIES)):
        mine = best[model.exemplar_labels == c + 1]
        out[c] = (float(mine.max()) if mine.size else 0.0, benign_max)
    return out


_ScanKey = tuple[str, str, bool]
_cache: OrderedDict[_ScanKey, AdversarialScan] = OrderedDict()
# Scans being computed: the jailbreak, injection and prompt-extraction guards of one turn run
# at once on the same text, so all three would miss the cache and score it three times.
# The first computes; the others wait for its result (the event is set when it is cached).
_in_flight: dict[_ScanKey, threading.Event] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 256


def scan_adversarial(
    text: str, *, role: str = "user", embeddings: bool = True, model: AdversarialModel | None = None
) -> AdversarialScan:
    """Score ``text`` for every adversarial category at once (the three guards share it:
    a scan another thread is computing is waited for, not repeated)."""
    if model is not None:
        return _scan(text, role, embeddings, model)
    key = (text, role, embeddings)
    while True:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
            running = _in_flight.get(key)
            if running is None:
                done = _in_flight[key] = threading.Event()
                break
        # Another thread is scoring this text. If it fails, nothing is cached and this one
        # takes its turn to compute (and meets the same error itself).
        running.wait()
    try:
        result = _scan(text, role, embeddings, default_adversarial_model())
        with _cache_lock:
            _cache[key] = result
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return result
    finally:
        with _cache_lock:
            del _in_flight[key]
        done.set()


def _scan(text: str, role: str, embeddings: bool, m: AdversarialModel) -> AdversarialScan:
    untrusted = role in UNTRUSTED_ROLES
    text_views = views(text)
    rules = compiled_rules()
    logits = np.full(len(CATEGORIES), -20.0)
    best_view = [text_views[0]] * len(CATEGORIES)
    hits: dict[str, list[tuple[RuleHit, View]]] = {c: [] for c in CATEGORIES}
    for view in text_views:
        view_logits = m.classify(view.text, role)
        for c in range(len(CATEGORIES)):
            if view_logits[c] > logits[c]:
                logits[c] = view_logits[c]
                best_view[c] = view
        for rule, regex in rules:
            if rule.untrusted and not untrusted:
                continue
            found = regex.search(view.text)
            if found is not None:
                hits[rule.category].append((RuleHit(rule, found.start(), found.end()), view))
    rule_scores = []
    fast = []
    for c, category in enumerate(CATEGORIES):
        seen = {hit.rule.id: hit.rule.weight for hit, _ in hits[category]}
        rule_scores.append(1.0 - math.prod(1.0 - w for w in seen.values()))
        a = m.fusion_fast[c]
        fast.append(a[0] * float(logits[c]) + a[1] * rule_scores[-1] + a[2])
    # The transformer costs tens of milliseconds a text, so it only looks at texts the fast
    # layers find at least slightly suspicious (the gate is calibrated so that nearly every
    # attack passes it); clearly benign text keeps its fast score, which lies below the gate.
    gate = float(m.meta.get("embedding_gate", 0.0))
    emb = None
    if embeddings and m.exemplars.size and max(_sigmoid(z) for z in fast) >= gate:
        emb = _embedding_features(m, text_views[0].text)
    scores: dict[str, CategoryScore] = {}
    for c, category in enumerate(CATEGORIES):
        rule_score = rule_scores[c]
        clf = float(logits[c])
        if emb is not None:
            a = m.fusion_full[c]
            z = a[0] * clf + a[1] * rule_score + a[2] * emb[c, 0] + a[3] * emb[c, 1] + a[4]
        else:
            z = fast[c]
        spans = tuple(sorted({view.span(h.start, h.end) for h, view in hits[category]}))
        scores[category] = CategoryScore(
            score=_sigmoid(z),
            classifier=_sigmoid(clf),
            rules=rule_score,
            embedding=None if emb is None else float(emb[c, 0]),
            hits=tuple(h for h, _ in hits[category]),
            spans=spans,
            view="+".join(best_view[c].transforms),
        )
    return AdversarialScan(role, embeddings, scores, None if emb is None else float(emb[0, 1]))


class AdversarialParams(GuardParams):
    preset: Preset = Field(
        "balanced",
        description="permissive | balanced | strict: thresholds for falling false-positive rates.",
        json_schema_extra=tighten("order:permissive,balanced,strict"),
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Overrides the preset's threshold.",
        json_schema_extra=tighten("lower"),
    )
    embeddings: bool = Field(
        True,
        description="Add embedding similarity to attack exemplars (slower, catches paraphrases).",
        json_schema_extra=tighten("higher"),
    )


class _AdversarialGuard:
    name: str
    category: AdversarialCategory

    def __init__(self, params: AdversarialParams) -> None:
        self.params = params

    def threshold(self, model: AdversarialModel) -> float:
        if self.params.threshold is not None:
            return self.params.threshold
        mode = "full" if self.params.embeddings else "fast"
        return model.thresholds[mode][self.params.preset][self.category]

    def _verdict(self, scan: AdversarialScan, where: str = "") -> Verdict:
        model = default_adversarial_model()
        found = scan.scores[self.category]
        limit = self.threshold(model)
        flagged = found.score >= limit
        rules = ", ".join(sorted({h.rule.id for h in found.hits}))
        evidence = f"classifier {found.classifier:.2f}, rules {found.rules:.2f}"
        if found.embedding is not None:
            evidence += f", similarity {found.embedding:.2f}"
        if rules:
            evidence += f" [{rules}]"
        if found.view != "normalize":
            evidence += f" (seen after {found.view})"
        verb = "looks like" if flagged else "below threshold for"
        what = self.category.replace("_", " ")
        return Verdict(
            flagged=flagged,
            score=round(found.score, 4),
            category=self.category,
            spans=tuple(Span(start=a, end=b, label=self.category.upper()) for a, b in found.spans)
            if not where
            else (),
            reason=f"{where}{verb} {what}: score {found.score:.2f} ≥ {limit:.2f}; {evidence}"
            if flagged
            else f"{where}{verb} {what}: score {found.score:.2f} < {limit:.2f}",
        )

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        import asyncio

        role = ctx.role
        scan = await asyncio.to_thread(
            scan_adversarial, text, role=role, embeddings=self.params.embeddings
        )
        return self._verdict(scan)


@register("guard", "jailbreak", params=AdversarialParams, stages=("input",), timeout_ms=5000)
class JailbreakGuard(_AdversarialGuard):
    """Attempts to override the model's rules: personas, developer mode, refusal suppression."""

    name = "jailbreak"
    category: AdversarialCategory = "jailbreak"


@register(
    "guard", "prompt_extraction", params=AdversarialParams, stages=("input",), timeout_ms=5000
)
class PromptExtractionGuard(_AdversarialGuard):
    """Attempts to obtain the system prompt or hidden instructions."""

    name = "prompt_extraction"
    category: AdversarialCategory = "prompt_extraction"


@register("guard", "injection", params=AdversarialParams, stages=("input",), timeout_ms=5000)
class InjectionGuard(_AdversarialGuard):
    """Instructions hidden in data (documents, tool outputs, e-mails) or injected by the user;
    tool and document content in the conversation is scanned as untrusted."""

    name = "injection"
    category: AdversarialCategory = "injection"

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        import asyncio

        own = await super().check(text, ctx)
        if own.flagged or ctx.stage != "input":
            return own
        # Untrusted content since the user's previous turn: tool results, retrieved documents.
        worst = own
        for i, message in enumerate(ctx.messages):
            if message.get("role") not in UNTRUSTED_ROLES:
                continue
            scan = await asyncio.to_thread(
                scan_adversarial, message["content"], role="tool", embeddings=self.params.embeddings
            )
            verdict = self._verdict(scan, where=f"messages[{i}] ({message['role']}): ")
            if verdict.score > worst.score or (verdict.flagged and not worst.flagged):
                worst = verdict
        return worst
