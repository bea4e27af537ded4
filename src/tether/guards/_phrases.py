"""Banned phrases, competitor mentions and the mechanically checkable part of a brand voice.

``banned_phrases`` matches listed phrases and competitor names on normalized text (NFKC,
casefolded, invisible characters dropped, look-alike letters folded), as whole words, with
the common English inflections of the last word: plural (``-s``, ``-es``, ``-y`` → ``-ies``)
and possessive (``'s``, ``s'``, with a straight or curly apostrophe). Words may be separated
by any run of spaces or a hyphen: "stock tips", "stock-tips" and "stock\\ntips" all match.

``brand_voice`` checks only what a program can decide: how many sentences, words and
exclamation marks an answer has, whether it uses emoji, listed words, whether it asks
the reader for something the policy says never to ask for, and whether it promises an
outcome it must never promise (``_promises``). Tone, warmth or "plain
language" cannot be checked this way and are not attempted. With ``from_tone`` on, rules in
the policy's ``tone.rules`` that say one of these things in a recognised form ("at most four
sentences", "no more than 80 words", "never use emoji", "never ask for a PIN, password or
one-time code") are checked too, the stricter of rule and parameter winning.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import re2
from pydantic import Field, field_validator

from tether.policy import Policy, Tone
from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._denylist import compile_safe
from ._normalize import Normalized, normalize
from ._promises import promised

__all__ = [
    "BannedPhrasesGuard",
    "BannedPhrasesParams",
    "BrandVoiceGuard",
    "BrandVoiceParams",
    "VoiceRules",
    "voice_rules_from_tone",
]

_THREAD_THRESHOLD = 20_000
_EDGE = r"[^\pL\pN_]"
_SUFFIXES = r"(?:['\x{2019}]s|s['\x{2019}]?|es)?"


def _phrase_pattern(phrase: str) -> str:
    """RE2 pattern for one normalized phrase: flexible separators, inflected last word."""
    words = re.split(r"[\s\-]+", phrase.strip())
    parts = [re2.escape(w) for w in words if w]
    last = words[-1]
    if last and last[-1].isalpha():
        if len(last) > 2 and last[-1] == "y" and last[-2] not in "aeiou":
            parts[-1] = f"(?:{parts[-1]}|{re2.escape(last[:-1])}ies)"
        parts[-1] += _SUFFIXES
    return r"[\s\-]+".join(parts)


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int  # in the original text
    end: int
    matched: str
    label: str


class _PhraseMatcher:
    """One RE2 alternation over every phrase, whole words, each phrase tagged with a label."""

    def __init__(self, groups: Iterable[tuple[str, Sequence[str]]]) -> None:
        self.labels: dict[str, str] = {}
        for label, phrases in groups:
            for phrase in phrases:
                self.labels.setdefault(normalize(phrase.strip()).text, label)
        # Longest first, so "acme bank" wins over "acme" where both match.
        ordered = sorted(self.labels, key=len, reverse=True)
        body = "|".join(f"({_phrase_pattern(p)})" for p in ordered)
        self.order = ordered
        self.regex: Any = (
            compile_safe(f"(?:^|{_EDGE})(?:{body})(?:{_EDGE}|$)", case_sensitive=True)
            if ordered
            else None
        )

    def find(self, text: str, norm: Normalized | None = None) -> list[_Hit]:
        if self.regex is None:
            return []
        norm = norm or normalize(text)
        hits: list[_Hit] = []
        pos = 0
        while (m := self.regex.search(norm.text, pos)) is not None:
            index = next(i for i in range(1, len(self.order) + 1) if m.group(i) is not None)
            start, end = m.span(index)
            a, b = norm.span(start, end)
            hits.append(_Hit(a, b, text[a:b], self.labels[self.order[index - 1]]))
            pos = max(end, pos + 1)
        return hits


def _phrases_valid(value: tuple[str, ...]) -> tuple[str, ...]:
    if any(not normalize(v).text.strip(" -") for v in value):
        raise ValueError("phrases must not be empty")
    return value


class BannedPhrasesParams(GuardParams):
    phrases: tuple[str, ...] = Field(
        (),
        description="Phrases never to use; whole words, plurals and possessives match too.",
        json_schema_extra=tighten("superset"),
    )
    competitors: tuple[str, ...] = Field(
        (),
        description="Competitor names never to mention.",
        json_schema_extra=tighten("superset"),
    )

    @field_validator("phrases", "competitors")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _phrases_valid(value)


@register(
    "guard", "banned_phrases", params=BannedPhrasesParams, stages=("input", "output"), redacts=True
)
class BannedPhrasesGuard:
    """Flags banned phrases and competitor names, as whole words with plural and possessive
    forms, on normalized text so look-alike spellings do not slip through."""

    name = "banned_phrases"

    def __init__(self, params: BannedPhrasesParams) -> None:
        self.params = params

    @cached_property
    def _matcher(self) -> _PhraseMatcher:
        return _PhraseMatcher(
            [("COMPETITOR", self.params.competitors), ("BANNED_PHRASE", self.params.phrases)]
        )

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        if len(text) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(self._scan, text)
        return self._scan(text)

    def _scan(self, text: str) -> Verdict:
        hits = self._matcher.find(text)
        if not hits:
            return Verdict(flagged=False, category="banned_phrase")
        competitors = _listed(h.matched for h in hits if h.label == "COMPETITOR")
        phrases = _listed(h.matched for h in hits if h.label == "BANNED_PHRASE")
        reasons = []
        if competitors:
            reasons.append(f"mentions competitor {competitors}")
        if phrases:
            reasons.append(f"uses banned phrase {phrases}")
        return Verdict(
            flagged=True,
            score=1.0,
            category="competitor" if competitors and not phrases else "banned_phrase",
            spans=tuple(Span(start=h.start, end=h.end, label=h.label) for h in hits),
            reason="; ".join(reasons),
        )


def _listed(items: Iterable[str], limit: int = 5) -> str:
    unique = list(dict.fromkeys(repr(i) for i in items))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


# --- brand_voice ----------------------------------------------------------------------------

# Sentence ends: . ! ? … (runs of them), then space or the end, except after abbreviations
# and initials. Each non-empty line of a list counts as one sentence (a step).
_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr prof vs eg ie approx nr tel ext dept".split())
_INITIALS_RE = re.compile(r"[^\W\d_](?:\.[^\W\d_])*")  # "J", "a.m", "U.S"
_SENTENCE_END_RE = re.compile(r"[.!?\u2026\uff01\uff1f\u3002]+[\"'\u201d\u2019)\]]*(?=\s|$)")
_LIST_ITEM_RE = re.compile(r"(?m)^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)])[ \t]+")
_WORD_RE = re.compile(r"[^\W_](?:[\w'\u2019.-]*[^\W_])?")
_CODE_FENCE_RE = re.compile(r"(?s)```.*?(?:```|\Z)")
_EXCLAMATION_RE = re.compile(r"[!\uff01\u203c\u2049\u2757\u2755]")
# Emoji: pictographic blocks, regional-indicator flags, keycaps, and any character shown as
# emoji by the variation selector U+FE0F.
_EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\U0001fc00-\U0001fffd\u2600-\u27bf\u2b00-\u2bff\u231a\u231b"
    "\u23e9-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2934\u2935\u3030\u303d"
    "\u3297\u3299][\ufe0f\U0001f3fb-\U0001f3ff\u200d]*|.\ufe0f|[0-9#*]\ufe0f?\u20e3"
)
# What marks a sentence as asking the reader for something: a verb that hands something over
# to the writer, followed closely by the thing ("send me your PIN", "confirm your password",
# "I'm ready to receive your passcode", "what's the code?"). "Enter your PIN at the ATM" or
# "have you forgotten your PIN?" ask for nothing; "type"/"enter" ask only with a destination
# in the chat ("type the card number here", "pop it in the box below").
_ASK = (
    r"(?:send|share|giv|provid|tell|submit|repeat|confirm|text|e-?mail|whatsapp|messag|dm)"
    r"(?:e|es|s|ing)?(?: over| across| out| back)?|read(?:s|ing)? (?:out|back|me|it|them)"
    r"|hand(?:s|ing)? over|pass(?:es|ing)? on|spell(?:s|ing)? out"
    r"|repl(?:y|ies|ying)(?: to (?:this|the|my|our) (?:message|text|sms|e-?mail|letter|chat))? with"
    r"|respond(?:s|ing)? with|let (?:me|us) (?:know|have|see)|write down here"
    r"|what(?:'s|\u2019s|s| is| are| was| were) (?:your|the)"
    r"|ready (?:to|for) (?:receive|take|accept|check|verify|have)"
    r"|(?:i|we)(?:'ll|\u2019ll| will| would| do| must| also| just| now| first)*"
    r" (?:need|require|must have)(?: to (?:see|have|check|confirm|verify))? (?:your|the)"
    r"|(?:i|we)(?:'ll|\u2019ll| will| must| have to| need to| just| also)* ask (?:you )?for"
    r"|requires? you to (?:send|share|give|provide|tell|confirm|enter|type|read out)"
)
# "You'll need to provide your card number" or "it requires you to provide ..." describes a
# step (at the ATM, on the site) unless the writer is who receives it: "requires you to
# provide your PIN before I can help", "you need to send it to me".
_DESCRIBED_RE = re.compile(
    r"(?i)(?:\byou(?:'ll|\u2019ll| will)? (?:need|have|must|be required) to|\byou must"
    r"|\brequires? you to)\s*$"
)
_TO_WRITER_RE = re.compile(
    r"(?i)\b(?:to me|to us|with me|with us|me with|us with|here|below|in (?:this|the) chat"
    r"|(?:so|before|then|and)(?: that)? (?:i|we)(?: can| could| will|'ll|\u2019ll)?)\b"
)
_ASK_RE = re.compile(rf"(?i)\b(?:{_ASK})\b")
# The writer offering, not asking: "we also send a one-time code to your phone".
_WRITER_SUBJECT_RE = re.compile(
    r"(?i)\b(?:i|we)(?:'ll|\u2019ll| will| also| can| could| would| then| just| may)*\s*$"
)
# "type it here", "enter your PIN below", "pop the code in this chat", "go ahead and type it
# now": a destination in the conversation, or a pronoun and "now".
_TYPE_HERE_RE = re.compile(
    r"(?i)\b(?:go ahead and |just |please )?(?:type|enter|paste|input|write|put|pop|stick|drop"
    r"|key in)\b(?P<object>[^.!?\n]{0,60}?)\b(?:here|below|in(?:to)? (?:the|this|your|our|my)"
    r" (?:chat|conversation|reply|message|next message|box|message box|field|window)|to me"
    r"|for me)\b"
    r"|\b(?:go ahead and |just |please )?(?:type|enter|paste|send|share|pop) (?:it|them|that|this"
    r"|those) (?:now|over)\b"
)
# A thing named within this many characters after the asking verb is what it asks for,
# unless what comes between says otherwise: a clause break, a question word ("tell me how to
# reset your PIN"), "you" (the writer gives: "send you a code"), a third party ("provide them
# with your card details"), "until".
_ASK_REACH = 32
_GAP_RE = re.compile(
    r"(?i)[,;:()]|\b(?:until|when|whenever|after|before|if|how|what|why|where|which|whether"
    r"|you|them|him|her|they|anyone|someone|anybody|somebody)\b"
)
# A pronoun object ("type it now"), not a pronoun subject ("to confirm it's you"), nor a
# determiner ("I'm unable to provide that information"): "that", "this" and "those" stand
# alone only before punctuation or a word that cannot be their noun ("send that over").
_PRONOUN_RE = re.compile(
    r"(?i)\b(?:it|them|the code|the number)\b(?!'s|\u2019s| is| was)"
    # ... nor an indirect object ("give them the details"), nor handed by the writer ("I'd
    # have to provide it myself").
    r"(?!\s+(?:the|your|a|an|my|our|his|her|their|some|any|myself|ourselves)\b)"
    r"|\b(?:that|this|those)\b(?=\s*(?:[.,!?;:)\n]|$)|\s+(?:now|over|across|back|again|to|with"
    r"|here|in|into|please|for|right|straight|as|when|so|and|or|on|too|quickly|asap)\b)"
)
# ("Don't hesitate to send me your PIN" negates nothing.)
_NEGATION_RE = re.compile(
    r"(?i)(?:\b(?:never|not|unable|no one|nobody|no need|don'?t|do not|doesn'?t|won'?t|will not"
    r"|shouldn'?t|should not|mustn'?t|must not|cannot|can'?t|avoid)\b"
    r"|\b(?:don|won|can|doesn|shouldn|mustn)\u2019t\b)(?! hesitate)"
)
# Someone else's request, reported: "if someone asks you to send your PIN, it is a scam".
# The embedded model's answers to "How do I reset my card PIN?" say "you will be asked to
# provide your card number" (by the ATM or the site) often enough to matter.
# (Not every sentence that says "scam": "to protect you from scams, send me your PIN" asks.)
_REPORTED_RE = re.compile(
    r"(?i)\b(?:if|when|whenever|anyone|anybody|someone|somebody|people|callers?|nobody"
    r"|scam|scams|scammers?|fraudsters?|criminals?|messages?|texts?|e-?mails?)\b"
    r"[^.!?]{0,60}?\b(?:asks?|asking|asked|requests?|requesting|says?|said|saying)\b"
    # A screen, machine or site that will ask: "you will be asked to enter your card number";
    # someone told to ("was told to provide it right away").
    r"|\b(?:be|being|been|get|gets|are|is|were|was) (?:asked|prompted|told|instructed)\b"
)
# Part of a number is not the number ("the last four digits of your card number"), and a new
# PIN or password is set, not handed over ("choose a new PIN and repeat it").
_PARTIAL_RE = re.compile(
    r"(?i)\b(?:(?:last|first|final) (?:\d|one|two|three|four|five|six|few)"
    r"(?: digits?| numbers?| characters?)?(?: of)?(?: (?:your|the|that))?|new)\s*$"
)
# Typed into a machine or the official app, not handed to the writer: "repeat your PIN at the
# ATM", "confirm the code in the app".
_MACHINE_RE = re.compile(
    r"(?i)\b(?:at|on|in|into|using|with) (?:the|any|a|an|our|your|its) (?:[\w-]+ )?(?:atm|cash"
    r" ?machine|cashpoint|keypad|pin ?pad|card reader|terminal|till|machine|app|website|login"
    r" page|login screen|screen|browser)s?\b"
)
# Verbs whose "it" can stand for a thing named before: "I need your code. Send it over."
# Matched where the asking starts (``match(sentence, pos)``): no "^", which would only match
# at the sentence's start and miss "... Just go ahead and share it now!".
_HANDING_RE = re.compile(
    r"(?i)(?:send|share|giv|provid|tell|text|e-?mail|whatsapp|messag|dm|read|repl|respond|let"
    r"|hand|pass|spell|go ahead|just|please|type|enter|paste|input|write|put|pop|stick|drop|key)"
)
# Clauses inside a sentence, for the reach of a negation: "you don't need to visit a branch:
# just confirm your password here" asks.
_CLAUSE_BREAK_RE = re.compile(r"[,;:()\u2013\u2014]|\b(?:but|so|and then|however|instead)\b", re.I)
# A form field to fill in: "PIN: ____".
_BLANK_RE = re.compile(
    r"[^\S\n]*(?:\([^)\n]{0,40}\))?[^\S\n]*[:=\-][^\S\n]*(?:_{3,}|\.{4,}|\[ *\])"
)


def _sentence_start(text: str, pos: int, first_word: int) -> int:
    """Where a sentence starts: at its first non-space character (an opening quote or
    bracket included)."""
    while pos < first_word and text[pos].isspace():
        pos += 1
    return pos


def _word_before(text: str, start: int, end: int) -> str:
    r"""The run of ``[\w.'’]`` that ends ``text[start:end]`` (what ``([\w.'’]+)$`` finds
    there, the line holding no newline), found by stepping back from the end instead of
    trying the pattern at every position."""
    i = end
    while i > start and (text[i - 1].isalnum() or text[i - 1] in "_.'\u2019"):
        i -= 1
    return text[i:end]


def _sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences (and list items) of ``text``."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        start = line.start()
        item = _LIST_ITEM_RE.match(text, line.start())
        if item:
            start = item.end()
        pos = start
        for m in _SENTENCE_END_RE.finditer(text, start, line.end()):
            if m.group().startswith("."):
                w = _word_before(text, pos, m.start()).casefold()
                if w and (w in _ABBREVIATIONS or _INITIALS_RE.fullmatch(w)):
                    continue
            if first := _WORD_RE.search(text, pos, m.end()):
                spans.append((_sentence_start(text, pos, first.start()), m.end()))
            pos = m.end()
        if first := _WORD_RE.search(text, pos, line.end()):
            spans.append((_sentence_start(text, pos, first.start()), line.end()))
    return spans


@dataclass(frozen=True, slots=True)
class VoiceRules:
    """The checkable rules recognised in a policy's tone (None or empty: not stated)."""

    max_sentences: int | None = None
    max_words: int | None = None
    max_exclamations: int | None = None
    no_emoji: bool = False
    forbidden_requests: tuple[str, ...] = ()


_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
_COUNT = r"(\d{1,4}|" + "|".join(_NUMBERS) + ")"
_LIMIT = (
    r"(?:at most|no more than|not more than|up to|maximum(?: of)?|max\.?|under|fewer than"
    r"|less than)"
)
_EXCLUSIVE_RE = re.compile(r"(?i)\b(?:under|fewer than|less than)\b")
_MAX_SENTENCES_RE = re.compile(rf"(?i)\b{_LIMIT} {_COUNT}(?: \w+)? (?:sentences|steps|lines)\b")
_MAX_WORDS_RE = re.compile(rf"(?i)\b{_LIMIT} {_COUNT}(?: \w+)? words\b")
_NO_EMOJI_RE = re.compile(r"(?i)\b(?:no|never use|don't use|do not use|avoid|without) emoji")
_NO_EXCLAMATION_RE = re.compile(
    r"(?i)\b(?:no|never use|don't use|do not use|avoid|without) exclamation(?: marks?| points?)?"
)
_NEVER_ASK_RE = re.compile(
    r"(?i)\bnever (?:ask|request)(?: (?:for|about))?(?: or [a-z ]+?)?"
    r" (?:the user'?s |a |an |the |any )?(.+?)\s*[.;]?$"
)


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


@lru_cache(maxsize=64)
def voice_rules_from_tone(tone: Tone) -> VoiceRules:
    """The checkable rules stated in ``tone.rules``, in the forms this module recognises."""
    found: dict[str, Any] = {}
    requests: list[str] = []
    for rule in tone.rules:
        if m := _MAX_SENTENCES_RE.search(rule):
            n = _count(m.group(1)) - bool(_EXCLUSIVE_RE.search(m.group(0)))
            found["max_sentences"] = min(found.get("max_sentences", n), n)
        if m := _MAX_WORDS_RE.search(rule):
            n = _count(m.group(1)) - bool(_EXCLUSIVE_RE.search(m.group(0)))
            found["max_words"] = min(found.get("max_words", n), n)
        if _NO_EMOJI_RE.search(rule):
            found["no_emoji"] = True
        if _NO_EXCLAMATION_RE.search(rule):
            found["max_exclamations"] = 0
        if m := _NEVER_ASK_RE.search(rule.strip()):
            items = re.split(r",\s*|\s+or\s+|\s+and\s+", m.group(1))
            requests += [re.sub(r"^(?:a|an|the|any|full)\s+", "", i.strip()) for i in items]
    return VoiceRules(forbidden_requests=tuple(r for r in requests if r), **found)


@lru_cache(maxsize=64)
def _lists_money_back(outcomes: tuple[str, ...]) -> bool:
    """Whether ``outcomes`` lists "money back" (then amounts coming back count too)."""
    return any(normalize(w).text == "money back" for w in outcomes)


def _stricter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _clause_start(sentence: str, pos: int) -> int:
    """Where the clause holding ``sentence[pos]`` starts (``_CLAUSE_BREAK_RE``)."""
    return max((c.end() for c in _CLAUSE_BREAK_RE.finditer(sentence, 0, pos)), default=0)


def _introduces_list(line: str) -> bool:
    """Whether ``line`` (ending with a colon) asks for what follows it."""
    return any(
        not _NEGATION_RE.search(line, _clause_start(line, m.start()), m.start())
        and not _WRITER_SUBJECT_RE.search(line, 0, m.start())
        for m in _ASK_RE.finditer(line)
    )


def _asked(
    text: str, a: int, b: int, mine: list[_Hit], before: list[_Hit], previous_start: int
) -> list[tuple[_Hit, int]]:
    """The hits the sentence ``text[a:b]`` asks the reader for, each with where the asking
    starts. An asking verb (``_ASK_RE``, or "type"/"enter" with a destination in the chat)
    asks for a thing named within ``_ASK_REACH`` characters after it (or, for "type it
    here", between the verb and the destination), and, when its object is a pronoun ("go
    ahead and type it now"), for a thing named earlier in the sentence or in the one before.
    Not when a negation comes before the verb in its clause ("never share your PIN"), when
    the writer is the one who sends ("we send you a code"), when the request is someone
    else's, reported ("if anyone asks you to send your PIN ..."), or when only part of a
    number is asked for ("the last four digits of your card number"). A thing followed by a
    blank to fill in ("PIN: ____") is asked for too."""
    sentence = text[a:b]
    if _REPORTED_RE.search(sentence):
        return []
    found = [(h, a) for h in mine if _BLANK_RE.match(text, h.end)]
    asks = [
        (m.start(), m.end(), m.end() + _ASK_REACH)
        for m in _ASK_RE.finditer(sentence)
        if not _WRITER_SUBJECT_RE.search(sentence, 0, m.start())
    ]
    asks += [
        (m.start(), m.end("object") if m.group("object") is not None else m.end(), m.end())
        for m in _TYPE_HERE_RE.finditer(sentence)
        if not _WRITER_SUBJECT_RE.search(sentence, 0, m.start())  # "I'll paste it here"
    ]
    for start, end, reach in sorted(asks):
        clause = _clause_start(sentence, start)
        if _NEGATION_RE.search(sentence, clause, start):
            continue
        described = _DESCRIBED_RE.search(sentence, clause, start) or sentence[
            start:end
        ].lower().startswith("require")
        if described and not _TO_WRITER_RE.search(sentence, end):
            continue
        stop = _CLAUSE_BREAK_RE.search(sentence, end)
        if _MACHINE_RE.search(sentence, start, stop.start() if stop else len(sentence)):
            continue
        named = [
            h
            for h in mine
            if a + start <= h.start < a + max(reach, end)
            and not _GAP_RE.search(text, a + end, max(a + end, h.start))
            and not _PARTIAL_RE.search(text, a + start, h.start)
        ]
        if named:
            found += [(h, a) for h in named]
            continue
        pronoun = _PRONOUN_RE.search(sentence, start, max(reach, end))
        if (
            pronoun
            and _HANDING_RE.match(sentence, start)
            and not _GAP_RE.search(sentence, end, max(end, pronoun.start()))
        ):
            earlier = [h for h in mine if h.start < a + start] or before
            found += [(h, a if h.start >= a else previous_start) for h in earlier]
    return list(dict(found).items())


class BrandVoiceParams(GuardParams):
    max_sentences: int | None = Field(
        None,
        ge=1,
        description="Sentences per answer; each list item counts as one.",
        json_schema_extra=tighten("lower"),
    )
    max_words: int | None = Field(
        None, ge=1, description="Words per answer.", json_schema_extra=tighten("lower")
    )
    max_exclamations: int | None = Field(
        None, ge=0, description="Exclamation marks per answer.", json_schema_extra=tighten("lower")
    )
    no_emoji: bool = Field(
        False, description="Flag any emoji.", json_schema_extra=tighten("higher")
    )
    forbidden_words: tuple[str, ...] = Field(
        (),
        description="Words or phrases the voice never uses (whole words, with inflections).",
        json_schema_extra=tighten("superset"),
    )
    forbidden_requests: tuple[str, ...] = Field(
        (),
        description="Things never to ask the reader for (e.g. 'PIN'): flags a sentence that "
        "names one and asks (a question or a request verb) without a negation.",
        json_schema_extra=tighten("superset"),
    )
    forbidden_promises: tuple[str, ...] = Field(
        (),
        description="Outcomes never to promise (e.g. 'refund', 'money back'): flags a sentence "
        "that names one and commits to it ('I'll refund you', 'you will get your money back', "
        "'your claim is approved'), not a conditional, a negation, a question, the reader's "
        "own step ('request a refund') or someone else's words.",
        json_schema_extra=tighten("superset"),
    )
    from_tone: bool = Field(
        True,
        description="Also check the rules of the policy's tone.rules that are recognised.",
        json_schema_extra=tighten("higher"),
    )

    @field_validator("forbidden_words", "forbidden_requests", "forbidden_promises")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _phrases_valid(value)


@register("guard", "brand_voice", params=BrandVoiceParams, stages=("output",), redacts=True)
class BrandVoiceGuard:
    """Checks the mechanical side of the brand voice: answer length in sentences and words,
    exclamation marks, emoji, forbidden words, and requests for things never to ask for."""

    name = "brand_voice"

    def __init__(self, params: BrandVoiceParams) -> None:
        self.params = params
        self._matchers: dict[tuple[tuple[str, ...], ...], _PhraseMatcher] = {}

    def rules(self, policy: Policy | None) -> BrandVoiceParams:
        """These parameters with the policy's recognised tone rules merged in, stricter first."""
        p = self.params
        if policy is None or not p.from_tone:
            return p
        tone = voice_rules_from_tone(policy.tone)
        return p.model_copy(
            update={
                "max_sentences": _stricter(p.max_sentences, tone.max_sentences),
                "max_words": _stricter(p.max_words, tone.max_words),
                "max_exclamations": _stricter(p.max_exclamations, tone.max_exclamations),
                "no_emoji": p.no_emoji or tone.no_emoji,
                "forbidden_requests": tuple(
                    dict.fromkeys((*p.forbidden_requests, *tone.forbidden_requests))
                ),
            }
        )

    def _matcher(self, p: BrandVoiceParams) -> _PhraseMatcher:
        key = (p.forbidden_words, p.forbidden_requests, p.forbidden_promises)
        found = self._matchers.get(key)
        if found is None:
            found = _PhraseMatcher(
                [("FORBIDDEN_WORD", key[0]), ("REQUEST", key[1]), ("PROMISE", key[2])]
            )
            self._matchers[key] = found
        return found

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        policy = ctx.metadata.get("policy")
        rules = self.rules(policy if isinstance(policy, Policy) else None)
        if len(text) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(self._scan, text, rules)
        return self._scan(text, rules)

    def _scan(self, text: str, p: BrandVoiceParams) -> Verdict:
        prose = _CODE_FENCE_RE.sub(lambda m: " " * len(m.group()), text)
        reasons: list[str] = []
        spans: list[Span] = []
        sentences = _sentences(prose)
        if p.max_sentences is not None and len(sentences) > p.max_sentences:
            reasons.append(f"{len(sentences)} sentences, over the limit of {p.max_sentences}")
        if p.max_words is not None:
            words = len(_WORD_RE.findall(prose))
            if words > p.max_words:
                reasons.append(f"{words} words, over the limit of {p.max_words}")
        if p.max_exclamations is not None:
            marks = list(_EXCLAMATION_RE.finditer(prose))
            if len(marks) > p.max_exclamations:
                reasons.append(
                    f"{len(marks)} exclamation marks, over the limit of {p.max_exclamations}"
                )
                if p.max_exclamations == 0:
                    spans += [Span(start=m.start(), end=m.end(), label="EXCLAMATION",
                                   replacement=".") for m in marks]  # fmt: skip
        if p.no_emoji:
            # Every emoji holds a character outside ASCII (a keycap its U+20E3).
            emoji = [] if text.isascii() else list(_EMOJI_RE.finditer(text))
            if emoji:
                reasons.append(f"uses emoji {_listed(m.group() for m in emoji)}")
                spans += [
                    Span(start=m.start(), end=m.end(), label="EMOJI", replacement="") for m in emoji
                ]
        if p.forbidden_words or p.forbidden_requests or p.forbidden_promises:
            hits = self._matcher(p).find(text)
            words_hit = [h for h in hits if h.label == "FORBIDDEN_WORD"]
            if words_hit:
                reasons.append(f"uses {_listed(h.matched for h in words_hit)}")
                spans += [Span(start=h.start, end=h.end, label=h.label) for h in words_hit]
            asked = self._requests(text, sentences, [h for h in hits if h.label == "REQUEST"])
            if asked:
                reasons.append(f"asks the reader for {_listed(h.matched for h, _ in asked)}")
                spans += [Span(start=a, end=b, label="FORBIDDEN_REQUEST") for _, (a, b) in asked]
            promises = promised(
                text,
                sentences,
                [h for h in hits if h.label == "PROMISE"],
                money=_lists_money_back(p.forbidden_promises),
            )
            if promises:
                reasons.append(f"promises {_listed(h.matched for h, _ in promises)}")
                spans += [Span(start=a, end=b, label="FORBIDDEN_PROMISE") for _, (a, b) in promises]
        if not reasons:
            return Verdict(flagged=False, category="brand_voice")
        return Verdict(
            flagged=True,
            score=1.0,
            category="brand_voice",
            spans=tuple(sorted(spans, key=lambda s: s.start)),
            reason="; ".join(reasons),
        )

    @staticmethod
    def _requests(
        text: str, sentences: list[tuple[int, int]], hits: list[_Hit]
    ) -> list[tuple[_Hit, tuple[int, int]]]:
        """Hits the text asks the reader to hand over (see ``_asked``), each with the span of
        the sentence (or the two sentences) that asks. A line that asks and ends with a colon
        ("I need to confirm a few details:") asks for what the lines under it name."""
        out: list[tuple[_Hit, tuple[int, int]]] = []
        for i, (a, b) in enumerate(sentences):
            mine = [h for h in hits if a <= h.start < b]
            before = [h for h in hits if i and sentences[i - 1][0] <= h.start < a]
            for hit, start in _asked(text, a, b, mine, before, sentences[i - 1][0] if i else a):
                out.append((hit, (start, b)))
            if text[a:b].rstrip().endswith(":") and _introduces_list(text[a:b]):
                block = text.find("\n\n", b)
                end = len(text) if block < 0 else block
                out += [(h, (h.start, h.end)) for h in hits if b <= h.start < end]
        return out
