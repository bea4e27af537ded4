"""Personal data and secrets: detection, and guards that redact, mask, hash or pseudonymize.

:func:`find_pii` finds, in one pass over a message, the entities below and returns where
each is in the text as the user wrote it. Detection runs on the normalized text (NFKC, so
full-width digits and ``＠`` count; invisible characters dropped) and spans map back.

=================  ===========================================================================
entity             how it is found and validated
=================  ===========================================================================
EMAIL              local part and domain around each ``@``; the top-level domain must be a
                   country code (the regions ``phonenumbers`` knows) or a known generic one,
                   so ``icon@2x.png`` is not an address; also ``name [at] host [dot] com``
PHONE              digit runs, parsed by ``phonenumbers`` in the ``region`` given (default
                   US) or by their ``+``/``00`` country code; valid numbers count, and
                   possible ones written like phone numbers ((555) 010-0199, 555-0123) at
                   lower confidence; order, invoice or ticket numbers are passed over
CREDIT_CARD        13-19 digits with consistent separators, Luhn checksum, known issuer
                   prefix and length (Visa, Mastercard, Amex, Discover, JCB, Diners,
                   UnionPay, Maestro, Mir)
IBAN               ``stdnum.iban`` (country format and mod-97 checksum)
US_SSN             ``stdnum.us.ssn`` rules (no area 000, 666 or 9xx, group 00, serial 0000);
                   the numbers stdnum lists as advertising examples count at lower confidence;
                   nine bare digits only next to "SSN" or "social security"
national IDs       from stdnum: DE_TAX_ID (``de.idnr``, Steuer-ID), FR_NIR (``fr.nir``),
                   ES_DNI / ES_NIE (``es.dni``, ``es.nie``), IT_FISCAL_CODE
                   (``it.codicefiscale``), GB_NHS (``gb.nhs``); GB_NINO by HMRC's prefix
                   rules (stdnum has no NINO). Bare digit IDs (DE, GB_NHS) need a naming
                   word nearby ("Steuer-ID", "NHS"), since any 10 or 11 digits pass their
                   checksums one time in ten
IP_ADDRESS         ``ipaddress``: dotted quads not inside a longer dotted run (1.2.3.4.5, OIDs)
                   nor after "version"/"v"; IPv6 with at least a digit; never loopback,
                   unspecified or netmasks; private and documentation ranges unless
                   ``exclude_private_ips``
PERSON, ADDRESS    see below
secrets            see :data:`SECRET_ENTITIES` and the ``secrets`` guard
=================  ===========================================================================

Person names and street addresses, offline
------------------------------------------
No model: rules over lists. Names are capitalised words checked against the first- and
last-name lists that Faker ships (``faker`` on PyPI, MIT licence; the ``person`` providers of
en_US, en_GB, en_IE, en_NZ, de_DE, de_AT, de_CH, fr_FR, fr_CA, fr_CH, es_ES, es_MX, es_AR
and it_IT: about 4,900 first and 7,700 last names, read from the installed package, never
copied here). A name is flagged when

- a known first name is followed by a known last name (0.85) or another capitalised word
  that is not a common word (0.7), or an unlisted capitalised word by a known last name (0.6);
- a title precedes it ("Mr.", "Dr.", "Frau", "Mme", "Sra.", "Sig."; 0.85);
- a cue precedes it ("my name is", "Dear", "call me", "Name:", "je m'appelle", "me llamo",
  "mi chiamo", "ich heiße"; 0.85); weaker cues ("I'm", "Hi", "this is") need a listed
  first name;
- a known first name stands alone (0.6);
- a known last name stands alone after "by", "and", "says" or before "said", "wrote" (0.6),
  or two or more listed names form a list ("Doe, Smith and Morgan"; 0.6).

Names that are also common words in Faker's lorem word lists for en/de/fr/es/it ("Will",
"May", "Grant", "Price") need a last name, a title or a cue, and so do capitalised words in
Title Case text. A run followed by a street, place or organisation word ("Jackson Street",
"Lincoln Memorial", "Smith Partners") or preceded by a house number or a street type
("rue Bruno Matile") is not a person. Street addresses are a house number and a street word
in English ("12 Elm Road", "350 5th Ave"; the street words include the USPS suffixes Faker
lists for en_US), German ("Goethestraße 12", "Am Markt 5"), French ("12 rue de la Paix",
"rue de Béguelin 99"), Spanish ("Calle de Alcalá 45") and Italian ("Via Roma 10"), extended
over an apartment or suite, postcode and city when they follow; a named street with a full
street word and no number ("lives on Main Street") scores 0.55.

Measured with ``benchmarks/pii.py`` (overlap matching, ``min_confidence`` 0.5):

- presidio-evaluator templates filled with fresh Faker values (1,050 texts): PERSON
  precision 0.98, recall 0.96 (full names 0.99-1.00, a first name alone 0.98, a last name
  alone 0.81); ADDRESS precision 1.00, recall 0.81 (with a house number 0.95-1.00, a street
  named without one 0.10).
- generated text: names from the listed locales 0.98-1.00, from locales the lists do not
  cover (Indian, Dutch, Polish, Turkish, Brazilian) 0.60 for full names and 0.72 for first
  names alone; addresses from the listed locales 0.93-1.00 (optimistic: Faker made both
  them and part of the street vocabulary), from others 0.30 (Mexico) to 1.00 (Switzerland),
  Australia 0.42; PERSON precision 0.90, the false positives being places that are also
  first names ("Florence", "Chelsea").

Names written in lower case, last names alone without a cue, names in non-Latin scripts and
addresses without a street word are missed.

Engines and cost
----------------
Every pattern is Python ``re`` written with bounded repetition only (``{m,n}``, never ``*`` or
``+``): the work at each starting position is bounded by a constant, so a scan is linear in
the text (a test checks every pattern in this module). User-supplied patterns are not part
of these guards. Phone candidates go to ``phonenumbers.parse`` one by one (its
``PhoneNumberMatcher`` costs about 1.7 ms per KB on its own), after a check of their length
against the region's. Pattern families are tried only where they can match: two passes of
RE2 sets (linear DFAs, no backtracking; see the gates below) say which families' patterns,
loosened, match anywhere in the text, and those that begin with a digit or a capital are
tried only at digits or capitals. On the 2-core development machine, a 1 KB support message
with an e-mail address, a phone number and a link three times over costs the ``pii`` guard
about 0.3 ms of CPU (a third of it parsing the three phone numbers), the ``secrets`` guard
about 0.04 ms; text dense with entities about 1.5 ms and 0.4 ms (``benchmarks/guards.py``,
``benchmarks/pii.py``). Texts over 20,000 characters are scanned in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import importlib
import ipaddress
import json
import math
import os
import re
import secrets as _secrets
import string
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import phonenumbers
import re2
from pydantic import Field, field_validator
from stdnum import iban as _iban
from stdnum.de import idnr as _de_idnr
from stdnum.es import dni as _es_dni
from stdnum.es import nie as _es_nie
from stdnum.fr import nir as _fr_nir
from stdnum.gb import nhs as _gb_nhs
from stdnum.it import codicefiscale as _it_cf
from stdnum.us import ssn as _us_ssn

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import normalize
from ._vault import PseudonymVault

__all__ = [
    "PII_ENTITIES",
    "SECRET_ENTITIES",
    "PiiEntity",
    "PiiGuard",
    "PiiMatch",
    "PiiMode",
    "PiiParams",
    "SecretEntity",
    "SecretsGuard",
    "SecretsParams",
    "find_pii",
    "mask",
]

PiiEntity = Literal[
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "US_SSN",
    "DE_TAX_ID",
    "FR_NIR",
    "ES_DNI",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "GB_NHS",
    "GB_NINO",
    "IP_ADDRESS",
    "PERSON",
    "ADDRESS",
]
SecretEntity = Literal[
    "AWS_ACCESS_KEY",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "SLACK_TOKEN",
    "SLACK_WEBHOOK",
    "STRIPE_KEY",
    "OPENAI_KEY",
    "ANTHROPIC_KEY",
    "GOOGLE_API_KEY",
    "NPM_TOKEN",
    "HUGGINGFACE_TOKEN",
    "SENDGRID_KEY",
    "JWT",
    "PRIVATE_KEY",
    "URL_CREDENTIALS",
    "PASSWORD",
    "GENERIC_SECRET",
]
PiiMode = Literal["redact", "mask", "hash", "pseudonymize"]

PII_ENTITIES: tuple[PiiEntity, ...] = get_args(PiiEntity)
SECRET_ENTITIES: tuple[SecretEntity, ...] = get_args(SecretEntity)
_KNOWN_ENTITIES = frozenset(PII_ENTITIES + SECRET_ENTITIES)

_THREAD_THRESHOLD = 20_000
# Salt for ``mode: hash`` when the named environment variable is unset: new per process.
_PROCESS_SALT = _secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One entity found in a text; ``start``/``end`` index the text as given."""

    entity: str
    start: int
    end: int
    text: str
    confidence: float
    validator: str
    """What confirmed it: ``luhn+iin``, ``stdnum.iban``, ``phonenumbers.valid``, ``names``..."""
    value: str
    """Canonical form: what decides that two mentions are the same value (hashing, vault)."""


# A tuple: one is made for every detection, and a frozen dataclass is slower to make.
class _Hit(NamedTuple):
    entity: str
    start: int
    end: int
    confidence: float
    validator: str
    value: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class _Options:
    entities: frozenset[str]
    region: str
    exclude_private_ips: bool
    min_entropy: float


class _Scan:
    """A text being scanned: its normalized form and the hits found so far."""

    def __init__(self, text: str, options: _Options) -> None:
        self.original = text
        self.norm = normalize(text, casefold=False)
        self.t = self.norm.text
        self.options = options
        self.hits: list[_Hit] = []
        self._lower: str | None = None
        self.lowercased = False
        """Whether :attr:`lower` is the lower-cased text (not the text itself)."""

    @property
    def lower(self) -> str:
        if self._lower is None:
            lowered = self.t.lower()
            self.lowercased = len(lowered) == len(self.t)
            self._lower = lowered if self.lowercased else self.t
        return self._lower

    @functools.cached_property
    def gates(self) -> frozenset[str]:
        """The cheap tests (:func:`_gate_sets`) that this text passes."""
        return _gates(self.t)

    @functools.cached_property
    def has_digit(self) -> bool:
        # What ``any(c.isdigit() for c in t)`` says, without a Python step per character.
        if self.t.isascii():
            return _ASCII_DIGIT_RE.search(self.t) is not None
        return any(map(str.isdigit, self.t))

    def wants(self, entity: str) -> bool:
        return entity in self.options.entities

    def before(self, i: int, width: int = 40) -> str:
        return self.lower[max(0, i - width) : i]

    def after(self, j: int, width: int = 24) -> str:
        return self.lower[j : j + width]

    def add(
        self,
        entity: str,
        start: int,
        end: int,
        confidence: float,
        validator: str,
        value: str,
        priority: int = 0,
    ) -> None:
        if entity in self.options.entities and end > start:
            self.hits.append(
                _Hit(entity, start, end, min(confidence, 1.0), validator, value, priority)
            )


# --- cheap gates -----------------------------------------------------------------------------
#
# Most detectors find nothing in most texts, but a Python pattern scan costs tens of
# microseconds per kilobyte even then. One RE2 pass (a DFA, a few microseconds per kilobyte)
# first tells which detectors can find anything at all: each gate below matches wherever its
# detector's pattern could (the same pattern without lookarounds and bounds, or the literal
# words its detector already required), so skipping a detector whose gate failed changes no
# result. RE2's ``\p{Nd}`` stands for Python's ``\d`` (every decimal digit), and a negated
# class such as ``[^\s@]`` only grows in RE2, whose ``\s`` is ASCII.

_ASCII_DIGIT_RE = re.compile(r"[0-9]")
# Matches every text: if RE2 gives up on a text (its DFA ran out of memory), this gate is
# missing too, and every detector runs.
_ALWAYS = "always"


def _literals(words: Iterable[str]) -> str:
    return "|".join(re2.escape(w) for w in sorted(set(words)))


@functools.cache
def _gate_sets() -> tuple[tuple[re2.Set, tuple[str, ...]], ...]:
    """The gates as RE2 sets, each with its gates' names by index: patterns apart from
    words, because one DFA for all of them takes many more states on text dense with
    entities, and runs out of the processor's cache."""
    patterns: dict[str, str] = {
        _ALWAYS: "",
        "iban": r"[A-Za-z]{2}\p{Nd}{2}",
        "letter_id": r"\p{Nd}{8}[ \-]?[A-Za-z]|[XYZxyz][ \-]?\p{Nd}{7}[ \-]?[A-Za-z]"
        r"|[A-Za-z]{6}[0-9LMNP-Vlmnp-v]{2}[A-EHLMPR-Ta-ehlmpr-t][0-9LMNP-Vlmnp-v]{2}[A-Za-z]"
        r"[0-9LMNP-Vlmnp-v]{3}[A-Za-z]"
        r"|[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\p{Nd}{2} ?\p{Nd}{2} ?\p{Nd}{2} ?[A-D]",
        "ipv4": r"\p{Nd}{1,3}\.\p{Nd}{1,3}\.\p{Nd}{1,3}\.\p{Nd}{1,3}",
        # A German street name ends in a lower-case letter (or an abbreviating dot) right
        # before its house number: "Goethestraße 12", "Hauptstr. 5".
        "de_number": r"[a-zäöüß]\.? \p{Nd}",
    }
    words: dict[str, str] = {
        _ALWAYS: "",
        # Both French patterns hold a street word and a space (see _french_hint).
        "fr_word": f"(?i)(?:{_literals(_FR_WORDS)}) ",
        # Secret words, which the detectors look for in the lower-cased text: here without
        # regard to case, RE2 folding to each of these letters every character whose lower
        # case it is (the Kelvin sign too). Gates for _KEY_WORD_RE and _SECRET_WORD_RE, and
        # in front of the words the spoken-password and bearer-token scans already required.
        "key_word": f"(?i){_literals(_KEY_WORD_HINTS)}",
        "secret_word": f"(?i){_literals(_SECRET_WORD_HINTS)}",
        "spoken": f"(?i){_literals(_SPOKEN_HINTS)}",
        "bearer": "(?i)bearer|token",
    }
    for gate, (_, _, _, _, hints) in zip(_TOKEN_GATES, _TOKEN_RES, strict=True):
        words[gate] = _literals(hints)
    for k, (_, validator, hints) in enumerate(_address_patterns()):
        if hints and validator != "street-fr":  # French hints are read on the lower-cased text
            words[f"address:{k}"] = _literals(hints)
    # The English patterns end in a street word as written ("12 Elm Road", "Flat 9, ...
    # Close"); so does every named street ("lives on Main Street").
    words["en_street"] = _literals(_street_suffixes())
    options = re2.Options()
    options.log_errors = False
    sets = []
    for gates in (patterns, words):
        gate_set = re2.Set.SearchSet(options)
        for pattern in gates.values():
            gate_set.Add(pattern)
        gate_set.Compile()
        sets.append((gate_set, tuple(gates)))
    return tuple(sets)


@functools.lru_cache(maxsize=16)  # the pii and secrets guards of a turn read the same text
def _gates(text: str) -> frozenset[str]:
    passed: set[str] = set()
    for gate_set, names in _gate_sets():
        try:
            found = gate_set.Match(text)
        except UnicodeEncodeError:  # a lone surrogate: RE2 reads UTF-8 only
            found = None
        if not found or 0 not in found:
            passed.update(names)
        else:
            passed.update(names[k] for k in found)
    return frozenset(passed)


# _URL_CREDENTIALS_RE without lookarounds and bounds, on its own: in a set with the others,
# its long character classes multiply the DFA's states.
_URL_CREDENTIALS_GATE = re2.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s/?#@:\"'<>]+:[^\s/?#@\"'<>]+@"
)


def _matches_at(
    regex: re.Pattern[str], starts: re.Pattern[str], text: str
) -> Iterator[re.Match[str]]:
    """What ``regex.finditer(text)`` yields, trying ``regex`` only where ``starts`` matches
    (one character), which must be everywhere a match of ``regex`` can begin; ``regex`` must
    never match the empty string. Both patterns' lookbehinds see the text before ``pos``."""
    pos = 0
    while (start := starts.search(text, pos)) is not None:
        m = regex.match(text, start.start())
        if m is None:
            pos = start.start() + 1
        else:
            yield m
            pos = m.end()


def find_pii(
    text: str,
    *,
    entities: Iterable[str] = PII_ENTITIES,
    region: str = "US",
    exclude_private_ips: bool = False,
    min_entropy: float = 3.0,
    min_confidence: float = 0.5,
    allow: Iterable[str] = (),
) -> list[PiiMatch]:
    """Entities of the given kinds in ``text``, left to right, without overlaps (where two
    detections overlap, the more confident, then the more specific, wins).

    ``entities`` may name PII (:data:`PII_ENTITIES`) and secrets (:data:`SECRET_ENTITIES`);
    ``allow`` lists values never reported (compared as written, casefolded, by canonical
    form, and by digits for numbers).
    """
    wanted = frozenset(entities)
    unknown = wanted - _KNOWN_ENTITIES
    if unknown:
        known = ", ".join(PII_ENTITIES + SECRET_ENTITIES)
        raise ValueError(f"unknown entities {sorted(unknown)}; known: {known}")
    if not text or not wanted:
        return []
    scan = _Scan(text, _Options(wanted, region.upper(), exclude_private_ips, min_entropy))
    for kinds, detector in _DETECTORS:
        if wanted & kinds:
            detector(scan)
    allowed = _Allowed(allow)
    chosen: list[_Hit] = []
    hits = [h for h in scan.hits if h.confidence >= min_confidence]
    taken = bytearray(len(scan.t) + 1)
    for hit in sorted(hits, key=lambda h: (-h.confidence, -h.priority, h.start - h.end)):
        if taken.find(1, hit.start, hit.end) != -1:
            continue
        start, end = scan.norm.span(hit.start, hit.end)
        surface = text[start:end]
        if allowed.covers(surface, hit.value):
            continue
        taken[hit.start : hit.end] = b"\x01" * (hit.end - hit.start)
        chosen.append(_Hit(hit.entity, start, end, hit.confidence, hit.validator, hit.value))
    chosen.sort(key=lambda h: h.start)
    return [
        PiiMatch(
            h.entity, h.start, h.end, text[h.start : h.end], h.confidence, h.validator, h.value
        )
        for h in chosen
    ]


class _Allowed:
    def __init__(self, values: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.digits: set[str] = set()
        for value in values:
            self.exact.add(value.strip().casefold())
            digits = _digits(value)
            if len(digits) >= 6:
                self.digits.add(digits)

    def covers(self, surface: str, value: str) -> bool:
        if not self.exact:
            return False
        if surface.casefold() in self.exact or value.casefold() in self.exact:
            return True
        digits = _digits(surface)
        return len(digits) >= 6 and (digits in self.digits or _digits(value) in self.digits)


_NOT_DIGITS_RE = re.compile(r"[^0-9]{1,1000}")  # all but the ASCII digits


def _digits(text: str) -> str:
    return _NOT_DIGITS_RE.sub("", text)


# --- e-mail ---------------------------------------------------------------------------------

_GENERIC_TLDS = frozenset(
    """
    com org net edu gov mil int info biz name pro aero coop museum mobi asia tel travel jobs
    cat post app dev cloud tech online site shop store xyz club blog email company global
    digital network solutions services agency media news live life world today group
    example test invalid localhost local internal corp home lan mail team studio design
    space website systems software academy center consulting finance bank insurance legal
    health care church love family social photo photos pics guru ninja rocks page link
    """.split()
)
_CC_TLDS = frozenset(r.lower() for r in phonenumbers.SUPPORTED_REGIONS) | {"uk", "eu", "su", "ac"}
_TLDS = _GENERIC_TLDS | _CC_TLDS
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-'")
_EMAIL_DOMAIN_RE = re.compile(
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8})([A-Za-z]{2,24})(?![A-Za-z0-9\-])"
)
# Matched on the lower-cased text: a case-insensitive pattern costs Python's engine 3-5 times
# as much.
_OBFUSCATED_HINT_RE = re.compile(r"[\[(<{]\s{0,2}at\s{0,2}[\])>}]")
_OBFUSCATED_EMAIL_RE = re.compile(
    r"(?<![\w.%+\-])([A-Za-z0-9._%+\-]{1,64})\s{0,3}[\[(<{]\s{0,2}at\s{0,2}[\])>}]\s{0,3}"
    r"((?:[A-Za-z0-9\-]{1,63}\s{0,3}(?:[\[(<{]\s{0,2}dot\s{0,2}[\])>}]|\.)\s{0,3}){1,4})"
    r"([A-Za-z]{2,24})(?![\w])"
)


def _emails(scan: _Scan) -> None:
    t = scan.t
    at = t.find("@")
    while at != -1:
        left = at
        while left > 0 and at - left < 64 and t[left - 1] in _LOCAL_CHARS:
            left -= 1
        while left < at and t[left] in ".'":
            left += 1
        domain = _EMAIL_DOMAIN_RE.match(t, at + 1)
        if (
            left < at
            and t[at - 1] != "."
            and (left == 0 or t[left - 1] not in _LOCAL_CHARS)
            and domain is not None
            and domain.group(2).lower() in _TLDS
            and not _is_url_userinfo(t, left)
        ):
            end = domain.end()
            scan.add("EMAIL", left, end, 0.95, "regex+tld", t[left:end].lower(), 5)
        at = t.find("@", at + 1)
    if _OBFUSCATED_HINT_RE.search(scan.lower):
        for m in _OBFUSCATED_EMAIL_RE.finditer(scan.lower):
            if m.group(3).lower() in _TLDS:
                labels = re.split(
                    r"\s{0,3}(?:[\[(<{]\s{0,2}dot\s{0,2}[\])>}]|\.)\s{0,3}", m.group(2)
                )
                value = f"{m.group(1)}@{'.'.join(x for x in labels if x)}.{m.group(3)}".lower()
                scan.add("EMAIL", m.start(), m.end(), 0.8, "obfuscated", value, 5)


def _is_url_userinfo(t: str, left: int) -> bool:
    """``scheme://user:pass@host``: the password is not an e-mail address."""
    if left == 0 or t[left - 1] != ":":
        return False
    token_start = max(t.rfind(" ", 0, left), t.rfind("\n", 0, left)) + 1
    return "://" in t[token_start:left]


# --- numbers: cards, phones, SSNs, digit IDs ----------------------------------------------------

# Not after a word, a slash or a hyphen, nor after "3." or "1," (decimals, thousands).
_NUMBER_RUN_RE = re.compile(
    r"(?:(?<![\w+])\+ ?|(?<![\w+/\-])(?<!\d[.,])(?:\b00 ?)?\(?)"
    r"\d(?:[ \u00a0().\-]{0,3}\d){5,22}(?![\w])"
)
# Where a number run can begin: a digit, "+" or "(" not right after a word character (both
# branches above forbid one). Charset first, so the scan skips ahead in C.
_NUMBER_START_RE = re.compile(r"[+(\d](?<!\w.)")
_DOTTED_QUAD_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_GROUP_SPLIT_RE = re.compile(r"[^0-9]{1,3}")
_CLAUSE_SPLIT_RE = re.compile(r"[0-9.;!?\n]")
_NANP_RE = re.compile(r"(?:\+?1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")
_LOCAL7_RE = re.compile(r"\d{3}-\d{4}")
_SSN_RE = re.compile(r"\d{3}([\- ])\d{2}\1\d{4}")
_PHONE_CONTEXT_RE = re.compile(
    r"phone|\btel\b|telephone|call|mobile|cell|fax|sms|text me|whatsapp|reach|contact|dial"
    r"|\bring\b|my number|(?:phone|contact|mobile|cell|fax) number|m[oó]vil|tel[ée]fono"
    r"|t[ée]l[ée]phone|portable|handy|telefon|cellulare"
    r"|answering|office|desk|rufnummer|numéro de t"
)
_NUMBER_NEGATIVE_RE = re.compile(
    r"order|invoice|tracking|\bref\b|reference|ticket|\bcase\b|isbn|serial|\bsku\b|\bpart\b"
    r"|model|confirmation|booking|\bpo\b|\bid\b|account|acct|customer|member|policy|routing"
    r"|transaction|receipt|#\s{0,2}$|\bno\.?\s{0,2}$|\bnr\.?\s{0,2}$"
)
_CARD_CONTEXT_RE = re.compile(
    r"card|credit|debit|visa|master|amex|american express|discover|\bcc\b|\bpan\b|payment"
    r"|\bpay\b|charge|karte|carte|tarjeta|carta"
)
_SSN_CONTEXT_RE = re.compile(r"ssn|social security|soc\.? ?sec|\bss ?#|\bss no|taxpayer")
_DE_ID_CONTEXT_RE = re.compile(r"steuer|identifikationsnummer|\bidnr|tax ?id|\btin\b")
_FR_NIR_CONTEXT_RE = re.compile(
    r"s[ée]curit[ée] sociale|\bnir\b|insee|s[ée]cu\b|carte vitale|social security"
)
_NHS_CONTEXT_RE = re.compile(r"\bnhs\b")


def _numbers(scan: _Scan) -> None:
    t = scan.t
    if not scan.has_digit:
        return
    for m in _matches_at(_NUMBER_RUN_RE, _NUMBER_START_RE, t):
        run = m.group()
        start, end = m.start(), m.end()
        if run[0] == "(" and ")" not in run:
            run, start = run[1:], start + 1
        digits = _digits(run)
        before = scan.before(start)
        if _card(scan, run, digits, start, end, before):
            continue
        if not _ssn(scan, run, digits, start, end, before):
            _digit_ids(scan, digits, start, end, before)
            _phone(scan, run, digits, start, end, before)


@functools.cache
def _national_lengths(region: str) -> frozenset[int]:
    """Digit counts a number written without +CC can have in ``region``: its national
    lengths, with the trunk prefix, with the country code, and local-only lengths."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None or meta.general_desc is None:
        return frozenset(range(7, 16))
    desc = meta.general_desc
    lengths = set(desc.possible_length or ()) | set(desc.possible_length_local_only or ())
    prefixes = {len(meta.national_prefix or ""), len(str(meta.country_code or ""))}
    return frozenset(lengths | {n + k for n in lengths for k in prefixes})


def _last_at(regex: re.Pattern[str], text: str) -> int:
    """Where the last match of ``regex`` in ``text`` ends (-1: none)."""
    end = -1
    for m in regex.finditer(text):
        end = m.end()
    return end


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issuer(digits: str) -> str | None:
    """The card network whose prefix and length ``digits`` fits, if any."""
    n = len(digits)
    p1, p2, p3, p4, p6 = (int(digits[:k]) for k in (1, 2, 3, 4, 6))
    if p1 == 4:
        return "visa" if n in (13, 16, 19) else None
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "mastercard" if n == 16 else None
    if p2 in (34, 37):
        return "amex" if n == 15 else None
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or 622126 <= p6 <= 622925:
        return "discover" if 16 <= n <= 19 else None
    if 3500 <= p4 <= 3589:  # JCB is 3528-3589; generators and test data use all of 35xx
        return "jcb" if 16 <= n <= 19 else None
    if 300 <= p3 <= 305 or p4 == 3095 or p2 in (36, 38, 39):
        return "diners" if 14 <= n <= 19 else None
    if 2200 <= p4 <= 2204:
        return "mir" if 16 <= n <= 19 else None
    if p2 in (62, 81):
        return "unionpay" if 16 <= n <= 19 else None
    if p2 in (50, 56, 57, 58, 63, 67) or p2 == 60:
        return "maestro" if 12 <= n <= 19 else None
    return None


def _card(scan: _Scan, run: str, digits: str, start: int, end: int, before: str) -> bool:
    if not 13 <= len(digits) <= 19 or not scan.wants("CREDIT_CARD"):
        return False
    separators = {c for c in run if not c.isdigit()}
    if len(separators) > 1 or separators - {" ", "-", "\u00a0"}:
        return False
    if separators and any(len(g) < 3 for g in _GROUP_SPLIT_RE.split(run)[:-1]):
        return False
    issuer = _issuer(digits)
    if issuer is None or not _luhn(digits):
        return False
    confidence = 0.97
    if _NUMBER_NEGATIVE_RE.search(before) and not _CARD_CONTEXT_RE.search(before):
        confidence = 0.45
    scan.add("CREDIT_CARD", start, end, confidence, f"luhn+iin:{issuer}", digits, 4)
    return confidence >= 0.5


def _ssn(scan: _Scan, run: str, digits: str, start: int, end: int, before: str) -> bool:
    if len(digits) != 9 or not scan.wants("US_SSN"):
        return False
    context = bool(_SSN_CONTEXT_RE.search(before))
    formatted = _SSN_RE.fullmatch(run)
    if formatted is None and not (context and run == digits):
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    if _us_ssn.is_valid(digits):
        confidence, validator = 0.85, "stdnum.us.ssn"
    else:  # stdnum's advertising examples (219-09-9999): SSN-shaped, so still personal-looking
        confidence, validator = 0.6, "ssn-rules"
    if formatted is not None and formatted.group(1) == " ":
        confidence -= 0.1
    if context:
        confidence += 0.1
    scan.add("US_SSN", start, end, confidence, validator, digits, 3)
    return True


def _digit_ids(scan: _Scan, digits: str, start: int, end: int, before: str) -> None:
    n = len(digits)
    if n == 11 and scan.wants("DE_TAX_ID") and _DE_ID_CONTEXT_RE.search(before):
        if _de_idnr.is_valid(digits):
            scan.add("DE_TAX_ID", start, end, 0.9, "stdnum.de.idnr", digits, 3)
    elif n == 10 and scan.wants("GB_NHS") and _NHS_CONTEXT_RE.search(before):
        if _gb_nhs.is_valid(digits):
            scan.add("GB_NHS", start, end, 0.9, "stdnum.gb.nhs", digits, 3)
    elif n == 15 and scan.wants("FR_NIR") and _fr_nir.is_valid(digits):
        confidence = 0.95 if _FR_NIR_CONTEXT_RE.search(before) else 0.75
        scan.add("FR_NIR", start, end, confidence, "stdnum.fr.nir", digits, 3)


def _phone(scan: _Scan, run: str, digits: str, start: int, end: int, before: str) -> None:
    if not scan.wants("PHONE") or not 7 <= len(digits) <= 15:
        return
    international = run.startswith(("+", "00"))
    groups = [g for g in _GROUP_SPLIT_RE.split(run) if g]
    if sum(1 for g in groups[1:] if len(g) == 1) > 1:
        return  # "1 2 3 4 5 6 7": a list of numbers
    if _DOTTED_QUAD_RE.fullmatch(run):
        return  # an IPv4 address
    near = _CLAUSE_SPLIT_RE.split(before[-30:])[-1]  # the words since the last number
    context = _last_at(_PHONE_CONTEXT_RE, near)
    negative = _last_at(_NUMBER_NEGATIVE_RE, near) > context  # the nearer word decides
    context_seen = context >= 0
    if not international and len(digits) not in _national_lengths(scan.options.region):
        return  # cheaper than letting phonenumbers parse every date and count
    candidate = "+" + run.lstrip("+0 ") if international else run
    try:
        number = phonenumbers.parse(candidate, None if international else scan.options.region)
    except phonenumbers.NumberParseException:
        return
    formatted = run != digits
    value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(number):
        confidence = 0.9 if (context_seen or formatted or international) else 0.6
        validator = "phonenumbers.valid"
    elif _NANP_RE.fullmatch(run) or (international and phonenumbers.is_possible_number(number)):
        confidence = 0.75 if context_seen else 0.6
        validator = "phonenumbers.possible"
    elif _LOCAL7_RE.fullmatch(run):
        confidence = 0.75 if context_seen else 0.55
        validator, value = "local-format", digits
    else:
        return
    if negative:
        confidence -= 0.4
    scan.add("PHONE", start, end, confidence, validator, value, 1)


# --- IBANs and letter-bearing national IDs -------------------------------------------------------

_IBAN_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \u00a0]?[A-Za-z0-9]{4}){2,7}"
    r"(?:[ \u00a0]?[A-Za-z0-9]{1,3})?"
    r"(?![A-Za-z0-9])"
)
# Spanish DNI and NIE, Italian codice fiscale (digits may be replaced by letters for
# homonyms), British National Insurance number: one pass for all four.
_LETTER_ID_RE = re.compile(
    r"(?<![\w\-])(?:(?P<dni>\d{8}[ \-]?[A-Za-z])|(?P<nie>[XYZxyz][ \-]?\d{7}[ \-]?[A-Za-z])"
    r"|(?P<cf>[A-Za-z]{6}[0-9LMNP-Vlmnp-v]{2}[A-EHLMPR-Ta-ehlmpr-t][0-9LMNP-Vlmnp-v]{2}"
    r"[A-Za-z][0-9LMNP-Vlmnp-v]{3}[A-Za-z])"
    r"|(?P<nino>(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D]))"
    r"(?![\w\-])"
)
_ES_CONTEXT_RE = re.compile(r"\bdni\b|\bnie\b|\bnif\b|documento|identidad|extranjero")
_NINO_CONTEXT_RE = re.compile(r"national insurance|\bnino\b|\bni ?(?:no|number)")


def _ibans(scan: _Scan) -> None:
    if "iban" not in scan.gates:
        return
    for m in _IBAN_RE.finditer(scan.t):
        raw = m.group()
        compact = raw.replace(" ", "").replace("\u00a0", "").upper()
        # The run may have taken a trailing word: try shorter stretches, group by group.
        cuts = [len(raw)] + [i for i in range(len(raw) - 1, 14, -1) if raw[i] in " \u00a0"]
        for cut in cuts:
            candidate = compact[: cut - raw.count(" ", 0, cut) - raw.count("\u00a0", 0, cut)]
            if _iban.is_valid(candidate):
                end = m.start() + cut
                scan.add("IBAN", m.start(), end, 0.97, "stdnum.iban", candidate, 4)
                break


def _letter_ids(scan: _Scan) -> None:
    if "letter_id" not in scan.gates:
        return
    for m in _LETTER_ID_RE.finditer(scan.t):
        kind = m.lastgroup
        value = "".join(c for c in m.group() if c.isalnum()).upper()
        before = scan.before(m.start())
        if kind == "dni" and scan.wants("ES_DNI") and _es_dni.is_valid(value):
            confidence = 0.95 if _ES_CONTEXT_RE.search(before) else 0.85
            scan.add("ES_DNI", m.start(), m.end(), confidence, "stdnum.es.dni", value, 3)
        elif kind == "nie" and scan.wants("ES_NIE") and _es_nie.is_valid(value):
            confidence = 0.95 if _ES_CONTEXT_RE.search(before) else 0.85
            scan.add("ES_NIE", m.start(), m.end(), confidence, "stdnum.es.nie", value, 3)
        elif kind == "cf" and scan.wants("IT_FISCAL_CODE") and _it_cf.is_valid(value):
            scan.add(
                "IT_FISCAL_CODE", m.start(), m.end(), 0.95, "stdnum.it.codicefiscale", value, 3
            )
        elif kind == "nino" and scan.wants("GB_NINO"):
            confidence = 0.9 if _NINO_CONTEXT_RE.search(before) else 0.75
            scan.add("GB_NINO", m.start(), m.end(), confidence, "hmrc-prefix-rules", value, 3)


# --- IP addresses ---------------------------------------------------------------------------------

_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d|/\d)")
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:]|/\d)"
)
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_VERSION_BEFORE_RE = re.compile(
    r"(?:version|\bver\.?|\bv\.?|build|release|firmware|kernel|\brev\.?|revision|update|patch"
    r"|python|node|java|ios|android|windows|macos|chrome|firefox)\s{0,2}$"
)
_IP_CONTEXT_RE = re.compile(r"\bip\b|address|server|host|client|from|connect")


def _ips(scan: _Scan) -> None:
    t = scan.t
    if "ipv4" in scan.gates:
        for m in _IPV4_RE.finditer(t):
            if _VERSION_BEFORE_RE.search(scan.before(m.start(), 20)):
                continue
            try:
                ip4 = ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if _skip_ip(ip4, scan.options.exclude_private_ips) or _is_netmask(ip4):
                continue
            confidence = 0.95 if _IP_CONTEXT_RE.search(scan.before(m.start())) else 0.85
            scan.add("IP_ADDRESS", m.start(), m.end(), confidence, "ipaddress.v4", str(ip4), 2)
    colon = t.find(":")
    while colon != -1:
        left = colon
        while left > 0 and colon - left < 40 and t[left - 1] in _IPV6_CHARS:
            left -= 1
        m6 = _IPV6_RE.match(t, left)
        colon = t.find(":", max(colon + 1, m6.end() if m6 else 0))
        if m6 is None:
            continue
        raw = m6.group()
        if not any(c.isdigit() for c in raw) or sum(c not in ":." for c in raw) < 4:
            continue
        try:
            ip6 = ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        if not _skip_ip(ip6, scan.options.exclude_private_ips):
            scan.add("IP_ADDRESS", m6.start(), m6.end(), 0.9, "ipaddress.v6", str(ip6), 2)


def _skip_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, exclude_private: bool) -> bool:
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast:
        return True
    if isinstance(ip, ipaddress.IPv4Address) and int(ip) == 0xFFFFFFFF:
        return True
    return exclude_private and (ip.is_private or ip.is_reserved or ip.is_link_local)


def _is_netmask(ip: ipaddress.IPv4Address) -> bool:
    inverted = ~int(ip) & 0xFFFFFFFF
    return int(ip) >> 24 == 255 and (inverted & (inverted + 1)) == 0


# --- person names ---------------------------------------------------------------------------

_NAME_LOCALES = (
    "en_US", "en_GB", "en_IE", "en_NZ", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CA", "fr_CH",
    "es_ES", "es_MX", "es_AR", "it_IT",
)  # fmt: skip
_WORD_LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT")
# Capitalised words that are not personal names, whatever the name lists say.
_NOT_NAMES = frozenset(
    """
    Street St Avenue Ave Road Rd Boulevard Blvd Lane Drive Court Place Square Terrace Way
    Parkway Highway Circle Trail Close Crescent Row Alley Plaza Park Hill Bridge Station
    Inc Ltd LLC Corp Corporation Company Co GmbH AG SA SpA Bank University College School
    Institute Foundation Group Hospital Church Airport Hotel Museum Library Center Centre
    Club Team Support Customer Service Services Sir Madam Madame Mister Lord God Jesus
    Apt Suite Unit Flat Floor Room Memorial Monument Cathedral Palace Stadium Arena Theatre
    Theater Gallery Tower Airlines Airways Motors Pharma Labs Technologies Systems Partners
    January February March April May June July August September October November December
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday Christmas Easter
    Paris London Berlin Madrid Rome Vienna Sydney Dallas Houston Phoenix Denver Orlando Austin
    Georgia Virginia Jordan Israel India China Kenya Asia Africa America Europe
    English French German Spanish Italian American British Canadian Mexican Chinese
    Mr Mrs Ms Miss Dr Prof Herr Frau Mme Mlle Sr Sra Srta Sig Dott Dear Hi Hello Hey
    The This That These Those There Here When Where What Which Who Why How And But Or
    Please Thanks Thank Yes No Not All Any Our Your My His Her Their Its We You They
    """.split()
)
# A capitalised word after a name that makes it a place or an organisation: "Lincoln
# Memorial", "Jackson Street", "Goldman Partners".
_PLACE_AND_ORG_WORDS = frozenset(
    """
    Street St Avenue Ave Road Rd Boulevard Blvd Lane Drive Court Place Square Terrace Way
    Parkway Highway Circle Trail Close Crescent Row Alley Plaza Park Bridge Station Inc Ltd LLC
    Corp Corporation Company Co GmbH AG SA SpA Bank University College School Institute
    Foundation Group Hospital Church Airport Hotel Museum Library Center Centre Club Memorial
    Monument Cathedral Palace Stadium Arena Theatre Theater Gallery Tower Airlines Airways
    Motors Pharma Labs Technologies Systems Partners
    """.split()
)
_TITLES = frozenset(
    """
    mr mrs ms miss mx dr prof sir madam herr frau mme mlle monsieur madame sr sra srta don
    doña dona sig signor signora signorina dott dottor dottoressa ing lady lord
    """.split()
)
_STRONG_CUE_RE = re.compile(
    r"(?:my name is|my name's|name is|named|called|call me|\bdear|signed|\battn:?|attention:?"
    r"|name\?|says|said|asked|replied|wrote"
    r"|\bc/o|\bname\s{0,3}:|full name\s{0,3}:?|contact\s{0,3}:|mein name ist|ich hei(?:ß|ss)e"
    r"|je m'appelle|mon nom est|me llamo|mi nombre es|mi chiamo|il mio nome [èe]"
    r"|sincerely,?|regards,?|cheers,?|best,?|thanks,?|from\s{0,3}:|to\s{0,3}:|cc\s{0,3}:)"
    r"[\s\"'“]{1,4}$"
)
_WEAK_CUE_RE = re.compile(
    r"(?:i'm|i am|this is|it's|hi|hello|hey|and|with|by|from|to|ask|tell|meet|met|sister"
    r"|brother|wife|husband|son|daughter|friend|mother|father|mom|dad|colleague|manager"
    r"|ich bin|je suis|soy|sono|et|und|y|e)[\s,]{1,3}$"
)
# Capitalised words (checked again by _capitalised: the ranges hold some lower-case letters).
# The capital comes first and the lookbehind after it (same matches), so the scan skips to
# capitals in C instead of testing the lookbehind at every position.
_CAP_WORD_RE = re.compile(
    r"[A-ZÀ-ÖØ-ÞĀ-ſ](?<![\w'’\-].)[^\W\d_]{0,39}(?:['’\-][^\W\d_]{1,40}){0,3}"
)
_PARTICLE_GAP_RE = re.compile(
    r" (?:van|von|der|den|de|da|di|del|della|du|dos|das|le|la|bin|ter|zu)(?: (?:der|den|la|los))? "
)
_MAX_NAME_GAP = len(" della los ")  # the longest gap within a name: " ", ". " or particles


@dataclass(frozen=True, slots=True)
class _Lexicon:
    first: frozenset[str]
    last: frozenset[str]
    common: frozenset[str]


@functools.cache
def _lexicon() -> _Lexicon:
    """First and last names from Faker's person providers; common words from its lorem
    lists (a name that is also a common word needs more evidence)."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in _NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in dir(provider):
            target = first if attr.startswith("first_name") else None
            target = last if attr.startswith("last_name") else target
            values = getattr(provider, attr)
            if target is None or not isinstance(values, dict | tuple | list):
                continue
            for name in values:
                if isinstance(name, str):
                    target.update(w for w in name.split() if w[:1].isupper())
    common: set[str] = set()
    for locale in _WORD_LOCALES:
        words = importlib.import_module(f"faker.providers.lorem.{locale}").Provider.word_list
        common.update(w.casefold() for w in words)
    return _Lexicon(frozenset(first - _NOT_NAMES), frozenset(last - _NOT_NAMES), frozenset(common))


def _capitalised(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or not word.isupper())


def _persons(scan: _Scan) -> None:
    t = scan.t
    lex = _lexicon()
    tokens = []
    for m in _CAP_WORD_RE.finditer(t):
        word = m.group()
        if _capitalised(word):
            tokens.append((m.start(), m.end() - 2 if word.endswith(("'s", "’s")) else m.end()))
    singles: list[tuple[int, bool]] = []  # lone capitalised words: (token, flagged)
    i = 0
    while i < len(tokens):
        run = [i]
        j = i
        while j + 1 < len(tokens) and len(run) < 5:
            if tokens[j + 1][0] - tokens[j][1] > _MAX_NAME_GAP:
                break  # most capitalised words stand far apart: nothing to slice and test
            gap = t[tokens[j][1] : tokens[j + 1][0]]
            prev = t[tokens[j][0] : tokens[j][1]]
            nxt = t[tokens[j + 1][0] : tokens[j + 1][1]]
            joined = (
                gap == " "
                or (gap == ". " and (len(prev) == 1 or prev.casefold() in _TITLES))
                or _PARTICLE_GAP_RE.fullmatch(gap) is not None
            )
            if not joined or nxt in _NOT_NAMES:
                break
            run.append(j + 1)
            j += 1
        if len(run) == 1 and _plain_word(t[tokens[i][0] : tokens[i][1]], lex):
            singles.append((i, False))  # what _score_name decides first, without the call
            i += 1
            continue
        flagged = _score_name(scan, lex, tokens, run)
        if len(run) == 1:
            singles.append((i, flagged))
        i = run[-1] + 1
    _name_lists(scan, lex, tokens, singles)


def _plain_word(word: str, lex: _Lexicon) -> bool:
    """A capitalised word that alone is no name: a listed non-name, or a common word that
    the name lists do not hold."""
    return word in _NOT_NAMES or (
        word not in lex.first and word not in lex.last and word.casefold() in lex.common
    )


def _score_name(scan: _Scan, lex: _Lexicon, tokens: list[tuple[int, int]], run: list[int]) -> bool:
    """Score one run of capitalised words as a name; whether it was flagged."""
    t = scan.t
    words = [t[tokens[k][0] : tokens[k][1]] for k in run]
    if len(words) == 1 and _plain_word(words[0], lex):
        return False  # most runs: one capitalised word starting a sentence
    idx = list(run)
    titled = False
    if words[0].casefold() in _TITLES:
        if len(words) == 1:
            return False
        titled = True
        words, idx = words[1:], idx[1:]
    # Capitalised words around a name that are not part of it: "Yesterday Alice", "I'm".
    while words and _not_name(words[0], lex, lex.first):
        words, idx = words[1:], idx[1:]
    while len(words) > 1 and words[0] not in lex.first and words[1] in lex.first:
        words, idx = words[1:], idx[1:]
    while len(words) > 1 and _not_name(words[-1], lex, lex.last):
        words, idx = words[:-1], idx[:-1]
    given = [w for w in words if len(w) > 1]
    if not given:  # ("I"): decided before the street tests, which cost more
        return False
    start, end = tokens[idx[0]][0], tokens[idx[-1]][1]
    before = scan.before(start, 30)
    following = t[end : end + 16]
    if (
        _HOUSE_NUMBER_RE.search(before)
        or _STREET_AFTER_RE.match(following)
        or following[1:].split(" ", 1)[0].rstrip(".,;:!?") in _PLACE_AND_ORG_WORDS
        or _STREET_BEFORE_RE.search(scan.t[max(0, start - 30) : start])
        or (len(words) > 1 and words[-1] in _street_suffixes() and words[-1] not in lex.last)
    ):
        return False  # "8860 Petty Mountain", "Jackson Street": a street named after someone
    common = [w.casefold() in lex.common for w in given]
    first_known = given[0] in lex.first and not common[0]
    first_ambiguous = given[0] in lex.first and common[0]
    last_known = len(given) > 1 and given[-1] in lex.last
    cue_strong = _STRONG_CUE_RE.search(before) is not None or _line_start_signature(t, start)
    cue_weak = _WEAK_CUE_RE.search(before) is not None
    # In Title Case Text every word is capitalised: only listed names count there.
    prev = _PREV_WORD_RE.search(t, max(0, start - 32), start)
    headline = prev is not None and prev.group(1).casefold() in lex.common
    confidence = 0.0
    pair = len(given) > 1
    if (
        (titled and not all(common))
        or (pair and first_known and last_known)
        or (cue_strong and (first_known or first_ambiguous or not common[0]))
    ):
        confidence = 0.85
    elif pair and (
        (first_known and not common[-1] and not headline) or (first_ambiguous and last_known)
    ):
        confidence = 0.7
    elif len(given) > 1 and last_known and not any(common) and not headline:
        confidence = 0.6 if not _sentence_start(t, start) else 0.0
    elif first_known:
        confidence = 0.75 if cue_weak else 0.6
        end = tokens[idx[0]][1]  # "Alice Wonderland" with a common second word: the first only
    elif (
        len(given) == 1
        and given[0] in lex.last
        and not common[0]
        and (cue_weak or _SPEECH_RE.match(following))
    ):
        confidence = 0.6  # "by Walker", "Walker said"
    if confidence <= 0.0:
        return False
    name = t[start:end]
    scan.add("PERSON", start, end, confidence, "names", " ".join(name.casefold().split()), 0)
    return True


def _name_lists(
    scan: _Scan, lex: _Lexicon, tokens: list[tuple[int, int]], singles: list[tuple[int, bool]]
) -> None:
    """Enumerations of surnames ("founders: Antúnez, Polizzi and Galvan"): when two or more
    lone words of a list are listed names, each listed one is a person."""
    t = scan.t

    def listed(k: int) -> bool:
        w = t[tokens[k][0] : tokens[k][1]]
        return (w in lex.last or w in lex.first) and w.casefold() not in lex.common

    if sum(listed(k) for k, _ in singles) < 2:
        return  # a list needs two listed names, and there are not two in the whole text
    group: list[int] = []

    def close() -> None:
        named = [k for k in group if listed(k)]
        if len(group) >= 2 and len(named) >= 2:
            for k in named:
                start, end = tokens[k]
                scan.add("PERSON", start, end, 0.6, "names-list", t[start:end].casefold(), 0)
        group.clear()

    for k, _flagged in singles:
        if group and not _LIST_GAP_RE.fullmatch(t[tokens[group[-1]][1] : tokens[k][0]]):
            close()
        group.append(k)
    close()


_HOUSE_NUMBER_RE = re.compile(r"\d{1,6}[a-z]?,?\s{1,2}$")
_STREET_AFTER_RE = re.compile(
    r" (?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Drive|Court|Place|Square|Way|Inc"
    r"|Ltd|LLC|Corp|GmbH|Bank|University|College|School|Hospital)\b"
)
# A name right after a street word is the street's: "rue Bruno Matile", "Calle de Pilar".
_STREET_BEFORE_RE = re.compile(
    r"(?:\b(?:rue|avenue|av\.|boulevard|bd|chemin|impasse|allée|place|quai|route|calle|avenida"
    r"|paseo|plaza|camino|ronda|travesía|carrera|straße|strasse)"
    r"|\b(?-i:Via|Viale|Piazza|Corso|Largo|Vicolo))"
    r"(?: (?:de la|de l'|de los|de las|des|du|de|del|della|di|d'))?\s{1,2}$",
    re.IGNORECASE,
)
_SPEECH_RE = re.compile(
    r" (?:said|says|wrote|writes|explained|added|told|asked|replied|noted|argued|began|claimed"
    r"|stated|announced|reported|recalled)\b"
)
_LIST_GAP_RE = re.compile(r",\s{1,2}|,?\s{1,2}(?:and|&|und|et|y|e)\s{1,2}")


# The capitalised word before a name: a common one ("Supposed To Hate (But Secretly Love)")
# means Title Case text, where capitals say nothing.
_PREV_WORD_RE = re.compile(r"([A-Z][a-z'’]{0,30})[ (]{1,2}$")


def _not_name(word: str, lex: _Lexicon, names: frozenset[str]) -> bool:
    head = word.split("'", 1)[0].split("’", 1)[0]
    if word in _NOT_NAMES or (head != word and (head == "I" or head.casefold() in lex.common)):
        return True  # a listed word, or a contraction: "I'm", "That's"
    return word.casefold() in lex.common and word not in names


def _sentence_start(t: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and t[j] in " \t\"'“(":
        j -= 1
    return j < 0 or t[j] in ".!?\n:;"


def _line_start_signature(t: str, i: int) -> bool:
    """A name alone on a line right after a sign-off ("Best regards,\\nJane Doe")."""
    line_start = t.rfind("\n", 0, i)
    if line_start == -1 or t[line_start + 1 : i].strip():
        return False
    prev = t[max(0, t.rfind("\n", 0, line_start) + 1) : line_start].strip().lower()
    return prev.rstrip(",") in {"regards", "best regards", "kind regards", "best", "thanks",
                                "sincerely", "cheers", "yours", "yours sincerely",
                                "mit freundlichen grüßen", "cordialement", "saludos",
                                "un saluto", "cordiali saluti"}  # fmt: skip


# --- street addresses ---------------------------------------------------------------------------

# Street words; Faker's lists for en_US (the USPS suffixes), es_ES and it_IT are added when
# the patterns are first built.
_EN_STREET_WORDS = (
    "Street St Avenue Ave Av Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Place Pl Square Sq"
    " Terrace Ter Way Parkway Pkwy Highway Hwy Circle Cir Trail Trl Close Crescent Cres Row"
    " Alley Plaza Mews Grove Gardens Gdns Hill Park Path Pike Point Ridge Run Walk Loop"
    " Expressway Freeway Broadway Green View Wharf Quay Heights Estates Crossing Junction Manor"
    " Meadows Causeway Center Centre Harbor Harbour Landing Pass Port Summit Valley Villas"
    " Viaduct Wells Vista Station Springs Shore Shores Route Rte Parade Esplanade Promenade"
)
_EN_STREET_WORDS_FULL = "Street|Avenue|Road|Boulevard|Lane|Drive|Terrace|Parkway|Highway|Crescent"
_ES_STREET_WORDS = (
    "Calle C/ Avenida Avda. Avda Av. Paseo Pº Plaza Pza. Pza Camino Carrera Ronda Travesía"
    " Carretera Ctra. Ctra Glorieta Vía Pasaje Callejón Urbanización Rambla Alameda Cuesta"
)
_IT_STREET_WORDS = (
    "Via Viale Piazza Piazzale Corso Largo Vicolo Strada Lungomare Lungotevere Contrada Borgo"
    " Rotonda Stretto Incrocio Vico Salita Calle Canale"
)
_FR_STREET_WORDS = (
    "rue|avenue|av\\.|boulevard|bd|place|impasse|allée|allee|chemin|quai|route|cours|passage"
    "|square|voie|sentier|rond-point|faubourg|esplanade|promenade|parvis|cité|résidence"
)
_FR_WORDS = tuple(w.replace("\\", "") for w in _FR_STREET_WORDS.split("|"))
_DE_SUFFIX = "straße|strasse|str\\.|weg|gasse|allee|platz|ring|damm|ufer|chaussee|steig|pfad|markt"
_DE_WORDS = "Straße|Strasse|Str\\.|Weg|Gasse|Allee|Platz|Ring|Damm|Ufer|Chaussee|Steig|Pfad|Markt"
_DE_HINTS = (
    "traße",
    "trasse",
    "tr.",
    "weg",
    "Weg",
    "gasse",
    "Gasse",
    "allee",
    "Allee",
    "platz",
    "Platz",
    "ring",
    "Ring",
    "damm",
    "Damm",
    "ufer",
    "Ufer",
    "chaussee",
    "Chaussee",
    "steig",
    "Steig",
    "pfad",
    "Pfad",
    "markt",
    "Markt",
    "Am ",
    "An ",
    "Auf ",
    "Im ",
    "In de",
    "Zum ",
    "Zur ",
    "Unter ",
    "Hinter ",
)


def _alternation(words: Iterable[str]) -> str:
    """The words, longest first, grouped by their first character: ``re`` tries an
    alternative's first character before the rest, so one test per group replaces one per
    word (hundreds of street words). Only words with the same first character can match at
    one place, and they keep their order, so the matches are those of the plain list."""
    groups: dict[str, list[str]] = {}
    for w in sorted(set(words), key=lambda w: (-len(w), w)):
        groups.setdefault(w[0], []).append(re.escape(w[1:]))
    return "|".join(
        re.escape(first) + (rest[0] if len(rest) == 1 else f"(?:{'|'.join(rest)})")
        for first, rest in groups.items()
    )


@functools.cache
def _street_suffixes() -> frozenset[str]:
    """English street words ("Street", "Knoll", "Parkway"): a capitalised pair ending in one
    is a street, not a person."""
    return frozenset(_EN_STREET_WORDS.split() + _faker_words("en_US", "street_suffixes"))


def _faker_words(locale: str, attr: str) -> list[str]:
    values = getattr(importlib.import_module(f"faker.providers.address.{locale}").Provider, attr)
    return [w for w in values if isinstance(w, str) and w.strip()]


@functools.cache
def _address_patterns() -> tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...]:
    """(pattern, validator, words one of which the text must contain for it to be tried)."""
    es_words = _ES_STREET_WORDS.split() + _faker_words("es_ES", "street_prefixes")
    it_words = _IT_STREET_WORDS.split() + _faker_words("it_IT", "street_suffixes")
    en = _alternation(_street_suffixes())
    es = _alternation(es_words)
    it = _alternation(it_words)
    city = r"[A-Z][A-Za-z.'\-]{1,25}(?: [A-Z][A-Za-z.'\-]{1,25}){0,2}"
    secondary = (
        r"(?:,? ?(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|#)\.? ?"
        r"[A-Za-z0-9\-]{1,6})"
    )
    us_tail = rf"(?:,? {city})?(?:,? [A-Z]{{2}})?(?: \d{{5}}(?:-\d{{4}})?)?"
    uk_postcode = r"(?:,? [A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})"
    street_name = r"(?:(?:[A-Z][A-Za-z'\-]{0,20}|\d{1,3}(?:st|nd|rd|th))\.? ){0,4}"
    direction = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)"
    # Patterns that begin with the house number put its first digit before the lookbehind
    # (same matches) so that the scan skips to digits in C.
    english = re.compile(
        rf"\d(?<![\w.,\-]\d)\d{{0,5}}[A-Za-z]?(?:-\d{{1,5}})?,? (?:{direction}\.? )?{street_name}"
        rf"(?:{en})\b\.?(?: {direction}\b\.?)?{secondary}?(?:,{us_tail}|{uk_postcode})?"
    )
    flat = re.compile(  # "Flat 9, Smith Forest, Webbfort, EH1 9DE"
        rf"(?<![\w\-])(?:Flat|Apartment|Studio|Unit|Suite)\.? [A-Za-z0-9\-]{{1,6}},? "
        rf"(?:[A-Z][A-Za-z'\-]{{0,20}} ){{1,3}}(?:{en})\b(?:,{us_tail}|{uk_postcode})?"
    )
    de_tail = r"(?:,? \d{5} [A-ZÄÖÜ][a-zäöüß\-]{1,30}(?: [A-Za-zäöüß.\-]{1,20}){0,2})?"
    # Up to three capitalised words, then a house number; _addresses keeps the match only
    # where the words end in a street word ("Goethestraße", "Berliner Straße", "Am Markt").
    german = re.compile(
        r"(?<![\w\-])((?:(?:Am|An der|An den|Auf dem|Auf der|Im|In der|In den|Zum|Zur|Unter den"
        r"|Hinter der) )?(?:[A-ZÄÖÜ][a-zäöüß]{0,30}[\- ]){0,3}[A-ZÄÖÜ][a-zäöüß]{1,30}\.?)"
        rf" \d{{1,4}} ?[a-z]?(?:[/\-]\d{{1,4}})?(?![\w]){de_tail}"
    )
    french = re.compile(
        rf"\d(?<![\w\-]\d)\d{{0,3}}(?: ?(?:bis|ter|[A-D]))?,? (?i:{_FR_STREET_WORDS}) "
        r"(?:(?:de la|de l'|des|du|de|d'|la|le|les|l'|aux|au)\s?){0,2}"
        r"[A-ZÀ-Ý][\w'’\-]{1,30}(?: (?:de la |de |du |des |d'|l')?[A-ZÀ-Ý][\w'’\-]{1,30}){0,3}"
        r"(?:,? \d{5} [A-ZÀ-Ý][\w\-]{1,30}(?: [A-ZÀ-Ý][\w\-]{1,30}){0,2})?"
    )
    french_after = re.compile(  # Swiss and Belgian order: "rue de Béguelin 99, 2617 Vuille"
        rf"(?<![\w\-])(?i:{_FR_STREET_WORDS}) "
        r"(?:(?:de la|de l'|des|du|de|d'|la|le|les|l'|aux|au)\s?){0,2}"
        r"[A-ZÀ-Ý][\w'’\-]{1,30}(?: (?:de la |de |du |des |d'|l')?[A-ZÀ-Ý][\w'’\-]{1,30}){0,3}"
        r",? \d{1,4}(?: ?(?:bis|ter|[a-d]))?(?![\w])"
        r"(?:,? \d{4,5} [A-ZÀ-Ý][\w\-]{1,30}(?: [A-ZÀ-Ý][\w\-]{1,30}){0,2})?"
    )
    spanish = re.compile(
        rf"(?<![\w\-])(?:{es}) (?:(?:de la|de los|de las|del|de) )?"
        r"[A-ZÁÉÍÓÚÑ][\wáéíóúñ\-]{1,30}(?: (?:(?:de la|de los|de las|del|de|y) )?"
        r"[A-ZÁÉÍÓÚÑ][\wáéíóúñ\-]{1,30}){0,3},? (?:n[º°o]\.? ?)?\d{1,4}"
        r"(?:,? ?\d{1,2}[º°ª] ?[A-Za-z]?)?(?:,? (?:Puerta|Piso|Esc\.?) \d{1,3})?"
        r"(?:,? \d{5} [A-ZÁÉÍÓÚÑ][\w\-]{1,30}(?: [A-ZÁÉÍÓÚÑ][\w\-]{1,30}){0,2})?"
    )
    italian = re.compile(
        rf"(?<![\w\-])(?:{it}) (?:(?:del|della|dei|degli|delle|di|da|dal|San|Santa|Sant') ?){{0,2}}"
        r"[A-Z][\w'’\-]{1,30}(?: (?:(?:del|della|dei|di|da) )?[A-Z][\w'’\-]{1,30}){0,3}"
        r",? \d{1,4}[a-zA-Z]?(?:/\d{1,3})?(?![\w])"
        r"(?:,? \d{5},? [A-Z][\w\-]{1,30}(?: [A-Z][\w\-]{1,30}){0,2}(?: \(?[A-Z]{2}\)?)?)?"
    )
    return (
        (english, "street-en", ()),
        (flat, "street-en", ("Flat", "Apartment", "Studio", "Unit", "Suite")),
        (german, "street-de", _DE_HINTS),
        (french, "street-fr", _FR_WORDS),
        (french_after, "street-fr", _FR_WORDS),
        (spanish, "street-es", tuple(es_words)),
        (italian, "street-it", tuple(it_words)),
    )


_DE_PREFIX_RE = re.compile(
    r"(?:Am|An der|An den|Auf dem|Auf der|Im|In der|In den|Zum|Zur|Unter den|Hinter der)"
    r" [A-ZÄÖÜ][a-zäöüß]{1,30}$"
)
_DE_COMPOUND_RE = re.compile(rf"[A-ZÄÖÜ][a-zäöüß]{{0,30}}(?:{_DE_SUFFIX})$")
_DE_HYPHENATED_RE = re.compile(rf"(?:[A-ZÄÖÜ][a-zäöüß]{{0,30}}-){{1,3}}(?:{_DE_WORDS})$")
_DE_TWO_WORDS_RE = re.compile(rf"[A-ZÄÖÜ][a-zäöüß]{{1,30}} (?:{_DE_WORDS})$")


def _german_street(words: str, common: frozenset[str]) -> int:
    """Where the German street name starts within ``words`` (-1: not a street)."""
    for regex in (_DE_PREFIX_RE, _DE_HYPHENATED_RE, _DE_TWO_WORDS_RE, _DE_COMPOUND_RE):
        m = regex.search(words)
        if m is not None:
            first = m.group().split(" ", 1)[0].split("-", 1)[0]
            if regex is _DE_COMPOUND_RE and first.casefold() in common:
                return -1  # "During 2019": an English word that ends like a German street
            return m.start()
    return -1


def _french_hint(scan: _Scan, words: tuple[str, ...]) -> bool:
    """Whether the text holds a French street word followed by the space both French
    patterns put after it ("replacement" holds "place", not "place ").

    The gate reads the word case-insensitively as RE2 folds case, which covers how ``re``
    does on normalized text (no dotless i, long s or Kelvin sign left) unless it holds a
    letter whose lower case is longer ("İ"); there, as before, the words must appear as
    written."""
    lower = scan.lower
    if not scan.lowercased:
        return any(w in lower for w in words)
    return "fr_word" in scan.gates


_NAMED_STREET_RE = re.compile(
    rf"(?<![\w\-])(?:[A-Z][a-z'\-]{{1,20}} ){{1,3}}(?:{_EN_STREET_WORDS_FULL})\b"
)


def _addresses(scan: _Scan) -> None:
    t = scan.t
    common = _lexicon().common
    if scan.has_digit:
        gates = scan.gates
        for k, (regex, validator, hints) in enumerate(_address_patterns()):
            # A gate costs nothing more; a pattern scan over 1 KB, tens of microseconds.
            if validator == "street-fr":
                if not _french_hint(scan, hints):
                    continue
            elif (hints and f"address:{k}" not in gates) or (
                validator == "street-en" and "en_street" not in gates
            ):
                continue
            if validator == "street-de" and "de_number" not in gates:
                continue
            for m in regex.finditer(t):
                start = m.start()
                if validator == "street-de":
                    offset = _german_street(m.group(1), common)
                    if offset < 0:
                        continue
                    start += offset
                value = " ".join(t[start : m.end()].casefold().replace(",", " ").split())
                scan.add("ADDRESS", start, m.end(), 0.85, validator, value, 2)
    if "en_street" not in scan.gates or not any(w in t for w in _EN_STREET_WORDS_FULL.split("|")):
        return
    for m in _NAMED_STREET_RE.finditer(t):
        if t[m.start() : t.find(" ", m.start())] in _NOT_NAMES:
            continue
        value = " ".join(m.group().casefold().split())
        scan.add("ADDRESS", m.start(), m.end(), 0.55, "street-name", value, 2)


# --- secrets --------------------------------------------------------------------------------------

# (entity, pattern, confidence, how many leading characters a mask may keep)
_AWS_PREFIXES = (
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AGPA",
    "AIDA",
    "AIPA",
    "ANPA",
    "ANVA",
    "APKA",
    "AROA",
    "ASCA",
)
# (entity, pattern, confidence, characters a mask may keep, substrings one of which a text
# must contain for the pattern to be tried)
_TOKEN_FORMATS: tuple[tuple[str, str, float, int, tuple[str, ...]], ...] = (
    ("AWS_ACCESS_KEY", rf"(?:{'|'.join(_AWS_PREFIXES)})[A-Z2-7]{{16}}", 0.95, 4, _AWS_PREFIXES),
    ("GITHUB_TOKEN", r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}", 0.99, 11, ("github_pat_",)),
    (
        "GITHUB_TOKEN",
        r"gh[pousr]_[A-Za-z0-9]{36,251}",
        0.97,
        4,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    ("GITLAB_TOKEN", r"glpat-[A-Za-z0-9_\-]{20,64}", 0.95, 6, ("glpat-",)),
    ("SLACK_TOKEN", r"xox[abposr]-[A-Za-z0-9\-]{10,250}", 0.95, 5, ("xox",)),
    (
        "SLACK_WEBHOOK",
        r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,200}",
        0.95,
        29,
        ("hooks.slack.com",),
    ),
    ("STRIPE_KEY", r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}", 0.95, 8, ("_live_", "_test_")),
    ("STRIPE_KEY", r"pk_live_[A-Za-z0-9]{16,247}", 0.7, 8, ("pk_live_",)),
    ("ANTHROPIC_KEY", r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,120}", 0.99, 7, ("sk-ant-",)),
    ("OPENAI_KEY", r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,250}", 0.97, 8, ("sk-",)),
    ("OPENAI_KEY", r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}", 0.99, 3, ("T3BlbkFJ",)),
    ("OPENAI_KEY", r"sk-[A-Za-z0-9]{32,64}", 0.85, 3, ("sk-",)),
    ("GOOGLE_API_KEY", r"AIza[0-9A-Za-z_\-]{35}", 0.95, 4, ("AIza",)),
    ("NPM_TOKEN", r"npm_[A-Za-z0-9]{36}", 0.95, 4, ("npm_",)),
    ("HUGGINGFACE_TOKEN", r"hf_[A-Za-z]{34}", 0.95, 3, ("hf_",)),
    ("SENDGRID_KEY", r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}", 0.97, 3, ("SG.",)),
    (
        "JWT",
        r"eyJ[A-Za-z0-9_\-]{8,2000}\.eyJ[A-Za-z0-9_\-]{8,4000}\.[A-Za-z0-9_\-]{16,1000}",
        0.9,
        3,
        ("eyJ",),
    ),
)
_TOKEN_RES = tuple(
    (entity, re.compile(rf"(?<![A-Za-z0-9_\-])(?:{pattern})(?![A-Za-z0-9_\-])"), conf, keep, hints)
    for entity, pattern, conf, keep, hints in _TOKEN_FORMATS
)
_TOKEN_GATES = tuple(f"token:{k}" for k in range(len(_TOKEN_RES)))
# What a mask may keep of a token: the prefix that names its kind, never key material.
_MASK_PREFIX_RE = re.compile(
    r"github_pat_|gh[pousr]_|glpat-|xox[abposr]-|https://hooks\.slack\.com/|[spr]k_(?:live|test)_"
    r"|sk-ant-|sk-proj-|sk-svcacct-|sk-admin-|sk-|AIza|A[A-Z]{3}(?=[A-Z2-7]{16})|npm_|hf_|SG\.|eyJ"
)


def _known_tokens(scan: _Scan) -> None:
    t = scan.t
    gates = scan.gates
    for gate, (entity, regex, confidence, keep, _) in zip(_TOKEN_GATES, _TOKEN_RES, strict=True):
        if gate not in gates or not scan.wants(entity):
            continue
        for m in regex.finditer(t):
            body = m.group()[keep:]
            if len(set(body)) < 6:  # "ghp_xxxxxxxx...": a placeholder, not a token
                continue
            if entity == "JWT" and not _jwt_header(m.group()):
                continue
            scan.add(entity, m.start(), m.end(), confidence, "format", m.group(), 8)


def _jwt_header(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(decoded, dict) and ("alg" in decoded or "typ" in decoded)


_PEM_BEGIN_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?)-----")


def _private_keys(scan: _Scan) -> None:
    t = scan.t
    pos = t.find("-----BEGIN ")
    while pos != -1:
        m = _PEM_BEGIN_RE.match(t, pos)
        if m is None:
            pos = t.find("-----BEGIN ", pos + 11)
            continue
        footer = f"-----END {m.group(1)}-----"
        end = t.find(footer, m.end())
        if end == -1:  # cut off: take the base64 body, which ends on its first short line
            end = _pem_body_end(t, m.end())
        else:
            end += len(footer)
        scan.add("PRIVATE_KEY", m.start(), end, 1.0, "pem", t[m.start() : end], 9)
        pos = t.find("-----BEGIN ", end)


_PEM_LINE_RE = re.compile(r"[A-Za-z0-9+/=]{8,100}|[A-Za-z\-]{2,20}: [^\n]{1,200}")


def _pem_body_end(t: str, start: int) -> int:
    """The end of a PEM body without its footer: base64 lines (and "Proc-Type:" headers)
    up to the first line shorter than the first body line."""
    end = start
    width = 0
    for line in t[start : start + 65536].split("\n")[1:]:
        stripped = line.strip()
        if not stripped and width == 0:
            end += len(line) + 1
            continue
        if _PEM_LINE_RE.fullmatch(stripped) is None:
            break
        end += len(line) + 1
        if ":" in stripped:
            continue
        if width and len(stripped) < width:
            break  # the last, shorter line of the block
        width = width or len(stripped)
    return min(end, len(t))


_URL_CREDENTIALS_RE = re.compile(
    r"(?<![\w+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,20}://([^\s/?#@:\"'<>]{1,128}):([^\s/?#@\"'<>]{1,256})@(?=[\w\[])"
)
_PLACEHOLDER_VALUE_RE = re.compile(
    r"(?:\*{1,64}|x{2,64}|\.{2,64}|<[^>]{0,64}>|\{\{?[^}]{0,64}\}?\}|\$\{?[A-Za-z_][A-Za-z0-9_]{0,64}\}?"
    r"|%\([a-z_]{1,32}\)s|%s|\[[^\]]{0,64}\]|your[_\-]?\w{0,30}|my[_\-]?\w{0,30}"
    r"|password|passwd|pass|pwd|secret|token|user(?:name)?|none|null|nil|true|false|undefined"
    r"|required|optional|string|str|example|redacted|hidden|changeit|dummy|test|foo|bar|baz)",
    re.IGNORECASE,
)
_ENV_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{2,64}")


def _url_credentials(scan: _Scan) -> None:
    t = scan.t
    if "://" not in t or "@" not in t:
        return
    try:
        if _URL_CREDENTIALS_GATE.search(t) is None:
            return
    except UnicodeEncodeError:  # a lone surrogate: RE2 reads UTF-8 only
        pass
    for m in _URL_CREDENTIALS_RE.finditer(t):
        password = m.group(2)
        if _is_placeholder(password, env_case=True):
            continue
        scan.add("URL_CREDENTIALS", m.start(1), m.end(2), 0.9, "url-userinfo", m.group(2), 7)


def _is_placeholder(value: str, *, env_case: bool = False) -> bool:
    """A stand-in rather than a value: ``<password>``, ``${TOKEN}``, ``****``, ``changeme``;
    with ``env_case``, an unquoted ALL_CAPS name too (``password=DB_PASSWORD``)."""
    if env_case and _ENV_NAME_RE.fullmatch(value):
        return True
    return _PLACEHOLDER_VALUE_RE.fullmatch(value) is not None or len(set(value)) < 3


# A key that names a secret: found by its secret word, then read outwards. It ends on the
# word or a separated suffix (not "tokenizer"), then =, :, := or =>, then a quoted or bare value.
_KEY_WORD_RE = re.compile(
    r"pass(?:word|wd|phrase|code)?|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|auth[_\-]?key|credentials?|signing[_\-]?key|session[_\-]?(?:id|key)"
)
# Words one of which every match of _KEY_WORD_RE holds ("key" covers api_key, access-key...).
_KEY_WORD_HINTS = ("pass", "pwd", "secret", "token", "key", "credential", "session")
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
_SPOKEN_HINTS = (
    "password", "passwort", "passcode", "kennwort", "mot de passe", "contraseña", "contrasena",
    "clave", "pin ",
)  # fmt: skip


def _key_word_edge(before: str, first: str) -> bool:
    """Whether a secret word starting with ``first`` after ``before`` begins a key part:
    after a separator or a non-key character, or camelCase (``dbPassword``)."""
    return before in "_.-" or before not in _KEY_CHARS or (before.islower() and first.isupper())


_ASSIGNMENT_TAIL_RE = re.compile(
    r"s?(?:[_.\-][\w.\-]{0,30})?[\"']?\s{0,3}(?:=>|:=|=|:)\s{0,3}"
    r"(?:\"([^\"\r\n]{1,200})\"|'([^'\r\n]{1,200})'|([^\s\"',;`]{1,200}))"
)
_SPOKEN_PASSWORD_RE = re.compile(
    r"(?<![\w])(?:password|passwort|passcode|kennwort|mot de passe|contraseña|contrasena|clave"
    r"|la password|pin)\s{1,3}(?:is|was|ist|lautet|est|es|è|e)\s{0,3}:?\s{0,3}[\"'“]?"
    r"([^\s\"'”]{4,64})"
)
_BEARER_RE = re.compile(r"(?<![\w])(?:bearer|token)\s{1,3}([A-Za-z0-9\-._~+/]{16,2000}={0,2})")
_LONG_TOKEN_RE = re.compile(r"(?<![\w\-+/=.])[A-Za-z0-9+/_\-]{20,512}={0,2}(?![\w\-+/=])")
_SECRET_WORD_RE = re.compile(
    r"api[\s_\-]?key|apikey|access[\s_\-]?key|secret|token|password|passwd|\bpwd|credential"
    r"|\bauth|bearer|private[\s_\-]?key|\bkey\b"
)
_SECRET_GATES = frozenset({"key_word", "secret_word", "spoken", "bearer"})
# Words one of which every match of _SECRET_WORD_RE holds.
_SECRET_WORD_HINTS = (
    "key", "secret", "token", "password", "passwd", "pwd", "credential", "auth", "bearer",
)  # fmt: skip
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_HEX_RE = re.compile(r"[0-9a-fA-F]{20,512}")
_TOKEN_CHARS_RE = re.compile(r"[A-Za-z0-9+/=_\-.~:]{12,512}")
_NOT_SECRET_KEY_RE = re.compile(
    r"max|min|count|limit|len|length|size|num|type|expir|ttl|timeout|url|uri|endpoint|path|file"
    r"|name|id_?field|header|field|usage|budget|encoding|prefix|hint|policy|label|format|kind"
)


def _entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
    )


def _random_looking(value: str, min_entropy: float) -> bool:
    return len(value) >= 12 and _classes(value) >= 2 and _entropy(value) >= min_entropy


def _assignments(scan: _Scan) -> None:
    gates = scan.gates
    if not gates & _SECRET_GATES:
        return  # no secret word of any kind: nothing below can match
    t = scan.t
    lower = scan.lower
    min_entropy = scan.options.min_entropy
    pos = 0
    keys = _KEY_WORD_RE.finditer(lower) if "key_word" in gates else ()
    for word in keys:
        at = word.start()
        if at < pos or (at > 0 and not _key_word_edge(t[at - 1], t[at])):
            continue  # inside an assignment already read, or "bypass", "tokenizer"
        left = at
        while left > 0 and word.start() - left < 30 and t[left - 1] in _KEY_CHARS:
            left -= 1
        m = _ASSIGNMENT_TAIL_RE.match(t, word.end())
        if m is None or (left > 0 and (t[left - 1].isalnum() or t[left - 1] == "_")):
            continue
        pos = m.end()
        group = next(g for g in (1, 2, 3) if m.group(g) is not None)
        key = t[left : m.start(group)].lower()
        value = m.group(group)
        vstart, vend = m.start(group), m.end(group)
        if _is_placeholder(value, env_case=group == 3) or _NOT_SECRET_KEY_RE.search(key):
            continue
        if "pass" in key or "pwd" in key:
            if len(value) >= 4 and value.casefold() not in _lexicon().common:
                scan.add("PASSWORD", vstart, vend, 0.85, "assignment", value, 6)
        elif _TOKEN_CHARS_RE.fullmatch(value) and (
            _random_looking(value, min_entropy)
            or (len(value) >= 16 and (_UUID_RE.fullmatch(value) or _HEX_RE.fullmatch(value)))
        ):
            scan.add("GENERIC_SECRET", vstart, vend, 0.8, "assignment+entropy", value, 6)
    if "spoken" in gates and any(w in lower for w in _SPOKEN_HINTS):
        for m in _SPOKEN_PASSWORD_RE.finditer(lower):
            value = t[m.start(1) : m.end(1)].rstrip(".,;:")
            if (
                len(value) >= 4
                and not _is_placeholder(value)
                and value.casefold() not in _lexicon().common
            ):
                scan.add("PASSWORD", m.start(1), m.start(1) + len(value), 0.8, "spoken", value, 6)
    if "bearer" in gates and ("bearer" in lower or "token" in lower):
        for m in _BEARER_RE.finditer(lower):
            value = t[m.start(1) : m.end(1)]
            if _random_looking(value, min_entropy):
                scan.add("GENERIC_SECRET", m.start(1), m.end(1), 0.85, "bearer", value, 6)
    if not scan.wants("GENERIC_SECRET") or "secret_word" not in gates:
        return
    if not _SECRET_WORD_RE.search(lower):
        return
    for m in _LONG_TOKEN_RE.finditer(t):
        value = m.group()
        before = scan.before(m.start(), 40)
        if not _SECRET_WORD_RE.search(before) or "-----" in before:
            continue  # no secret word near, or the body of a PEM public key or certificate
        if _UUID_RE.fullmatch(value) or _HEX_RE.fullmatch(value) or value.count("/") >= 2:
            continue  # ids, digests and paths: only an explicit assignment makes them secrets
        if _random_looking(value, min_entropy + 0.5):
            scan.add("GENERIC_SECRET", m.start(), m.end(), 0.7, "entropy", value, 5)


_DETECTORS: tuple[tuple[frozenset[str], Callable[[_Scan], None]], ...] = (
    (frozenset({"EMAIL"}), _emails),
    (
        frozenset({"PHONE", "CREDIT_CARD", "US_SSN", "DE_TAX_ID", "FR_NIR", "GB_NHS"}),
        _numbers,
    ),
    (frozenset({"IBAN"}), _ibans),
    (frozenset({"ES_DNI", "ES_NIE", "IT_FISCAL_CODE", "GB_NINO"}), _letter_ids),
    (frozenset({"IP_ADDRESS"}), _ips),
    (frozenset({"ADDRESS"}), _addresses),
    (frozenset({"PERSON"}), _persons),
    (frozenset(f[0] for f in _TOKEN_FORMATS), _known_tokens),
    (frozenset({"PRIVATE_KEY"}), _private_keys),
    (frozenset({"URL_CREDENTIALS"}), _url_credentials),
    (frozenset({"PASSWORD", "GENERIC_SECRET"}), _assignments),
)


# --- replacements -----------------------------------------------------------------------------


def mask(match: PiiMatch) -> str:
    """A masked form that keeps a hint and hides the rest: ``j***@e***.com``,
    ``**** **** **** 1111``, ``***-**-6789``, ``J*** S***``, ``ghp_***``."""
    text, entity = match.text, match.entity
    if entity == "EMAIL" and "@" in text:
        local, _, domain = text.partition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***{dot}{tld}"
    if entity == "CREDIT_CARD":
        return _mask_digits(text, keep=4)
    if entity in ("PHONE", "US_SSN", "GB_NHS", "DE_TAX_ID", "FR_NIR"):
        return _mask_digits(text, keep=4 if entity == "US_SSN" else 2)
    if entity == "IBAN":
        return _mask_alnum(text, head=2, tail=4)
    if entity == "IP_ADDRESS":
        if "." in text and ":" not in text:
            return text.split(".", 1)[0] + ".*.*.*"
        return text.split(":", 1)[0] + ":***"
    if entity in ("PERSON", "ADDRESS"):
        return " ".join(w[:1] + "***" if w[:1].isalnum() else w for w in text.split())
    if entity == "URL_CREDENTIALS":
        return text.split(":", 1)[0][:1] + "***:***"
    if entity == "PRIVATE_KEY":  # the armour lines only
        lines = text.strip().splitlines()
        footer = f"\n{lines[-1]}" if len(lines) > 1 and lines[-1].startswith("-----END") else ""
        return f"{lines[0]}\n***{footer}"
    if entity in ("ES_DNI", "ES_NIE", "IT_FISCAL_CODE", "GB_NINO"):
        return _mask_alnum(text, head=0, tail=2)
    if entity in ("PASSWORD", "GENERIC_SECRET"):
        return "***"
    prefix = _MASK_PREFIX_RE.match(text)
    return (prefix.group() if prefix else "") + "***"


def _mask_alnum(text: str, *, head: int, tail: int) -> str:
    total = sum(c.isalnum() for c in text)
    out: list[str] = []
    seen = 0
    for c in text:
        if c.isalnum():
            seen += 1
            out.append(c if seen <= head or seen > total - tail else "*")
        else:
            out.append(c)
    return "".join(out)


def _mask_digits(text: str, *, keep: int) -> str:
    total = sum(c.isdigit() for c in text)
    out: list[str] = []
    seen = 0
    for c in text:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def _hash_token(match: PiiMatch, salt: bytes) -> str:
    digest = hmac.new(salt, f"{match.entity}\x00{match.value}".encode(), hashlib.sha256)
    return f"<{match.entity}_{digest.hexdigest()[:6]}>"


# --- guards -------------------------------------------------------------------------------------


class _ReplacingParams(GuardParams):
    """What the pii and secrets guards share: how spans are replaced, and what is left alone."""

    mode: PiiMode = Field(
        "redact",
        description=(
            "How spans are replaced: redact ([EMAIL]), mask (j***@e***.com), hash "
            "(<EMAIL_3f9a2c>, HMAC with the salt in salt_env), pseudonymize (<EMAIL_1>, "
            "restored for the user; needs the pipeline's vault, else redacts)."
        ),
        json_schema_extra=tighten("order:mask,hash,pseudonymize,redact"),
    )
    min_confidence: float = Field(0.5, ge=0.0, le=1.0, json_schema_extra=tighten("lower"))
    allow: tuple[str, ...] = Field(
        (),
        description="Exact values never flagged (the company's own support address).",
        json_schema_extra=tighten("subset"),
    )
    salt_env: str = Field(
        "TETHER_PII_SALT",
        description="Environment variable holding the salt for mode: hash (unset: random per "
        "process, so hashes differ between restarts).",
    )


class PiiParams(_ReplacingParams):
    entities: tuple[PiiEntity, ...] = Field(PII_ENTITIES, json_schema_extra=tighten("superset"))
    region: str = Field("US", description="Region for phone numbers written without +CC.")
    min_kinds: int = Field(
        1,
        ge=1,
        le=len(PII_ENTITIES),
        description="Flag only a text with at least this many different kinds of personal data "
        "(2: a record such as a name with an e-mail and a phone number, not a lone phone number).",
        json_schema_extra=tighten("lower"),
    )
    exclude_private_ips: bool = Field(
        False,
        description="Skip private, reserved and documentation IP ranges.",
        json_schema_extra=tighten("lower"),
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r}; use an ISO 3166 code like 'US'")
        return value.upper()


class SecretsParams(_ReplacingParams):
    entities: tuple[SecretEntity, ...] = Field(
        SECRET_ENTITIES, json_schema_extra=tighten("superset")
    )
    min_entropy: float = Field(
        3.0,
        ge=0.0,
        le=8.0,
        description="Shannon entropy (bits per character) a generic token needs to count.",
        json_schema_extra=tighten("lower"),
    )


class _ReplacingGuard:
    """Runs a detector and turns its matches into spans whose replacement follows ``mode``."""

    name: str
    category: str
    params: _ReplacingParams

    def __init__(self, params: _ReplacingParams) -> None:
        self.params = params
        salt = os.environ.get(params.salt_env)
        self._salt = salt.encode() if salt else _PROCESS_SALT

    def find(self, text: str) -> list[PiiMatch]:
        raise NotImplementedError

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        if len(text) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(self._check, text, ctx)
        return self._check(text, ctx)

    def _check(self, text: str, ctx: GuardContext) -> Verdict:
        matches = self.find(text)
        vault = ctx.metadata.get("vault") if self.params.mode == "pseudonymize" else None
        spans = [self._span(m, vault, ctx) for m in matches]
        notes = ""
        if self.params.mode == "pseudonymize":
            if isinstance(vault, PseudonymVault):
                spans += self._known(text, vault, spans)
            else:
                notes = " (no vault in ctx.metadata['vault']: redacted instead of pseudonymized)"
        counts = Counter(s.label for s in spans)
        if not spans or len(counts) < getattr(self.params, "min_kinds", 1):
            return Verdict(flagged=False, category=self.category)
        found = ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))
        return Verdict(
            flagged=True,
            score=max((m.confidence for m in matches), default=1.0),
            category=self.category,
            spans=tuple(sorted(spans, key=lambda s: s.start)),
            reason=f"{self.category} found: {found}{notes}",
        )

    def _span(self, match: PiiMatch, vault: object, ctx: GuardContext) -> Span:
        mode = self.params.mode
        replacement: str | None = None
        if mode == "mask":
            replacement = mask(match)
        elif mode == "hash":
            replacement = _hash_token(match, self._salt)
        elif mode == "pseudonymize" and isinstance(vault, PseudonymVault):
            if ctx.stage == "input":
                aliases = _aliases(match) if match.entity == "PERSON" else ()
                replacement = vault.placeholder(
                    match.entity, match.text, match.value, aliases=aliases
                )
            else:  # the model's own data is not the user's: only known values come back
                replacement = vault.lookup(match.entity, match.value)
        return Span(start=match.start, end=match.end, label=match.entity, replacement=replacement)

    def _known(self, text: str, vault: PseudonymVault, spans: list[Span]) -> list[Span]:
        taken = [(s.start, s.end) for s in spans]
        return [
            Span(start=start, end=end, label=entity, replacement=placeholder)
            for start, end, entity, placeholder in vault.known_spans(text)
            if entity in self._entity_labels and not any(a < end and start < b for a, b in taken)
        ]

    @functools.cached_property
    def _entity_labels(self) -> frozenset[str]:
        return frozenset(getattr(self.params, "entities", ()))


def _aliases(match: PiiMatch) -> list[str]:
    """A person's given and family name on their own, when each is a listed name and not
    a common word: later mentions of just "Alice" get the same placeholder."""
    lex = _lexicon()
    words = match.text.split()
    if len(words) < 2:
        return []
    return [
        w
        for w in (words[0], words[-1])
        if len(w) >= 3 and (w in lex.first or w in lex.last) and w.casefold() not in lex.common
    ]


@register("guard", "pii", params=PiiParams, stages=("input", "output"), redacts=True)
class PiiGuard(_ReplacingGuard):
    """Flags personal data (e-mail, phone, card, IBAN, national IDs, IP, names, addresses);
    redaction replaces it by label, mask, salted hash or a reversible pseudonym."""

    name = "pii"
    category = "pii"
    params: PiiParams

    def find(self, text: str) -> list[PiiMatch]:
        p = self.params
        return find_pii(
            text,
            entities=p.entities,
            region=p.region,
            exclude_private_ips=p.exclude_private_ips,
            min_confidence=p.min_confidence,
            allow=p.allow,
        )


@register("guard", "secrets", params=SecretsParams, stages=("input", "output"), redacts=True)
class SecretsGuard(_ReplacingGuard):
    """Flags API keys and tokens (AWS, GitHub, Slack, Stripe, OpenAI, Google, JWT...), private
    keys, credentials in URLs, passwords in configs and high-entropy tokens near secret words."""

    name = "secrets"
    category = "secrets"
    params: SecretsParams

    def find(self, text: str) -> list[PiiMatch]:
        p = self.params
        return find_pii(
            text,
            entities=p.entities,
            min_entropy=p.min_entropy,
            min_confidence=p.min_confidence,
            allow=p.allow,
        )
