"""Promises an assistant cannot keep: "I'll refund you", "your claim is approved".

``brand_voice``'s ``forbidden_promises`` lists outcomes the assistant must never promise (a
bank's: refund, money back, reimbursement, a dispute upheld). A sentence that names one is
a promise when it commits to it:

- the writer acts, or the bank or its team in the third person: "I'll refund the 58 pounds",
  "we've reversed the charge", "I will make sure you get your money back", "the bank will
  reimburse you";
- the reader is told it will happen: "you'll get a full refund", "you will be reimbursed";
- it is announced as done or certain: "your refund has been approved", "the refund of €62.40
  will land in your account on 14 March", "a refund is guaranteed", "consider it refunded",
  "expect the money back by Friday";
- the writer rules on the dispute: "I've ruled the payment fraudulent".

When the list holds "money back", money itself counts as an outcome: an amount coming back
("you'll get the £60 back", "we'll credit 25 quid") or money announced as on its way ("the
cash is coming back to you").

Not a promise: a question, a negation in the clause ("I can't promise a refund", "we won't
refund"; "don't worry" reassures and negates nothing), a condition or hedge before it ("if
the claim is upheld, you'll get your money back", "refunds usually take five days") or a
condition after it ("fees are refunded if you cancel"), the reader's own step ("you can
request a refund"), a compound noun ("your refund request went to the merchant"), or
someone else's words ("the merchant said they would refund you"). English only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["promised"]


class _Hit(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...

    @property
    def matched(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Amount:
    start: int
    end: int
    matched: str


# Money coming back, when the policy lists "money back": an amount ("you'll get the £60
# back", "the $89 will land in your account on Friday", "we'll credit 25 quid") or the money
# itself announced as on its way ("the cash is coming back to you", "the money will be back").
_AMOUNT = (
    r"(?:(?:[£$€]|\b(?:gbp|usd|eur|us\$)) ?\d[\d,]*(?:\.\d+)?k?"
    r"|\b\d[\d,]*(?:\.\d+)?k? ?(?:pounds?|quid|bucks|dollars?|euros?|gbp|usd|eur)\b)"
)
_MONEY_RE = re.compile(
    rf"(?i){_AMOUNT}(?=(?: [\w']+){{0,2}} back\b| (?:will|'ll|should) (?:land|arrive|reach|be"
    r" (?:back|credited|returned|in your account)))"
    rf"|(?<=refund |credit |return )(?:you |back )?(?:the |a |an )?(?:full )?{_AMOUNT}"
    rf"|(?<=refunding |reimburse )(?:you |back )?(?:the |a |an )?(?:full )?{_AMOUNT}"
    rf"|(?<=pay you )(?:the |a |an )?(?:full )?{_AMOUNT}"
    rf"|(?<=give you )(?:the |a |an )?(?:full )?{_AMOUNT}"
    r"|\b(?:money|cash|funds|every (?:cent|penny|pound)|the lot)\b(?=(?:'s|\u2019s| is| are| will)"
    r"(?: [\w']+){0,3} back\b| back\b)"
)


# A condition after it, too: "fees are refunded if you cancel within 14 days".
_CONDITION_AFTER_RE = re.compile(r"(?i)\b(?:if|unless|provided|as long as|in case)\b")
# A condition, hedge or wish before the outcome leaves it open.
_OPEN_RE = re.compile(
    r"(?i)\b(?:if|once|when|whenever|unless|until|whether|provided|assuming|in case|as soon as"
    r"|after|should (?:the|your|it|they|we)|usually|typically|normally|generally|often"
    r"|sometimes|in most cases|may|might|could|would|can take|hope|hopefully|possibly|probably"
    r"|likely|depend\w*|review\w*|investigat\w*|look\w* into|will decide|to decide|decides"
    r"|assess\w*)\b"
)
# Reassurance, not negation: "don't worry, you'll get it back".
_REASSURANCE_RE = re.compile(
    r"(?i)\b(?:don'?t|do not|dont|don\u2019t) (?:worry|panic|stress|fret)\b|\bno (?:worries|problem"
    r"|questions asked|doubt|need to worry)\b|\bnot to worry\b|\bnever fear\b"
)
_NEGATION_RE = re.compile(
    r"(?i)(?:\b(?:no|not|never|nothing|none|neither|nor|cannot|can'?t|won'?t|don'?t|doesn'?t"
    r"|isn'?t|aren'?t|wasn'?t|haven'?t|hasn'?t|unable|without)\b"
    r"|\b(?:can|won|don|doesn|isn|aren|wasn|haven|hasn)\u2019t\b)"
)
# The reader's own step: "request a refund", "raise a dispute", "ask the merchant for one".
_READER_STEP_RE = re.compile(
    r"(?i)\b(?:request|requesting|apply(?:ing)? for|ask(?:ing)? (?:\w+ ){0,3}for|claim(?:ing)?"
    r"|rais(?:e|ing)|open(?:ing)?|fil(?:e|ing)|submit(?:ting)?|start(?:ing)?|chas(?:e|ing)"
    r"|track(?:ing)?|check(?:ing)?(?: on)?|follow(?:ing)? up on|lodg(?:e|ing)|seek(?:ing)?"
    r"|pursu(?:e|ing)|about|for|on|regarding|status of|how to get)"
    r"(?: (?:a|an|the|your|my|its|their|this|that|full|partial|any))*\s*$"
)
# Someone else's words, reported.
_REPORTED_RE = re.compile(
    r"(?i)\b(?:merchant|seller|retailer|shop|store|company|airline|they|he|she|someone|it)"
    r" (?:said|says|told|tells|claimed|claims|promised|promises|confirmed|confirms|offered"
    r"|offers)\b"
)
# Commitments before the outcome, in its clause. The writer, or the bank in the third person.
_AUX = (
    r"(?:'ll|\u2019ll|'ve|\u2019ve|'m|\u2019m|'re|\u2019re|'d|\u2019d| will| shall| have| has| am"
    r"| are| can| just| now| already| personally| gladly| happily| hereby| also| going to"
    r"| go ahead and| gone ahead and| went ahead and"
    r"| be| happy to| glad to)*"
)
_COMMIT = (
    r"(?:refund|reimburs|revers|return|credit|send|pay|process|issu|arrang|approv|make sure"
    r"|ensur|get|put|giv|sort|fix|compensat|uphold|rul|mark|guarantee|promis|confirm|provid"
    r"|transfer|move|restor|waiv|cancel|authori[sz]|cover|agree|make good)"
)
# The writer acts: "I'll refund", "we have reversed the", "I'll make sure you get your".
_WRITER_RE = re.compile(
    rf"(?i)\b(?:i|we|ive|weve|im|ill|(?:the|our) (?:bank|fraud team|disputes team|team)){_AUX}"
    rf"(?: (?:\w+ ){{0,2}}{_COMMIT}\w*(?: [\w']+){{0,8}}| (?:\w+ ){{0,2}})? ?$"
)
_READER_GETS_RE = re.compile(
    r"(?i)\byou(?:'ll|\u2019ll|'re|\u2019re| will| are| are going to| 're going to| shall"
    r"| get| now)(?: (?:definitely|certainly|surely|absolutely|soon|then|also|now|going to"
    r"|be|all|still|fully|quickly))* (?:get|getting|receive|receiving|see|seeing|have|having"
    r"|be|being|obtain|find)\b(?: \w+){0,5} ?$"
)
# Announced in the passive: "your money will be refunded", "the dispute has been upheld".
_PASSIVE_RE = re.compile(
    r"(?i)\b(?:will|'ll|\u2019ll|shall|is going to|are going to)(?: \w+)? be(?: \w+)? ?$"
    r"|\b(?:has|have|'s|\u2019s)(?: now| already| just)? been(?: \w+)? ?$"
    r"|\b(?:is|are)(?: now)?(?: being)? ?$"
)
# Money announced as coming back, by itself: "the cash is coming back to you".
_ANNOUNCED_RE = re.compile(
    r"(?i)(?:'s|\u2019s| is| are| will)(?: [\w']+){0,3} back\b"
    r"| (?:will|'ll) (?:land|arrive|reach|be (?:back|credited|returned|in your account))"
)
# "Expect the £64.20 back by the 5th."
_EXPECT_RE = re.compile(r"(?i)\bexpect(?: to (?:see|get|receive))?(?: (?:the|your|a|an))? ?$")
_CONSIDER_RE = re.compile(r"(?i)\b(?:consider (?:it|this|that)|it'?s|that'?s)(?: \w+){0,2} ?$")
# After the outcome: announced as done or certain.
_DONE_RE = re.compile(
    r"(?i)(?:[^.!?,;:]|(?<=\d)[.,](?=\d)){0,30}?\b(?:has been|have been|'s been|\u2019s been"
    r"|is|are|was|were|will be|'ll be|\u2019ll be|is being|are being|will|is going to)"
    r"(?: (?:now|already|fully|definitely|being|been))* (?:approved|processed|issued|granted"
    r"|confirmed|guaranteed|authori[sz]ed|sent|paid|credited|refunded|reversed|reimbursed"
    r"|returned|upheld|accepted|on (?:its|the|their) way|arriv\w+|land\w*|back|done|complete"
    r"|completed|reach\w*|appear\w*|show\w* up|go(?:ing)? through|in your account|locked in"
    r"|sorted|in the bag|a done deal|applied|added|paid out|released|scheduled)\b"
)
_CERTAIN_RE = re.compile(
    r"(?i)\b(?:guarantee[ds]?|i promise|we promise|promise you|assure you|rest assured"
    r"|for sure|definitely|certainly|100 ?%|no doubt|without a doubt)\b"
)
_RULING_RE = re.compile(
    r"(?i)\b(?:i|we)(?:'ve|\u2019ve|'m|\u2019m|'re|\u2019re| have| am| are| hereby)?"
    r"(?: \w+){0,2} (?:ruled?|ruling|declar\w+|deem\w*|decided|mark\w*|classif\w+|treat\w*)"
    r"\b[^.!?]{0,50}\b(?:fraud\w*|unauthori[sz]ed|in your favou?r)\b"
)
_CLAUSE_BREAK_RE = re.compile(r"[,;:()\u2013\u2014]|\b(?:but|however|although|though)\b", re.I)


_COMPOUND_RE = re.compile(
    r"(?i)\w*\s+(?:requests?|claims?|forms?|polic(?:y|ies)|process|status|applications?|query"
    r"|queries|case|team|department|rules?)\b"
)


def _negated(sentence: str, start: int, stop: int) -> bool:
    """A negation in ``sentence[start:stop]`` that is not reassurance ("don't worry")."""
    calm = [m.span() for m in _REASSURANCE_RE.finditer(sentence, start, stop)]
    return any(
        not any(a <= m.start() < b for a, b in calm)
        for m in _NEGATION_RE.finditer(sentence, start, stop)
    )


def _clause(sentence: str, pos: int) -> tuple[int, int]:
    start = max((c.end() for c in _CLAUSE_BREAK_RE.finditer(sentence, 0, pos)), default=0)
    stop = _CLAUSE_BREAK_RE.search(sentence, pos)
    return start, stop.start() if stop else len(sentence)


def promised(
    text: str, sentences: Sequence[tuple[int, int]], hits: Sequence[_Hit], *, money: bool = False
) -> list[tuple[_Hit, tuple[int, int]]]:
    """The outcome hits ``text`` promises (see the module docstring), each with the span of
    the sentence that promises it. With ``money``, an amount coming back counts as a hit."""
    if money:
        hits = [*hits, *(_Amount(m.start(), m.end(), m.group()) for m in _MONEY_RE.finditer(text))]
    out: list[tuple[_Hit, tuple[int, int]]] = []
    for a, b in sentences:
        sentence = text[a:b]
        if sentence.rstrip().endswith("?") or _REPORTED_RE.search(sentence):
            continue
        ruling = _RULING_RE.search(sentence)
        certain = any(
            not _negated(sentence, *_clause(sentence, m.start()))
            for m in _CERTAIN_RE.finditer(sentence)
        )
        for hit in (h for h in hits if a <= h.start < b):
            pos = hit.start - a
            start, stop = _clause(sentence, pos)
            before = sentence[start:pos]
            if _OPEN_RE.search(sentence, 0, pos) or _negated(sentence, start, stop):
                continue
            if _COMPOUND_RE.match(text, hit.end):  # "your refund request went to the merchant"
                continue
            if _CONDITION_AFTER_RE.search(sentence, pos, stop):
                continue
            if _READER_STEP_RE.search(before):
                continue
            if (
                _WRITER_RE.search(before)
                or _READER_GETS_RE.search(before)
                or _CONSIDER_RE.search(before)
                or _PASSIVE_RE.search(before)
                or _DONE_RE.match(sentence, pos)
                or _EXPECT_RE.search(before)
                or (isinstance(hit, _Amount) and _ANNOUNCED_RE.match(text, hit.end) is not None)
                or certain
                or (ruling is not None and ruling.start() < stop)
            ):
                out.append((hit, (a, b)))
    return out
