"""Topic scope: is a request on an allowed topic, a forbidden one, or neither?

The policy's topics drive a small classifier; nothing is trained. Each topic is represented
by the embeddings (all-MiniLM-L6-v2, :mod:`tether.embed`) of its description and its example
requests, plus keyword cues: the content words of its name and description, lightly
stemmed. A message's score for a topic is

    max(best cosine to one of the topic's texts, cosine to their centroid)
    + CUE_WEIGHT per distinct cue word the message contains (at most MAX_CUES of them)

and the decision, forbidden first because a miss there costs most:

1. ``forbidden:<topic>`` when the best forbidden topic scores at least the forbidden
   threshold and no less than the best allowed topic minus ``forbidden_margin``;
2. in scope when the best allowed topic scores at least the in-scope threshold, or nearly
   (within RELATIVE_BAND) while being RELATIVE_MARGIN closer to it than to any everyday
   request of the background bank below; also when the policy lists no allowed topics;
3. in scope when the message is small talk ("hi", "thanks", "ta") with no content words
   (function words alone, "so which one?", are a follow-up, not small talk);
4. a short message (``follow_up_words``) that fails alone is scored again together with the
   earlier user turns (``follow_up_turns``, the most recent first), so "and on Saturday?"
   after a booking question stays in scope. Context only rescues: where the joined text
   leans to a forbidden topic the message stays out of scope, and the forbidden check
   always reads the message alone;
5. otherwise ``out_of_scope``.

Thresholds are calibrated per policy from its own examples, by leave-one-out: each example
is scored against its own topic with itself removed (how a new request on that topic
scores), and a fixed bank of everyday requests to a general chatbot (``_BACKGROUND``) is
scored against the policy's topics (how an unrelated request scores). Background requests
that score like the policy's own examples are dropped first, so that a hobby-shop assistant
is not calibrated against its own subject. Each threshold is the midpoint between the lower
quartile of the positives and the 90th percentile of the negatives, clamped to
[THRESHOLD_FLOOR, THRESHOLD_CEILING]; the forbidden threshold's negatives also include the
allowed topics' examples. A kind of topic without examples gets DEFAULT_THRESHOLD.
Calibration and the topics' embeddings are computed once per scope and cached.

Long messages (``long_messages``). A message of at most ``max_embed_tokens`` tokens (32,
[CLS] and [SEP] included) is embedded whole. A longer one costs about 0.25 ms per token on
one core to embed whole, and its request, diluted by the rest, scores low; so by default
(``"select"``) only the clauses most likely to carry the request are embedded. The text is
cut into sentences (long sentences also at commas) and each is ranked by cheap signals:

- topic words: each content word of the topics' names, descriptions and examples weighs how
  close that word alone is to the nearest allowed or forbidden topic (embedded once per
  scope; minus RELEVANCE_FLOOR), the best MAX_CUES per clause, forbidden words
  FORBIDDEN_CUE_WEIGHT and allowed ones ALLOWED_CUE_WEIGHT: safety first;
- request markers: a question mark; an opening such as "can", "how", "please", "write";
  phrases such as "can you", "how do", "I need", "is it safe";
- position: the first and last sentence gain a little; small talk ("thanks so much") loses.

The best clause is embedded (its first ``max_embed_tokens`` tokens if it is longer), with
the next best ones that carry a forbidden topic's words (EXTRA_CLAUSE_TOPICAL) while the
batch, padded to its longest clause, stays within ``max_embed_tokens``: one forward pass.
Extra clauses are only for forbidden words because a clause embedded alone can score high
by chance, so embedding the chatter around a request adds false alarms. Cue words are still
counted over the whole message. The trade-off: a request with no topic word and no request
marker in a long message ("My baby is having a seizure right now." among a paragraph of
news) may be missed; ``"windows"`` embeds all of the text, window by window of up to the
model's 256 tokens, for full coverage at full cost. On the labelled requests wrapped in
1 KB of chatter (benchmarks/scope_long.py; benchmarks/scope.py compares), selection scored
0.80 on the half held out from its design against 0.54 for windows, and took a median 7-8 ms
against 58-80 ms on one core; messages that fit the budget get the same verdict either way.

Costs: one embedding of the message or of its chosen clauses (about 5-9 ms on one core),
a second one only for a short follow-up; building a scope's classifier embeds its topics,
their words (0.05-0.1 s of it) and the background bank once (about 0.3 s, plus loading the
model the first time).
"""

from __future__ import annotations

import asyncio
import bisect
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field

from tether.errors import ConfigError
from tether.messages import Message
from tether.policy import Policy, Scope, TopicAction
from tether.registry import register

from ._base import GuardContext, GuardParams, Verdict, tighten
from ._normalize import normalize

__all__ = [
    "OVERLAP_THRESHOLD",
    "ScopeDecision",
    "ScopeGuard",
    "ScopeParams",
    "TopicOverlap",
    "classify_scope",
    "prepare_scope",
    "previous_user_turn",
    "scope_action",
    "topic_overlaps",
]

CUE_WEIGHT = 0.06
MAX_CUES = 2
THRESHOLD_FLOOR = 0.20
THRESHOLD_CEILING = 0.45
DEFAULT_THRESHOLD = 0.30
RELATIVE_BAND = 0.10
RELATIVE_MARGIN = 0.10
OVERLAP_THRESHOLD = 0.60
"""Topics whose centroids are at least this similar are reported by :func:`topic_overlaps`.
Neighbouring topics stay well below it (the example policies' closest pairs: bank cards/app
0.33, clinic appointments/services 0.36); topics that paraphrase each other exceed it
("refunds" and "reimbursements" of a returned order: 0.74)."""

# Choosing what to embed of a long message (module docstring): clause ranking weights.
FORBIDDEN_CUE_WEIGHT = 8.0
ALLOWED_CUE_WEIGHT = 4.0
REQUEST_WEIGHT = 1.0
QUESTION_WEIGHT = 1.0
EDGE_WEIGHT = 0.5
SMALL_TALK_PENALTY = 2.0
MAX_CLAUSES = 4
EXTRA_CLAUSE_TOPICAL = 2.0
RELEVANCE_FLOOR = 0.15
CLAUSE_WORDS = 20
DEFAULT_MAX_EMBED_TOKENS = 32

_CACHE_SIZE = 16
_SENTENCE_END_RE = re.compile(r"(?<=[.!?;])\s+|\s*\n\s*")
_CLAUSE_END_RE = re.compile(r"(?<=[,:])\s+")
# How a sentence that asks for something starts, or what it contains (lower case, without
# apostrophes, as _words gives them).
_REQUEST_OPENERS = frozenset(
    """
    can could would will may might should shall do does did is are am was were has have
    how what whats which where when why who whom whose please help tell give show explain
    write recommend suggest plan translate find check book cancel move change let describe
    compose draft summarise summarize list send
    """.split()
)
_REQUEST_RE = re.compile(
    r"\b(?:(?:can|could|would|will|should|shall|may) (?:you|i|we|someone)"
    r"|how (?:do|can|should|much|many|long|often|soon)"
    r"|i (?:want|need|would like|wish|wonder)|id like|im looking for"
    r"|is it (?:ok|okay|possible|normal|safe|worth|true)|please)\b"
)
_WORD_RE = re.compile(r"[^\W\d_]+")

# Function words and words too general to say what a topic is about.
_STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any anything are as ask at be
    because been before being below between both but by can could did do does doing done
    down during each else etc even ever every few for from further get gets getting give go
    going got had has have having he her here hers him his how i if in into is it its itself
    just know let like make makes making many may me might mine more most much must my need
    needs new no nor not now of off often on once one only or other our ours out over own
    please put really same say saying see shall she should so some someone something still
    such take tell than that the their theirs them then there these they thing things this
    those through to too under until up upon us use used using very via want wants was way
    we well were what when where whether which while who whom whose why will with within
    without would yes yet you your yours yourself
    im ive id ill youre youve dont doesnt didnt cant couldnt wont wouldnt isnt arent wasnt
    whats thats theres hows wheres whos lets
    advice answer answers help question questions request requests information info issue
    issues problem problems kind sort type general other others related such various fit
    fits
    """.split()
)
# Words that carry no topic on their own: a message made only of these and stop words is
# small talk, not an out-of-scope request.
_SMALL_TALK = frozenset(
    """
    hi hello hey hiya morning afternoon evening good great thanks thank cheers ok okay
    alright sure cool perfect lovely nice brilliant bye goodbye see later appreciate
    appreciated helpful much lot yeah yep nope sorry oh ah right fine awesome
    ta thx ty thanx lol haha sorted worked fair makes sense gotcha noted understood
    excellent done super amazing fab
    """.split()
)

# Everyday requests to a general chatbot, none about banking, health or any one business:
# how a request that belongs to no policy scores against a policy's topics. (Written apart
# from tests/guards/data/scope_eval.jsonl, which has no paraphrase of any of them.)
_BACKGROUND = (
    "Explain quantum computing in simple terms.",
    "Write a limerick about a grumpy cat.",
    "How do I centre a div in CSS?",
    "What year did the Second World War end?",
    "Give me a 20-minute yoga routine for beginners.",
    "How do I descale a kettle?",
    "Suggest some names for a bakery.",
    "What's the difference between a crocodile and an alligator?",
    "Which board games are good for four players?",
    "How do I make a sourdough starter?",
    "What's the tallest mountain in Africa?",
    "Teach me some basic Italian phrases.",
    "How do I fold a paper crane?",
    "Why is the sky blue?",
    "Write a bedtime story about a dragon.",
    "Recommend a podcast about ancient history.",
    "How can I improve my chess openings?",
    "Give me a packing list for a beach holiday.",
    "What's the best way to clean suede shoes?",
    "How do I install Linux on an old computer?",
    "Compose a tweet announcing our band's new album.",
    "Draft an email to my landlord about the broken heater.",
    "What are the best hiking trails in Scotland?",
    "How do volcanoes erupt?",
    "Convert 5 miles to kilometres.",
    "What rhymes with orange?",
    "Who wrote Pride and Prejudice?",
    "How do I knit a scarf?",
    "What's the plot of the film Inception?",
    "Give me tips for a job interview.",
    "How do I get my toddler to sleep through the night?",
    "Which houseplants are safe for cats?",
    "Write a regular expression that matches email addresses.",
    "What's the best strategy for Monopoly?",
    "How do solar panels work?",
    "Summarise the French Revolution in three sentences.",
    "What should I name my goldfish?",
    "Help me plan a surprise anniversary dinner.",
    "How do I fix a squeaky door hinge?",
    "What are the planets in the solar system?",
)

# (suffix, replacement, letters that must remain); "ss" guards "class" and "address".
_SUFFIXES = (("ies", "y", 3), ("ss", "ss", 0), ("ing", "", 4), ("ed", "", 4), ("s", "", 3))

Label = Literal["in_scope", "forbidden", "out_of_scope"]
Matrix = npt.NDArray[np.float32]


def _stem(word: str) -> str:
    """A light English stemmer: enough to make 'bookings', 'booked' and 'book' one cue."""
    for suffix, repl, keep in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            word = word[: -len(suffix)] + repl
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(normalize(text).text.replace("'", "").replace("\u2019", ""))


def _clean(text: str) -> str:
    """The text the embedding model reads: normalized as the topic words are, case kept."""
    return normalize(text, casefold=False).text


def _content_stems(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if w not in _STOP_WORDS and len(w) >= 3}


def _is_small_talk(words: Sequence[str]) -> bool:
    """Greetings and thanks, and messages without a word ("👍", "?"): nothing to place. A
    message of function words only ("so which one?", "why not") is not: it asks about what
    came before, and is judged as a follow-up."""
    if not all(w in _STOP_WORDS or w in _SMALL_TALK for w in words):
        return False
    return not words or any(w in _SMALL_TALK for w in words)


@dataclass(frozen=True, slots=True)
class _Clause:
    """A sentence (or part of a long one) of a long message, with its cheap signals."""

    text: str
    index: int
    stems: frozenset[str]
    request: bool
    question: bool
    small_talk: bool


def _clause(text: str, index: int, words: Sequence[str]) -> _Clause:
    return _Clause(
        text,
        index,
        frozenset(_stem(w) for w in words if w not in _STOP_WORDS and len(w) >= 3),
        bool(words and words[0] in _REQUEST_OPENERS) or bool(_REQUEST_RE.search(" ".join(words))),
        text.rstrip().endswith("?"),
        _is_small_talk(words),
    )


def _pieces(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """The spans of ``text[start:end]`` between matches of ``separator``."""
    spans: list[tuple[int, int]] = []
    for match in separator.finditer(text, start, end):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, end))
    return spans


def _clauses(text: str) -> list[_Clause]:
    """``text`` cut into sentences, and sentences of over CLAUSE_WORDS words at commas."""
    spans: list[tuple[int, int]] = []
    for a, b in _pieces(text, 0, len(text), _SENTENCE_END_RE):
        long = len(text[a:b].split()) > CLAUSE_WORDS
        spans.extend(_pieces(text, a, b, _CLAUSE_END_RE) if long else [(a, b)])
    # Words from one normalization of the whole text (classify has just made it: memoized).
    norm = normalize(text)
    clauses: list[_Clause] = []
    for a, b in spans:
        if text[a:b].strip():
            i, j = bisect.bisect_left(norm.offsets, a), bisect.bisect_left(norm.offsets, b)
            words = _WORD_RE.findall(norm.text[i:j].replace("'", "").replace("\u2019", ""))
            clauses.append(_clause(text[a:b], len(clauses), words))
    return clauses


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    forbidden: bool
    texts: tuple[str, ...]  # the description, then the examples
    cues: frozenset[str]


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    """What the classifier decided about one message, and why.

    ``scores`` maps each topic to its score; ``topic`` is the forbidden topic that matched
    (``label == "forbidden"``), the best allowed topic (``in_scope``) or None.
    """

    label: Label
    topic: str | None
    scores: dict[str, float]
    threshold: float
    forbidden_threshold: float
    note: str = ""

    @property
    def category(self) -> str | None:
        """The verdict category: ``forbidden:<topic>``, ``out_of_scope`` or None."""
        if self.label == "forbidden":
            return f"forbidden:{self.topic}"
        return "out_of_scope" if self.label == "out_of_scope" else None


class TopicOverlap(NamedTuple):
    """Two topics whose descriptions and examples say nearly the same thing."""

    topic_a: str
    topic_b: str
    similarity: float


class _Classifier:
    """One scope's topic embeddings, cues and calibrated thresholds."""

    def __init__(self, scope: Scope) -> None:
        from tether.embed import default_embedder

        self.embedder = default_embedder()
        self.topics = [
            _Topic(
                t.name,
                forbidden,
                (t.description, *t.examples),
                frozenset(_content_stems(f"{t.name.replace('_', ' ')} {t.description}")),
            )
            for forbidden, group in ((False, scope.allowed_topics), (True, scope.forbidden_topics))
            for t in group
        ]
        texts = [text for t in self.topics for text in t.texts]
        vectors = self.embedder.embed(texts)  # (0, dim) without topics: nothing to calibrate
        self.vectors: list[Matrix] = []
        row = 0
        for t in self.topics:
            self.vectors.append(vectors[row : row + len(t.texts)])
            row += len(t.texts)
        self.centroids = [_unit(v.mean(axis=0)) for v in self.vectors]
        self.allowed = [i for i, t in enumerate(self.topics) if not t.forbidden]
        self.forbidden = [i for i, t in enumerate(self.topics) if t.forbidden]
        self.vocabulary = self._vocabulary() if texts else {}
        self.background = self.embedder.embed(list(_BACKGROUND)) if texts else vectors
        self.threshold, self.forbidden_threshold = (
            self._calibrate() if texts else (DEFAULT_THRESHOLD, DEFAULT_THRESHOLD)
        )

    def _vocabulary(self) -> dict[str, tuple[float, float]]:
        """What marks a clause of a long message as about the topics: each content word of
        the topics' names, descriptions and examples, by stem, with how close the word alone
        is to the nearest allowed and the nearest forbidden topic (cosine to the centroid,
        less RELEVANCE_FLOOR, at least 0). Embedding the words once makes "life" (0.18 from
        an emergency topic) weigh far less than "bleeding" (0.47)."""
        words: dict[str, set[bool]] = {}
        for t in self.topics:
            for text in (t.name.replace("_", " "), *t.texts):
                for word in _words(text):
                    if word not in _STOP_WORDS and len(word) >= 3:
                        words.setdefault(word, set()).add(t.forbidden)
        if not words:
            return {}
        listed = sorted(words)
        sims = self.embedder.embed(listed) @ np.stack(self.centroids).T
        groups = [np.array(self.allowed, dtype=np.intp), np.array(self.forbidden, dtype=np.intp)]
        out: dict[str, tuple[float, float]] = {}
        for word, row in zip(listed, sims, strict=True):
            allowed, forbidden = (
                max(float(row[g].max()) - RELEVANCE_FLOOR, 0.0)
                if g.size and is_forbidden in words[word]
                else 0.0
                for g, is_forbidden in zip(groups, (False, True), strict=True)
            )
            old = out.get(_stem(word), (0.0, 0.0))
            out[_stem(word)] = (max(old[0], allowed), max(old[1], forbidden))
        return out

    def scores(self, vectors: Matrix, stems: set[str]) -> list[float]:
        """Each topic's score: the best over ``vectors`` (one per window of the message)."""
        out = []
        for topic, protos, centroid in zip(self.topics, self.vectors, self.centroids, strict=True):
            sim = max(float((protos @ vectors.T).max()), float((vectors @ centroid).max()))
            out.append(sim + CUE_WEIGHT * min(len(topic.cues & stems), MAX_CUES))
        return out

    def _calibrate(self) -> tuple[float, float]:
        """Leave-one-out positives against background negatives; see the module docstring."""
        positives: dict[bool, list[float]] = {False: [], True: []}
        allowed_examples: list[list[float]] = []
        for i, topic in enumerate(self.topics):
            protos = self.vectors[i]
            for j in range(1, len(topic.texts)):
                rest = np.delete(protos, j, axis=0)
                vec = protos[j]
                sim = max(float((rest @ vec).max()), float(_unit(rest.mean(axis=0)) @ vec))
                cues = len(topic.cues & _content_stems(topic.texts[j]))
                positives[topic.forbidden].append(sim + CUE_WEIGHT * min(cues, MAX_CUES))
                if not topic.forbidden:
                    allowed_examples.append(
                        self.scores(vec[None, :], _content_stems(topic.texts[j]))
                    )
        background = self.background
        bg_scores = [
            self.scores(background[k : k + 1], _content_stems(text))
            for k, text in enumerate(_BACKGROUND)
        ]
        threshold = _midpoint(
            positives[False], [max((s[i] for i in self.allowed), default=0.0) for s in bg_scores]
        )
        forbidden_negatives = [
            max((s[i] for i in self.forbidden), default=0.0)
            for s in (*bg_scores, *allowed_examples)
        ]
        forbidden_threshold = _midpoint(positives[True], forbidden_negatives)
        return threshold, forbidden_threshold

    def classify(
        self,
        text: str,
        params: ScopeParams,
        previous: str | None = None,
    ) -> ScopeDecision:
        threshold = params.threshold if params.threshold is not None else self.threshold
        f_threshold = (
            params.forbidden_threshold
            if params.forbidden_threshold is not None
            else self.forbidden_threshold
        )
        words = _words(text)
        if not self.topics:
            return ScopeDecision("in_scope", None, {}, threshold, f_threshold, "no topics")
        stems = {_stem(w) for w in words if w not in _STOP_WORDS and len(w) >= 3}
        vectors = self._read(text, params)
        scores = self.scores(vectors, stems)
        by_name = {t.name: round(s, 4) for t, s in zip(self.topics, scores, strict=True)}

        def decision(label: Label, topic: int | None, note: str = "") -> ScopeDecision:
            name = None if topic is None else self.topics[topic].name
            return ScopeDecision(label, name, by_name, threshold, f_threshold, note)

        best_allowed = max(self.allowed, key=lambda i: scores[i], default=None)
        allowed_score = scores[best_allowed] if best_allowed is not None else 0.0
        top = max(self.forbidden, key=lambda i: scores[i], default=None)
        if (
            top is not None
            and scores[top] >= f_threshold
            and scores[top] >= allowed_score - params.forbidden_margin
        ):
            return decision("forbidden", top)
        if best_allowed is None:
            return decision("in_scope", None, "no allowed topics")
        if not params.out_of_scope or allowed_score >= threshold:
            return decision("in_scope", best_allowed)
        if allowed_score >= threshold - RELATIVE_BAND and allowed_score >= (
            float((self.background @ vectors.T).max()) + RELATIVE_MARGIN
        ):
            return decision("in_scope", best_allowed, "closer to its topics than to everyday chat")
        if _is_small_talk(words):
            return decision("in_scope", None, "small talk")
        if previous and len(words) <= params.follow_up_words:
            # The message first: truncation to the model's length cuts the earlier turns.
            joined = self.scores(
                self.embedder.embed([f"{_clean(text)}\n{_clean(previous)}"]), stems
            )
            best = max(self.allowed, key=lambda i: joined[i])
            worst = max(self.forbidden, key=lambda i: joined[i], default=None)
            leans_forbidden = (
                worst is not None
                and joined[worst] >= f_threshold
                and joined[worst] >= joined[best] - params.forbidden_margin
            )
            # Context only ever rescues a message: where it leans to a forbidden topic ("so
            # do you think I'll win?" after a dispute) the message stays out of scope, as it
            # is alone; it is never made forbidden by what came before it.
            if joined[best] >= threshold and not leans_forbidden:
                note = f"follow-up: with the earlier user turns, {self.topics[best].name} "
                return decision("in_scope", best, f"{note}{joined[best]:.2f} ≥ {threshold:.2f}")
        return decision("out_of_scope", best_allowed)

    def _read(self, text: str, params: ScopeParams) -> Matrix:
        """The message's vectors: of its windows, of itself, or of its chosen clauses."""
        return self.embedder.embed(self._reading(text, params))

    def _reading(self, text: str, params: ScopeParams) -> list[str]:
        """What of the message is embedded: its windows, itself, or its chosen clauses, after
        normalization (NFKC, invisible characters dropped, look-alike letters folded), as the
        topic words are read: zero-width spaces inside words must not hide the topic."""
        text = _clean(text)
        if params.long_messages == "windows":
            windows = self.embedder.windows(text)
            return [text[a:b] for a, b in windows] or [text]
        budget = params.max_embed_tokens
        # Every word is at least one token, so most long texts need no tokenizing here.
        if len(text.split()) + 2 <= budget and self.embedder.token_count(text) <= budget:
            return [text]
        return [c.text for c in self._select(text, budget)]

    def warm(self, texts: Sequence[str], params: ScopeParams) -> int:
        """Embed what :meth:`classify` reads of each of ``texts``, batched, so that classifying
        them one by one afterwards finds the vectors cached; returns the texts embedded. The
        follow-up pass (a short off-scope message with the previous turn) is not warmed."""
        if not self.topics:
            return 0
        wanted = list(dict.fromkeys(t for text in texts for t in self._reading(text, params)))
        # More than the cache holds would push out the first ones before they are read.
        wanted = wanted[: self.embedder.cache_info().maxsize // 2]
        self.embedder.embed(wanted)
        return len(wanted)

    def _select(self, text: str, budget: int) -> list[_Clause]:
        """The clauses of a long message most likely to carry its request, as many as fit
        ``budget`` padded tokens in one batch (module docstring)."""
        clauses = _clauses(text)
        last = len(clauses) - 1

        def topical(c: _Clause, forbidden: bool) -> float:
            found = sorted(self.vocabulary[s][forbidden] for s in c.stems if s in self.vocabulary)
            weight = FORBIDDEN_CUE_WEIGHT if forbidden else ALLOWED_CUE_WEIGHT
            return weight * sum(found[-MAX_CUES:])

        def rank(c: _Clause) -> float:
            return (
                topical(c, forbidden=True)
                + topical(c, forbidden=False)
                + REQUEST_WEIGHT * c.request
                + QUESTION_WEIGHT * c.question
                + EDGE_WEIGHT * (c.index in (0, last))
                - SMALL_TALK_PENALTY * c.small_talk
            )

        chosen: list[_Clause] = []
        longest = 0
        for clause in sorted(clauses, key=rank, reverse=True)[:MAX_CLAUSES]:
            # Another clause only for a forbidden topic's words: any clause embedded alone can
            # score high by chance, so chatter beside the request would add false alarms.
            if chosen and topical(clause, forbidden=True) < EXTRA_CLAUSE_TOPICAL:
                continue
            tokens = self.embedder.token_count(clause.text)
            if tokens > budget and not chosen:
                clause, tokens = self._shorten(clause, budget)
            if (len(chosen) + 1) * max(longest, tokens) > budget:
                continue
            chosen.append(clause)
            longest = max(longest, tokens)
        return sorted(chosen, key=lambda c: c.index)

    def _shorten(self, clause: _Clause, budget: int) -> tuple[_Clause, int]:
        """The start of a clause too long for ``budget``: its first window of that size."""
        start, end = self.embedder.windows(clause.text, max_tokens=budget)[0]
        short = clause.text[start:end]
        return _clause(short, clause.index, _words(short)), self.embedder.token_count(short)


def _unit(v: npt.NDArray[np.floating]) -> Matrix:
    norm = float(np.linalg.norm(v))
    return (v / norm if norm else v).astype(np.float32)


def _midpoint(positives: Sequence[float], negatives: Sequence[float]) -> float:
    if not positives:
        return DEFAULT_THRESHOLD
    median = float(np.median(positives))
    # A negative that scores like the policy's own examples is probably on topic for it.
    kept = [n for n in negatives if n < median]
    high = float(np.quantile(kept, 0.9)) if kept else 0.0
    low = float(np.quantile(positives, 0.25))
    return min(max((low + high) / 2, THRESHOLD_FLOOR), THRESHOLD_CEILING)


_classifiers: OrderedDict[Scope, _Classifier] = OrderedDict()
_classifiers_lock = threading.Lock()


def _classifier(scope: Scope) -> _Classifier:
    """The classifier for ``scope``, built once (topic embeddings, calibration) and cached."""
    with _classifiers_lock:
        found = _classifiers.get(scope)
        if found is not None:
            _classifiers.move_to_end(scope)
            return found
        found = _Classifier(scope)
        _classifiers[scope] = found
        if len(_classifiers) > _CACHE_SIZE:
            _classifiers.popitem(last=False)
        return found


class ScopeParams(GuardParams):
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Score an allowed topic needs; default: calibrated from the policy's examples.",
        json_schema_extra=tighten("higher"),
    )
    forbidden_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Score that flags a forbidden topic; default: calibrated.",
        json_schema_extra=tighten("lower"),
    )
    forbidden_margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="A forbidden topic wins when it scores within this of the best allowed one.",
        json_schema_extra=tighten("higher"),
    )
    out_of_scope: bool = Field(
        True,
        description="Flag requests on no allowed topic; false: flag forbidden topics only.",
        json_schema_extra=tighten("higher"),
    )
    follow_up_words: int = Field(
        8,
        ge=0,
        le=50,
        description="A message of at most this many words that is off scope alone is judged "
        "with the earlier user turns (0: never).",
        json_schema_extra=tighten("lower"),
    )
    follow_up_turns: int = Field(
        3,
        ge=1,
        le=10,
        description="How many earlier user turns a short follow-up is judged with (the most "
        'recent first): the one before it may be a follow-up too ("what ID counts" → '
        '"ok passport it is").',
        json_schema_extra=tighten("lower"),
    )
    long_messages: Literal["select", "windows"] = Field(
        "select",
        description="How a message longer than max_embed_tokens is read: 'select' embeds only "
        "the few clauses most likely to carry its request (cost bounded by max_embed_tokens; "
        "a request without topic words or request markers in a long text may be missed); "
        "'windows' embeds all of it, window by window (about 0.25 ms per token on one core).",
        json_schema_extra=tighten("order:select,windows"),
    )
    max_embed_tokens: int = Field(
        DEFAULT_MAX_EMBED_TOKENS,
        ge=8,
        le=256,  # the model's own limit
        description="With long_messages 'select': a message of at most this many tokens is "
        "embedded whole; of a longer one, clauses filling at most this many padded tokens.",
        json_schema_extra=tighten("higher"),
    )


def classify_scope(
    policy: Policy, text: str, *, previous: str | None = None, params: ScopeParams | None = None
) -> ScopeDecision:
    """Classify one user message against ``policy``'s topics (blocking; the first call for a
    policy embeds its topics and calibrates)."""
    return _classifier(policy.scope).classify(text, params or ScopeParams(), previous)


def prepare_scope(policy: Policy) -> None:
    """Embed ``policy``'s topics and calibrate now (loading the model if need be), so that the
    first request does not pay for it: about a second the first time in a process, which
    would overrun the scope guard's default time budget."""
    _classifier(policy.scope)


def scope_action(policy: Policy, category: str | None) -> tuple[TopicAction, str] | None:
    """How the policy answers a scope verdict's category: the forbidden topic's ``action`` and
    name, or ``scope.out_of_scope`` and ``""``; None for any other category."""
    if category == "out_of_scope":
        return policy.scope.out_of_scope, ""
    if category and category.startswith("forbidden:"):
        name = category.removeprefix("forbidden:")
        for topic in policy.scope.forbidden_topics:
            if topic.name == name:
                return topic.action, name
    return None


def topic_overlaps(policy: Policy, *, threshold: float = OVERLAP_THRESHOLD) -> list[TopicOverlap]:
    """Pairs of topics whose centroids (description and examples) have cosine similarity of at
    least ``threshold``, most similar first. An allowed topic that overlaps a forbidden one
    makes the classifier's choice between them unreliable; two allowed ones merely blur which
    is reported."""
    classifier = _classifier(policy.scope)
    found: list[TopicOverlap] = []
    topics = classifier.topics
    for i in range(len(topics)):
        for j in range(i + 1, len(topics)):
            sim = float(classifier.centroids[i] @ classifier.centroids[j])
            if sim >= threshold:
                found.append(TopicOverlap(topics[i].name, topics[j].name, round(sim, 4)))
    return sorted(found, key=lambda o: -o.similarity)


def previous_user_turn(text: str, messages: Sequence[Message], turns: int = 1) -> str | None:
    """The user turns before ``text`` in ``messages`` (which may or may not end with it),
    at most ``turns`` of them, the most recent first, one per line: what a short follow-up
    is judged together with."""
    users = [m["content"] for m in messages if m.get("role") == "user"]
    if users and users[-1] == text:
        users.pop()
    chosen = users[-turns:] if turns > 0 else []
    return "\n".join(reversed(chosen)) if chosen else None


@register("guard", "scope", params=ScopeParams, stages=("input",), timeout_ms=5000)
class ScopeGuard:
    """Flags requests on a forbidden topic or outside the policy's allowed topics, using
    embeddings of the topics' descriptions and examples plus keyword cues."""

    name = "scope"

    def __init__(self, params: ScopeParams) -> None:
        self.params = params

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        policy = ctx.metadata.get("policy")
        if not isinstance(policy, Policy):
            raise ConfigError(
                "the scope guard needs the resolved policy in GuardContext.metadata['policy']; "
                "run it through tether.Guardrails, or pass metadata={'policy': policy}"
            )
        previous = previous_user_turn(text, ctx.messages, self.params.follow_up_turns)
        found = await asyncio.to_thread(
            classify_scope, policy, text, previous=previous, params=self.params
        )
        return _verdict(found, policy)

    async def warm(self, texts: Sequence[str], ctx: GuardContext) -> None:
        """Embed, in batches, what :meth:`check` will embed of each of ``texts`` (user
        messages still to come, as in an evaluation run): a batch of short messages costs
        far less per message than one forward pass each. Verdicts are unchanged."""
        policy = ctx.metadata.get("policy")
        if isinstance(policy, Policy) and texts:
            await asyncio.to_thread(_classifier(policy.scope).warm, texts, self.params)


def _verdict(found: ScopeDecision, policy: Policy) -> Verdict:
    allowed = {t.name for t in policy.scope.allowed_topics}
    ranked = sorted(found.scores.items(), key=lambda kv: -kv[1])
    nearest_allowed = [f"{n} {s:.2f}" for n, s in ranked if n in allowed][:2]
    nearest_forbidden = [f"{n} {s:.2f}" for n, s in ranked if n not in allowed][:1]
    if found.label == "forbidden":
        score = found.scores[found.topic or ""]
        near = f"; nearest allowed: {', '.join(nearest_allowed)}" if nearest_allowed else ""
        return Verdict(
            flagged=True,
            score=_unit_interval(score),
            category=found.category,
            reason=f"forbidden topic {found.topic}: {score:.2f} ≥ "
            f"{found.forbidden_threshold:.2f}{near}",
        )
    if found.label == "out_of_scope":
        best = max((s for n, s in found.scores.items() if n in allowed), default=0.0)
        near = f"; nearest forbidden: {nearest_forbidden[0]}" if nearest_forbidden else ""
        return Verdict(
            flagged=True,
            score=_unit_interval(1 - best),
            category=found.category,
            reason=f"out of scope: nearest allowed {', '.join(nearest_allowed)} < "
            f"{found.threshold:.2f}{near}",
        )
    worst = max((s for n, s in found.scores.items() if n not in allowed), default=0.0)
    if found.note:
        why = found.note
    elif found.topic is not None:
        why = f"{found.topic} {found.scores[found.topic]:.2f} ≥ {found.threshold:.2f}"
    else:
        why = "no allowed topics to check against" if not allowed else "out-of-scope check off"
    return Verdict(flagged=False, score=_unit_interval(worst), reason=f"in scope: {why}")


def _unit_interval(x: float) -> float:
    return round(min(max(x, 0.0), 1.0), 4)
