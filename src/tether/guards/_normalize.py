"""Offset-preserving text normalization and decoded views, shared by text guards.

Attackers hide instructions from detectors with look-alike letters, invisible characters,
spaced-out or leetspeak words and encodings. Two entry points undo that:

- :func:`normalize` gives one canonical form: NFKC, invisible characters dropped,
  obfuscating diacritics stripped, homoglyphs folded to Latin, optionally casefolded.
- :func:`views` gives that form plus the other readings of a message a detector should
  scan: de-spaced, leetspeak-folded, and with base64, hex, URL, HTML and rot13 content
  decoded, recursively up to a depth.

Every character of every output keeps the index of the character it came from in the
user's text, so ``span()`` maps a match back to what the user wrote.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import re
import string
import unicodedata
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import re2

__all__ = [
    "INVISIBLE_CATEGORIES",
    "Normalized",
    "View",
    "invisible_category",
    "normalize",
    "views",
]

INVISIBLE_CATEGORIES = ("zero_width", "bidi", "tag", "control", "variation_selector", "private_use")

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad\u034f")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def invisible_category(ch: str) -> str | None:
    """Which kind of invisible or control character ``ch`` is, or None for a visible one.

    Tab, newline and carriage return count as visible: they are ordinary text.
    """
    if ch in _ZERO_WIDTH:
        return "zero_width"
    if ch in _BIDI:
        return "bidi"
    cp = ord(ch)
    if 0xE0000 <= cp <= 0xE007F:  # Unicode tags: invisible ASCII look-alikes used for smuggling
        return "tag"
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return "variation_selector"
    if ch in "\t\n\r":
        return None
    cat = unicodedata.category(ch)
    if cat == "Cc":
        return "control"
    if cat == "Co":
        return "private_use"
    return None


def _map_span(
    offsets: tuple[int, ...], ends: tuple[int, ...] | None, start: int, end: int, fallback: int
) -> tuple[int, int]:
    if start >= len(offsets):
        return fallback, fallback
    start = max(start, 0)
    end = min(end, len(offsets))
    first = offsets[start]
    if end <= start:
        return first, first
    return first, (ends[end - 1] if ends is not None else offsets[end - 1] + 1)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized text and, for each of its characters, the index in the original.

    ``ends`` holds, per character, the end of the original stretch it came from when that
    is more than one character (a letter with its combining marks); None means
    ``offset + 1`` throughout.
    """

    text: str
    offsets: tuple[int, ...]
    original_length: int
    ends: tuple[int, ...] | None = field(default=None, compare=False, repr=False)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the normalized text back to the original text."""
        return _map_span(self.offsets, self.ends, start, end, self.original_length)


@dataclass(frozen=True, slots=True)
class View:
    """One reading of a text for detectors to scan, mapped back to the original.

    ``offsets[i]`` is where ``text[i]`` starts in the original. ``transforms`` names what
    produced the view, base first: ``("normalize", "url", "base64")``. A character decoded
    from an encoded run (base64, hex, a percent- or HTML-escape) stands for that whole run:
    its span is the run's, so redacting a hit removes the encoded text.
    """

    text: str
    offsets: tuple[int, ...]
    transforms: tuple[str, ...]
    ends: tuple[int, ...] | None = field(default=None, compare=False, repr=False)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of ``text`` back to the original text."""
        fallback = self.ends[-1] if self.ends else (self.offsets[-1] + 1 if self.offsets else 0)
        return _map_span(self.offsets, self.ends, start, end, fallback)


# --- Homoglyphs ---------------------------------------------------------------------------
#
# Policy: Latin-script look-alikes (dotless i, small capitals) fold everywhere; they are
# Latin already, so nothing is lost. Letters of other scripts (Cyrillic, Greek, Armenian,
# Cherokee) fold only inside a word that is evidently a spoof: one that also holds Latin
# letters or letters of a second script ("іgnоrе" mixes Cyrillic і, о, е with Latin g, n, r),
# or, in a text that is mostly Latin, a word made only of look-alikes ("сору"). Genuine
# Russian, Greek or Armenian words are single-script and nearly always contain letters
# without a Latin twin, so they reach every view intact. The pairs follow Unicode's
# confusables data (UTS #39), kept to letters that really look alike.

_FOREIGN_UPPER = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ү": "Y", "Ѵ": "V", "Ԍ": "G",
    "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I", "Ё": "Ë", "Ї": "Ï", "Ӧ": "Ö", "Ӓ": "Ä",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J", "Ϝ": "F",
    # Armenian
    "Ս": "U", "Տ": "S", "Օ": "O",
}  # fmt: skip
_FOREIGN_LOWER = {
    # Cyrillic
    "а": "a", "г": "r", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
    "і": "i", "ј": "j", "ѡ": "w", "ѵ": "v", "ү": "y", "һ": "h", "ҽ": "e", "ӏ": "i", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ё": "ë", "ї": "ï", "ӧ": "ö", "ӓ": "ä",
    # Greek
    "α": "a", "γ": "y", "ι": "i", "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "υ": "u", "ϲ": "c",
    "ϳ": "j", "ά": "á", "ί": "í", "ό": "ó", "ύ": "ú",
    # Armenian
    "գ": "q", "զ": "q", "հ": "h", "ո": "n", "ռ": "n", "ս": "u", "ց": "g", "ք": "f", "օ": "o",
}  # fmt: skip
# Cherokee capitals; their small forms (U+AB70...) look like small capitals of the same.
_CHEROKEE = {
    "Ꭰ": "D", "Ꭱ": "R", "Ꭲ": "T", "Ꭵ": "i", "Ꭹ": "Y", "Ꭺ": "A", "Ꭻ": "J", "Ꭼ": "E", "Ꮃ": "W",
    "Ꮇ": "M", "Ꮋ": "H", "Ꮍ": "Y", "Ꮐ": "G", "Ꮒ": "h", "Ꮓ": "Z", "Ꮟ": "b", "Ꮢ": "R", "Ꮤ": "W",
    "Ꮥ": "S", "Ꮩ": "V", "Ꮪ": "S", "Ꮮ": "L", "Ꮯ": "C", "Ꮲ": "P", "Ꮶ": "K", "Ꮷ": "d", "Ᏻ": "G",
    "Ᏼ": "B",
}  # fmt: skip


def _latin_lookalikes() -> dict[str, str]:
    table = {"ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʋ": "u", "ᴑ": "o"}
    small_capital = re.compile(r"LATIN LETTER SMALL CAPITAL ([A-Z])")
    for lo, hi in ((0x0250, 0x02B0), (0x1D00, 0x1D80), (0xA720, 0xA800)):
        for cp in range(lo, hi):
            m = small_capital.fullmatch(unicodedata.name(chr(cp), ""))
            if m:
                table[chr(cp)] = m.group(1).lower()
    return table


def _foreign_lookalikes() -> dict[str, str]:
    table = {**_FOREIGN_UPPER, **_FOREIGN_LOWER, **_CHEROKEE}
    table.update({k.lower(): v.lower() for k, v in _CHEROKEE.items()})
    return table


_LATIN_FOLD = _latin_lookalikes()
_FOREIGN_FOLD = _foreign_lookalikes()
_LATIN_FOLD_TABLE = str.maketrans(_LATIN_FOLD)
_FOREIGN_FOLD_TABLE = str.maketrans(_FOREIGN_FOLD)
_LATIN_FOLD_RE = re.compile("[" + "".join(map(re.escape, _LATIN_FOLD)) + "]")
_FOREIGN_FOLD_RE = re.compile("[" + "".join(map(re.escape, _FOREIGN_FOLD)) + "]")
_LATIN_LETTER_RE = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_SPOOF_SCRIPT_RE = re.compile(r"[\u0370-\u058f\u1f00-\u1fff\u13a0-\u13ff\uab70-\uabbf]")
_WORD_RE = re.compile(r"\w+")
_SCRIPT_RANGES = (
    (0x0041, 0x024F, "latin"),  # only letters are asked, so ASCII punctuation never lands here
    (0x0250, 0x02AF, "latin"),
    (0x0370, 0x03FF, "greek"),
    (0x0400, 0x052F, "cyrillic"),
    (0x0530, 0x058F, "armenian"),
    (0x13A0, 0x13FF, "cherokee"),
    (0x1C80, 0x1C8F, "cyrillic"),
    (0x1D00, 0x1D7F, "latin"),
    (0x1E00, 0x1EFF, "latin"),
    (0x1F00, 0x1FFF, "greek"),
    (0x2C60, 0x2C7F, "latin"),
    (0x2DE0, 0x2DFF, "cyrillic"),
    (0xA640, 0xA69F, "cyrillic"),
    (0xA720, 0xA7FF, "latin"),
    (0xAB30, 0xAB6F, "latin"),
    (0xAB70, 0xABBF, "cherokee"),
)


def _script(ch: str) -> str:
    cp = ord(ch)
    for lo, hi, name in _SCRIPT_RANGES:
        if lo <= cp <= hi:
            return name
    return unicodedata.name(ch, "?").split(" ", 1)[0]


def _is_spoof(word: str, mostly_latin: Callable[[], bool]) -> bool:
    scripts: set[str] = set()
    only_lookalikes = True
    for ch in word:
        # Modifier letters (Lm) belong to no script's words: the Ukrainian apostrophe ʼ
        # (U+02BC) inside "подвірʼя" does not make it a mix of scripts.
        if ch.isalpha() and unicodedata.category(ch) != "Lm":
            scripts.add(_script(ch))
            only_lookalikes = only_lookalikes and ch in _FOREIGN_FOLD
    if "latin" in scripts or len(scripts) > 1:
        return True
    return only_lookalikes and mostly_latin()


def fold_homoglyphs(text: str) -> str:
    """Fold look-alike letters to Latin, one character for one (offsets do not move)."""
    if text.isascii():
        return text
    if _LATIN_FOLD_RE.search(text):
        text = text.translate(_LATIN_FOLD_TABLE)
    if _FOREIGN_FOLD_RE.search(text) is None:
        return text
    verdict: list[bool] = []

    def mostly_latin() -> bool:
        """Whether a word made only of look-alikes is a spoof too: the text is mostly Latin
        letters, or its look-alikes mostly sit in words mixed with Latin letters (a text
        with most letters swapped, where "арр" stands among "Thе" and "kеерs"). Genuine
        Cyrillic or Greek text rarely mixes scripts inside a word."""
        if not verdict:
            latin = len(_LATIN_LETTER_RE.findall(text))
            mixed = pure = 0
            for m in _WORD_RE.finditer(text):
                word = m.group()
                if _FOREIGN_FOLD_RE.search(word):
                    if _LATIN_LETTER_RE.search(word):
                        mixed += 1
                    else:
                        pure += 1
            spoofed = mixed >= 2 and mixed >= pure
            verdict.append(spoofed or latin > len(_SPOOF_SCRIPT_RE.findall(text)))
        return verdict[0]

    parts: list[str] = []
    pos = 0
    for m in _WORD_RE.finditer(text):
        word = m.group()
        if _FOREIGN_FOLD_RE.search(word) and _is_spoof(word, mostly_latin):
            parts += (text[pos : m.start()], word.translate(_FOREIGN_FOLD_TABLE))
            pos = m.end()
    parts.append(text[pos:])
    return "".join(parts)


# --- Base normalization ---------------------------------------------------------------------

_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_PLAIN_RE = re.compile(r"[^\t\n\r\x20-\x7e]+")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def _is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and (ch.isascii() or _script(ch) == "latin")


def _is_stable(ch: str) -> bool:
    """Whether ``ch`` comes out of normalization as itself whatever its neighbours."""
    if ch.isascii():
        return ch.isprintable() or ch in "\t\n\r"
    return (
        invisible_category(ch) is None
        and not _is_mark(ch)
        and unicodedata.is_normalized("NFKC", ch)
    )


def _cluster(chars: str) -> str:
    """NFKC of one base character and its marks; invisible characters dropped."""
    if len(chars) == 1:
        return "" if invisible_category(chars) else unicodedata.normalize("NFKC", chars)
    kept = "".join(c for c in chars if invisible_category(c) is None)
    out = unicodedata.normalize("NFKC", kept)
    if out and (_is_latin_letter(out[0]) or out[0] in _FOREIGN_FOLD):
        # Marks left over after composition on a Latin letter have no precomposed form in
        # the languages we serve: they are stacked diacritics ("Zalgo") hiding the word.
        out = "".join(c for c in out if not _is_mark(c))
    return out


def _prepare(text: str) -> tuple[str, Sequence[int], Sequence[int]]:
    """NFKC, invisibles dropped, homoglyphs folded; case kept. Returns text, starts, ends."""
    n = len(text)
    if text.isascii():
        if _ASCII_CONTROL_RE.search(text) is None:
            return text, range(n), range(1, n + 1)
    elif all(map(_is_stable, set(text))):  # accents and the like: nothing moves
        return fold_homoglyphs(text), range(n), range(1, n + 1)
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _NOT_PLAIN_RE.finditer(text):
        a, b = m.span()
        i = a - 1 if a > pos and _is_mark(text[a]) else a  # the mark belongs to the letter before
        if i > pos:
            parts.append(text[pos:i])
            starts.extend(range(pos, i))
            ends.extend(range(pos + 1, i + 1))
        while i < b:
            j = i + 1
            while j < b and _is_mark(text[j]):
                j += 1
            out = _cluster(text[i:j])
            if out:
                parts.append(out)
                starts.extend([i] * len(out))
                ends.extend([j] * len(out))
            i = j
        pos = b
    if pos < n:
        parts.append(text[pos:])
        starts.extend(range(pos, n))
        ends.extend(range(pos + 1, n + 1))
    return fold_homoglyphs("".join(parts)), starts, ends


def _casefold(
    text: str, starts: Sequence[int], ends: Sequence[int]
) -> tuple[str, Sequence[int], Sequence[int]]:
    if text.isascii():
        return text.lower(), starts, ends
    folded = text.casefold()
    if len(folded) == len(text):  # no character folded to several: offsets stand
        return folded, starts, ends
    parts: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    pos = 0
    for m in _NON_ASCII_RE.finditer(text):
        i = m.start()
        cf = m.group().casefold()
        if len(cf) == 1:
            continue
        parts += (text[pos:i].casefold(), cf)
        new_starts.extend(starts[pos:i])
        new_starts.extend([starts[i]] * len(cf))
        new_ends.extend(ends[pos:i])
        new_ends.extend([ends[i]] * len(cf))
        pos = i + 1
    parts.append(text[pos:].casefold())
    new_starts.extend(starts[pos:])
    new_ends.extend(ends[pos:])
    return "".join(parts), new_starts, new_ends


def _ends_field(starts: Sequence[int], ends: Sequence[int]) -> tuple[int, ...] | None:
    if isinstance(starts, range) and isinstance(ends, range) and ends.start == starts.start + 1:
        return None  # the identity mapping: every character stands for itself
    return tuple(ends)


# Several guards of one turn read the same text (pii and secrets its normalized form,
# deny_list and banned_phrases its casefolded one, the adversarial and toxicity guards its
# views): the last few results are kept, keyed on the text. Longer texts are not kept, so
# the cache stays small.
_MEMO_MAX_CHARS = 4096
_MEMO_SIZE = 16


def normalize(text: str, *, casefold: bool = True) -> Normalized:
    """NFKC, invisible characters and stacked diacritics dropped, homoglyphs folded to
    Latin, optionally casefolded."""
    if len(text) <= _MEMO_MAX_CHARS:
        return _normalize_memo(text, casefold)
    return _normalize(text, casefold)


def _normalize(text: str, casefold: bool) -> Normalized:
    out, starts, ends = _prepare(text)
    if casefold:
        out, starts, ends = _casefold(out, starts, ends)
    return Normalized(out, _as_tuple(starts), len(text), _ends_field(starts, ends))


_COUNTING = tuple(range(4096))


def _as_tuple(offsets: Sequence[int]) -> tuple[int, ...]:
    """``tuple(offsets)``. Most texts map one to one (``range(n)``): a slice of a prebuilt
    tuple shares its int objects instead of allocating ``n`` new ones."""
    counting = isinstance(offsets, range) and offsets.start == 0 and offsets.step == 1
    if counting and len(offsets) <= len(_COUNTING):
        return _COUNTING[: len(offsets)]
    return tuple(offsets)


_normalize_memo = functools.lru_cache(maxsize=_MEMO_SIZE)(_normalize)


# --- Transforms for views() ---------------------------------------------------------------
#
# Each transform reads a case-preserved normalized text and returns edits
# (start, end, replacement, aligned), sorted and disjoint, or None when it has nothing to
# add. An aligned edit replaces character for character; any other edit makes every
# replacement character stand for the whole replaced stretch.

_Edit = tuple[int, int, str, bool]

_ALNUM = r"[^\W_]"
_DESPACE_RE = re.compile(rf"(?<!{_ALNUM}){_ALNUM}(?:(?: {{2,}}|\t+|[ ._-]){_ALNUM}(?!{_ALNUM}))+")
_DESPACE_SEP_RE = re.compile(r" {2,}|\t+|[ ._-]")
# Two single characters in a row between separators: cheap to look for, needed for any run.
_DESPACE_HINT_RE = re.compile(rf"[ ._-]{_ALNUM}[ ._-]{_ALNUM}[ ._-]")
_DESPACE_MIN_LETTERS = 4


def _despace(text: str) -> list[_Edit] | None:
    """'i g n o r e  a l l' -> 'ignore all': single separators go, wider gaps become a space."""
    if _DESPACE_HINT_RE.search(text) is None:
        return None
    edits: list[_Edit] = []
    for m in _DESPACE_RE.finditer(text):
        run_edits: list[_Edit] = []
        longest = group = 1
        for sep in _DESPACE_SEP_RE.finditer(text, m.start(), m.end()):
            a, b = sep.span()
            if b - a == 1 and sep.group() != "\t":
                run_edits.append((a, b, "", False))
                group += 1
            else:
                run_edits.append((a, b, " ", False))
                group = 1
            longest = max(longest, group)
        if longest >= _DESPACE_MIN_LETTERS and any(c.isalpha() for c in m.group()):
            edits += run_edits
    return edits or None


_PRINTABLE_SHARE = 0.85


def _as_text(data: bytes) -> str | None:
    """Decoded bytes as text, or None when they are not mostly printable UTF-8."""
    s = data.decode("utf-8", "replace")
    if not s or (s.isprintable() and "\ufffd" not in s):
        return s or None
    # Printable characters but U+FFFD, and tabs and line breaks, counted in C.
    printable = sum(map(str.isprintable, s)) - s.count("\ufffd") + sum(s.count(c) for c in "\t\n\r")
    return s if printable >= _PRINTABLE_SHARE * len(s) else None


_B64_MIN = 16
_B64_RE = re.compile(rf"[A-Za-z0-9+/_-]{{{_B64_MIN},}}={{0,2}}")
_B64_PIECE_RE = re.compile(r"[A-Za-z0-9]{16,}")


def _b64decode(run: str) -> str | None:
    body = run.rstrip("=")
    url_safe = "-" in body or "_" in body
    if url_safe and ("+" in body or "/" in body):
        return None
    if len(body) % 4 == 1:
        body = body[:-1]
    body += "=" * (-len(body) % 4)
    try:
        data = base64.b64decode(body, altchars=b"-_" if url_safe else None, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _as_text(data)


_LEET = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "|": "i",
    "!": "i",
}  # fmt: skip
# A leet character next to a letter; written charset-first so the scan skips ahead fast.
_LEET_HINT = r"[013457@$|!](?:(?<=[^\W\d_].)|(?=[^\W\d_]))"
_LEET_HINT_RE = re.compile(_LEET_HINT)
_LEET_CHAR_RE = re.compile(r"[013457@$|!]")
_LEET_NOT_AT_RE = re.compile(r"[013457$|!]")  # "@" is no leetspeak in an e-mail address
_SPACE_RE = re.compile(r"\s")
_LEET_TOKEN_RE = re.compile(r"[\w@$|!]+")
# Tokens that mix letters and digits for honest reasons: ordinals and units ("4th",
# "10am", "5kg"), names with a number ("win10", "sha256"),
# hexadecimal identifiers (git hashes, UUIDs, MAC addresses), e-mail addresses.
_UNIT_RE = re.compile(
    r"\d+(?:st|nd|rd|th|am|pm|px|pt|em|kb|mb|gb|tb|kg|mg|ml|mm|cm|km|ms|hz|khz|mhz|ghz|fps"
    r"|mp|ft|yo|min|sec|hr|hrs|yr|yrs|mo|wk|mph|kph|kw|gen|k|m|b|g|d|h|x|p|s|v|w)",
    re.IGNORECASE,
)
_VERSIONED_RE = re.compile(r"[^\W\d_]+\d{2,}")
_HEX_ID_RE = re.compile(r"[\W_]*[0-9a-fA-F]+(?:[-:.][0-9a-fA-F]+)*[\W_]*")
_EMAIL_AT_RE = re.compile(r"@[^\W\d_][\w-]*\.[^\W\d_]")
_CHUNK_RE = re.compile(r"\S+")
_LEET_DIGITS = frozenset("013457")
# Dense leetspeak: in a text with a substitution inside a word somewhere, a chunk with at
# least _DENSE_LEET_MIN chunks of leetspeak-looking words ('h0w', '7h47') among it
# and its _DENSE_LEET_WINDOW neighbours on either side has every word of letters and leet
# characters folded, numbers of at most _DENSE_LEET_BARE_MAX digits included.
_DENSE_LEET_MIN = 3
_DENSE_LEET_WINDOW = 4
_DENSE_LEET_BARE_MAX = 5
_HEX_ID_MIN = 7  # hex digits in a chunk that reads as an identifier ('3f78685')
# Among leetspeak, a short word of hex digits ('4550c1473') is a word, not an identifier.
_DENSE_HEX_ID_MIN = 12


def _looks_like_hex_id(chunk: str, min_digits: int = _HEX_ID_MIN) -> bool:
    if not _HEX_ID_RE.fullmatch(chunk):
        return False
    digits = [c for c in chunk if c in "0123456789abcdefABCDEF"]
    return len(digits) >= min_digits and any(c.isdigit() for c in digits)


def _leet_token(token: str, at_is_leet: bool, dense: bool) -> tuple[list[int], bool]:
    """Positions in ``token`` to fold, and whether any sits inside the word ('h4ck').

    ``dense``: the token stands among leetspeak words, so a token made only of letters and
    leet characters is a word whatever it looks like ('7h47', 'r3', 'pl3453', '70').
    """
    letters = sum(c.isalpha() for c in token)
    if dense and all(c.isalpha() or c in _LEET for c in token):
        if letters == 0:
            if len(token) <= _DENSE_LEET_BARE_MAX and all(c.isdigit() for c in token):
                return list(range(len(token))), False
            return [], False
    elif letters < 2 or _UNIT_RE.fullmatch(token) or _VERSIONED_RE.fullmatch(token):
        return [], False
    if _looks_like_hex_id(token, _DENSE_HEX_ID_MIN if dense else _HEX_ID_MIN):
        return [], False

    def wordlike(c: str) -> bool:  # "" (the token's edge) is not
        return c.isalpha() or (c != "" and c in _LEET)

    marks = [k for k, c in enumerate(token) if c in _LEET and (c != "@" or at_is_leet)]
    chosen: list[int] = []
    interior = False
    for k in marks:
        c = token[k]
        before = token[k - 1] if k else ""
        after = token[k + 1] if k + 1 < len(token) else ""
        inside = wordlike(before) and wordlike(after) and (before.isalpha() or after.isalpha())
        if c == "!":  # "Hello!!" is punctuation, "h!dden" is not
            ok = after.isalpha()
            inside = ok and wordlike(before)
        elif c.isdigit():
            ok = True
        else:  # '@', '$', '|': a bare "$HOME" or "@name" is no leetspeak on its own
            ok = inside or (len(marks) > 1 and (before.isalpha() or after.isalpha()))
        if ok:
            chosen.append(k)
            interior = interior or inside
    return chosen, interior


def _leet_chunk(chunk: str, base: int, dense: bool) -> tuple[list[_Edit], bool, bool]:
    """Edits for one whitespace-delimited chunk starting at ``base``; whether one sits inside
    a word; whether the chunk has a word of letters and leet characters with a digit in it
    ('h0w', '7h47') that is no unit or version ('4th', 'win10')."""
    if "://" in chunk or _looks_like_hex_id(chunk, _DENSE_HEX_ID_MIN if dense else _HEX_ID_MIN):
        return [], False, False
    at_is_leet = _EMAIL_AT_RE.search(chunk) is None
    if not at_is_leet and _LEET_NOT_AT_RE.search(chunk) is None:
        return [], False, False  # an e-mail address and no other leet character: no edit
    # A base64 payload is full of digits between letters; the base64 view decodes it.
    encoded = (
        [m.span() for m in _B64_RE.finditer(chunk) if _b64decode(m.group())]
        if len(chunk) >= _B64_MIN
        else []
    )
    edits: list[_Edit] = []
    strong = leetlike = False
    j = 0
    for tok in _LEET_TOKEN_RE.finditer(chunk):
        while j < len(encoded) and encoded[j][1] <= tok.start():
            j += 1
        if j < len(encoded) and encoded[j][0] < tok.end():
            continue
        token = tok.group()
        chosen, interior = _leet_token(token, at_is_leet, dense)
        strong = strong or interior
        leetlike = leetlike or (
            not token.isalpha()
            and any(c in _LEET_DIGITS for c in token)
            and any(c.isalpha() for c in token)
            and all(c.isalpha() or c in _LEET for c in token)
            and not _UNIT_RE.fullmatch(token)  # '4th', 'win10': honest where they stand
            and not _VERSIONED_RE.fullmatch(token)
        )
        start = base + tok.start()
        edits += [(start + k, start + k + 1, _LEET[token[k]], True) for k in chosen]
    return edits, strong, leetlike


def _leet_chunks(text: str) -> list[tuple[int, str]]:
    """The whitespace-delimited chunks holding a leet hint, with where each starts: found
    from the hints, which the scan reaches in C, rather than by trying every position."""
    chunks: list[tuple[int, str]] = []
    end = 0
    n = len(text)
    backwards = ""  # the text reversed, to find how far a chunk reaches back in C
    for hint in _LEET_HINT_RE.finditer(text):
        at = hint.start()
        if at < end:
            continue  # in the chunk just taken
        backwards = backwards or text[::-1]
        space = _SPACE_RE.search(backwards, n - at, n - end)
        start = n - space.start() if space else end
        space = _SPACE_RE.search(text, at)
        end = space.start() if space else n
        chunks.append((start, text[start:end]))
    return chunks


def _leet(text: str) -> list[_Edit] | None:
    """'1gn0r3 pr3v10u5' -> 'ignore previous', only where digits or symbols sit in words.

    A view appears only when some token has a substitution inside it ('h4ck'); then
    substitutions at word edges ('1gnore') are folded as well. Where several words nearby
    are leetspeak, every word of letters and leet characters around them is folded, short
    numbers included: in "h0w 70 m4k3 4 b0mb", "70" is "to" and "4" is "a".
    """
    if _LEET_HINT_RE.search(text) is None:
        return None
    by_chunk: dict[int, list[_Edit]] = {}
    leetlike: set[int] = set()
    interior: set[int] = set()
    for start, chunk in _leet_chunks(text):
        edits, inside, like = _leet_chunk(chunk, start, dense=False)
        if edits:
            by_chunk[start] = edits
        if inside:
            interior.add(start)
        if like:
            leetlike.add(start)
    if not interior:
        return None
    width = 2 * _DENSE_LEET_WINDOW + 1  # at the text's ends the window shifts inwards
    firsts = sorted(leetlike)
    n = _DENSE_LEET_MIN - 1
    # Cheap test first: do _DENSE_LEET_MIN leetspeak chunks fit in one window anywhere?
    if any(len(text[a:b].split()) < width for a, b in zip(firsts, firsts[n:], strict=False)):
        chunks = [m.span() for m in _CHUNK_RE.finditer(text)]
        seen = [0]  # seen[i]: how many of the first i chunks look like leetspeak
        for a, _ in chunks:
            seen.append(seen[-1] + (a in leetlike))
        for i, (a, b) in enumerate(chunks):
            lo = max(min(i - _DENSE_LEET_WINDOW, len(chunks) - width), 0)
            dense = seen[min(lo + width, len(chunks))] - seen[lo] >= _DENSE_LEET_MIN
            if dense and _LEET_CHAR_RE.search(text, a, b):
                edits, _, _ = _leet_chunk(text[a:b], a, dense=True)
                if edits:
                    by_chunk[a] = edits
    return [edit for a in sorted(by_chunk) for edit in by_chunk[a]]


def _base64(text: str) -> list[_Edit] | None:
    """Runs of 16+ base64 characters (standard or URL-safe, padding optional) that decode
    to printable text."""
    edits: list[_Edit] = []
    for m in _B64_RE.finditer(text):
        decoded = _b64decode(m.group())
        if decoded is not None:
            edits.append((m.start(), m.end(), decoded, False))
            continue
        if m.group().rstrip("=").isalnum():
            continue
        # A path or slug around the payload ("/v1/aWdub3Jl...") shifts the 4-character
        # grouping; try the stretches between separators on their own.
        for piece in _B64_PIECE_RE.finditer(text, m.start(), m.end()):
            decoded = _b64decode(piece.group())
            if decoded is not None:
                edits.append((piece.start(), piece.end(), decoded, False))
    return edits or None


_HEX_ESCAPED_RE = re.compile(r"(?:\\x[0-9A-Fa-f]{2}){8,}")
_HEX_PREFIXED_RE = re.compile(
    r"0[xX][0-9A-Fa-f]{2}(?:[ ,;]*0[xX][0-9A-Fa-f]{2}){7,}|0[xX][0-9A-Fa-f]{16,}"
)
_HEX_BARE_RE = re.compile(r"[0-9A-Fa-f]{2}(?:[ :]?[0-9A-Fa-f]{2}){7,}[0-9A-Fa-f]?")
_HEX_NOISE_RE = re.compile(r"\\x|0[xX]|[^0-9A-Fa-f]")


# _HEX_BARE_RE without its optional last digit, for RE2: one pass of its DFA tells whether
# the pattern can match at all, where ``re`` would try it at every hex letter of the text.
_HEX_BARE_GATE = re2.compile(r"[0-9A-Fa-f]{2}(?:[ :]?[0-9A-Fa-f]{2}){7,}")


def _hex_runs(text: str) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    if "\\x" in text:
        runs += (m.span() for m in _HEX_ESCAPED_RE.finditer(text))
    if "0x" in text or "0X" in text:
        runs += (m.span() for m in _HEX_PREFIXED_RE.finditer(text))
    try:
        bare = _HEX_BARE_GATE.search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate: RE2 reads UTF-8 only
        bare = True
    for m in _HEX_BARE_RE.finditer(text) if bare else ():
        a, b = m.span()
        # Standing alone, not the tail of a word, a base64 run or a 0x-prefixed number.
        if (a == 0 or not text[a - 1].isalnum()) and (b == len(text) or not text[b].isalnum()):
            runs.append((a, b))
    runs.sort()
    return [r for i, r in enumerate(runs) if i == 0 or r[0] >= runs[i - 1][1]]


def _hex(text: str) -> list[_Edit] | None:
    """16+ hex digits, bare, grouped ('6967 6e6f') or as \\x69 / 0x69 bytes, that decode to
    text."""
    edits: list[_Edit] = []
    for a, b in _hex_runs(text):
        digits = _HEX_NOISE_RE.sub("", text[a:b])
        decoded = _as_text(bytes.fromhex(digits[: len(digits) // 2 * 2]))
        if decoded is not None:
            edits.append((a, b, decoded, False))
    return edits or None


_PERCENT_RE = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def _utf8_length(ch: str) -> int:
    cp = ord(ch)
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def _url(text: str) -> list[_Edit] | None:
    """Percent-escapes; each decoded character stands for its own escapes."""
    if "%" not in text:
        return None
    edits: list[_Edit] = []
    for m in _PERCENT_RE.finditer(text):
        data = bytes.fromhex(m.group().replace("%", ""))
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            edits.append((m.start(), m.end(), data.decode("utf-8", "replace"), False))
            continue
        pos = m.start()
        for ch in decoded:
            width = 3 * _utf8_length(ch)
            edits.append((pos, pos + width, ch, False))
            pos += width
    return edits or None


_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,8};?|#[xX][0-9A-Fa-f]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};)")


def _html(text: str) -> list[_Edit] | None:
    """HTML character references: &lt; &#105; &#x69;."""
    if "&" not in text:
        return None
    edits: list[_Edit] = []
    for m in _ENTITY_RE.finditer(text):
        decoded = html.unescape(m.group())
        if decoded != m.group():
            edits.append((m.start(), m.end(), decoded, False))
    return edits or None


# Frequent English words and the vocabulary of prompt injection: rot13 text turns into
# these when decoded, ordinary text does not.
_COMMON_TEXT = """
    a about above act admin administrator after again against all also always am an and
    answer any anything are as ask assistant at back be because been before begin below
    between both but by bypass call can confidential configuration console could data
    day delete developer did disable disabled display disregard do does doing done down
    each earlier else end every everything explain filter first follow following for
    forget from get give go good guidelines had has have he her here hidden him his how
    i if ignore in information initialization instead instruction instructions into is
    it its jailbreak just key know last let like limits log make me message mode more
    most must my never new no not nothing now of off on once one only or other our out
    output over override password people please policy previous print prior private
    prompt rather read really repeat reply restriction restrictions reveal role rule
    rules safety said say secret see send should show so some string system take tell
    text than that the their them then there these they thing things think this those
    through time to token too tool two under unrestricted until up us use user very want
    was way we well were what when where which while who why will with without word
    words would write year yes you your yours
"""
_COMMON_WORDS = frozenset(_COMMON_TEXT.split())
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)
# Words whose rot13 is common but which are not common themselves ("gur" -> "the").
_ROT13_HINTS = frozenset(
    r for w in _COMMON_WORDS if len(w) > 1 and (r := w.translate(_ROT13)) not in _COMMON_WORDS
) - frozenset(
    # ... except those that are words in English or a neighbouring language as they stand
    # ("bar", "vs", German "ab", Italian "va"): on their own they prove nothing.
    "ab ba bar na nz ur va vs".split()
)
# Common words whose rot13 is not: plain English, never the output of rot13 on English.
_PLAIN_ONLY = frozenset(w for w in _COMMON_WORDS if w.translate(_ROT13) not in _COMMON_WORDS)
_LETTERS_RE = re.compile(r"[^\W\d_]+")
# A text with at least twice as many hint words as plain English words, and this many of
# them or a quarter of its words, is rot13 from end to end.
_ROT13_WHOLE_MIN = 3
_NOT_LETTER_TO_SPACE = str.maketrans(dict.fromkeys(string.punctuation + string.digits, " "))


def _rot13(text: str) -> list[_Edit] | None:
    """The whole text when it reads as English only after rot13; otherwise the stretches of
    words that do, among plain text ("Please answer this: jung vf gur cnffjbeq?")."""
    lowered = text.lower()
    if lowered.isascii():  # translate is fast only on ASCII
        words: list[str] = lowered.translate(_NOT_LETTER_TO_SPACE).split()
    else:  # a word with an accent is no rot13 of English, and no fragment of it is either
        words = [w for w in _LETTERS_RE.findall(lowered) if w.isascii()]
    if len(_ROT13_HINTS.intersection(words)) < 2:
        return None
    hints = sum(w in _ROT13_HINTS for w in words)
    if hints >= 2 * sum(w in _PLAIN_ONLY for w in words) and (
        hints >= _ROT13_WHOLE_MIN or 4 * hints >= len(words)
    ):
        return [(0, len(text), text.translate(_ROT13), True)]
    edits: list[_Edit] = []
    run: list[tuple[int, int, bool]] = []  # (start, end, is a hint) of words in this stretch

    def close() -> None:
        hits = sum(1 for *_, hint in run if hint)
        if hits >= 2 and 3 * hits >= len(run):
            a, b = run[0][0], run[-1][1]
            edits.append((a, b, text[a:b].translate(_ROT13), True))
        run.clear()

    for m in _LETTERS_RE.finditer(text):
        word = m.group().lower()
        if word in _PLAIN_ONLY:
            close()  # plain English ends a rot13 stretch
        else:
            run.append((m.start(), m.end(), word in _ROT13_HINTS))
    close()
    return edits or None


_TRANSFORMS: tuple[tuple[str, Callable[[str], list[_Edit] | None]], ...] = (
    ("despace", _despace),
    ("leet", _leet),
    ("hex", _hex),  # before base64: where both decode a run, hex is the likelier reading
    ("base64", _base64),
    ("url", _url),
    ("html", _html),
    ("rot13", _rot13),
)


@dataclass(frozen=True, slots=True)
class _Layer:
    """A view before casefolding: decoders need the case (base64 does)."""

    text: str
    starts: Sequence[int]
    ends: Sequence[int]
    transforms: tuple[str, ...]

    def view(self, limit: int) -> View:
        text, starts, ends = _casefold(self.text, self.starts, self.ends)
        if len(text) > limit:
            text, starts, ends = text[:limit], starts[:limit], ends[:limit]
        return View(text, _as_tuple(starts), self.transforms, _ends_field(starts, ends))

    def derive(self, edits: list[_Edit], name: str, limit: int) -> _Layer:
        text, src_starts, src_ends = self.text, self.starts, self.ends
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        for a, b, replacement, aligned in edits:
            if a > pos:
                parts.append(text[pos:a])
                starts.extend(src_starts[pos:a])
                ends.extend(src_ends[pos:a])
            if replacement:
                parts.append(replacement)
                if aligned:
                    starts.extend(src_starts[a:b])
                    ends.extend(src_ends[a:b])
                else:
                    starts.extend([src_starts[a]] * len(replacement))
                    ends.extend([src_ends[b - 1]] * len(replacement))
            pos = b
        parts.append(text[pos:])
        starts.extend(src_starts[pos:])
        ends.extend(src_ends[pos:])
        # Decoded content gets the same normalization as the text around it.
        out, inner_starts, inner_ends = _prepare("".join(parts)[:limit])
        if not isinstance(inner_starts, range):
            starts = [starts[k] for k in inner_starts]
            ends = [ends[k - 1] for k in inner_ends]
        return _Layer(out[:limit], starts[:limit], ends[:limit], (*self.transforms, name))


def _side_by_side(edit_lists: list[list[_Edit]], length: int) -> list[_Edit]:
    """All edits of several transforms at once; where two overlap, the earlier one wins."""
    taken = bytearray(length)
    merged: list[_Edit] = []
    for edits in edit_lists:
        for edit in edits:
            a, b = edit[0], edit[1]
            if taken.find(1, a, b) == -1:
                taken[a:b] = b"\x01" * (b - a)
                merged.append(edit)
    merged.sort(key=lambda e: e[0])
    return merged


def views(
    text: str, *, max_depth: int = 2, max_views: int = 16, max_expansion: int = 4
) -> list[View]:
    """The readings of ``text`` that detectors should scan.

    The first view is always ``normalize(text)`` (transforms ``("normalize",)``). Then come
    views that differ from every earlier one, breadth first: one per transform that finds
    something (``despace``, ``leet``, ``hex``, ``base64``, ``url``, ``html``, ``rot13``) and,
    when several do, one with all of them applied side by side (a step named like
    ``"leet+base64"``), so an attack split across encodings still reads whole. Each view is
    transformed again, up to ``max_depth`` steps, only where that uncovers something its
    parent did not have: base64 inside a URL-encoded string is
    ``("normalize", "url", "base64")``.

    A decoding view is the whole text with each encoded run replaced by its normalized
    decoding, so a detector sees the payload in context. At most ``max_views`` views, none
    longer than ``max_expansion * len(text) + 64`` characters; never raises.
    """
    if len(text) <= _MEMO_MAX_CHARS:
        return list(_views_memo(text, max_depth, max_views, max_expansion))
    return _views(text, max_depth, max_views, max_expansion)


def _views(text: str, max_depth: int, max_views: int, max_expansion: int) -> list[View]:
    limit = max(max_expansion, 1) * len(text) + 64
    raw, starts, ends = _prepare(text)
    base = _Layer(raw[:limit], starts[:limit], ends[:limit], ("normalize",))
    norm = normalize(text)  # often computed already for another guard of the turn
    if len(raw) <= limit and len(norm.text) <= limit:  # nothing cut: the same reading
        found = [View(norm.text, norm.offsets, ("normalize",), norm.ends)]
    else:
        found = [base.view(limit)]
    seen = {found[0].text}

    def keep(layer: _Layer) -> bool:
        view = layer.view(limit)
        if len(found) >= max_views or view.text in seen:
            return False
        seen.add(view.text)
        found.append(view)
        return True

    # Each entry carries what every transform found in the entry's parent.
    queue: deque[tuple[_Layer, int, dict[str, Counter[tuple[str, str]]]]] = deque([(base, 0, {})])
    while queue and len(found) < max_views:
        layer, depth, in_parent = queue.popleft()
        if depth >= max_depth:
            continue
        found_here: dict[str, Counter[tuple[str, str]]] = {}
        fresh: list[tuple[str, list[_Edit]]] = []
        for name, transform in _TRANSFORMS:
            edits = transform(layer.text)
            if not edits:
                continue
            found_here[name] = Counter((layer.text[a:b], r) for a, b, r, _ in edits)
            if found_here[name] - in_parent.get(name, Counter()):
                fresh.append((name, edits))
        candidates = [layer.derive(edits, name, limit) for name, edits in fresh]
        if len(fresh) > 1:
            merged = _side_by_side([edits for _, edits in fresh], len(layer.text))
            candidates.append(layer.derive(merged, "+".join(n for n, _ in fresh), limit))
        queue.extend((child, depth + 1, found_here) for child in candidates if keep(child))
    return found


@functools.lru_cache(maxsize=4)  # a turn's guards share one text; views can be large
def _views_memo(text: str, max_depth: int, max_views: int, max_expansion: int) -> tuple[View, ...]:
    return tuple(_views(text, max_depth, max_views, max_expansion))
