"""Offset-preserving text normalization shared by text guards.

Guards match against a normalized form (NFKC, invisible characters removed, casefolded) so
that full-width letters or a zero-width space inside a word do not slip past them, and map
what they find back to offsets in the user's original text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["INVISIBLE_CATEGORIES", "Normalized", "invisible_category", "normalize"]

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


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized text and, for each of its characters, the index in the original."""

    text: str
    offsets: tuple[int, ...]
    original_length: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the normalized text back to the original text."""
        if start >= len(self.offsets):
            return self.original_length, self.original_length
        first = self.offsets[start]
        last = self.offsets[end - 1] + 1 if end > start else first
        return first, last


def normalize(text: str, *, casefold: bool = True) -> Normalized:
    """NFKC per character, invisible characters dropped, optionally casefolded."""
    if text.isascii() and not any(invisible_category(c) for c in text if not c.isprintable()):
        folded = text.lower() if casefold else text
        return Normalized(folded, tuple(range(len(text))), len(text))
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if invisible_category(ch) is not None:
            continue
        out = unicodedata.normalize("NFKC", ch)
        if casefold:
            out = out.casefold()
        chars.append(out)
        offsets.extend([i] * len(out))
    return Normalized("".join(chars), tuple(offsets), len(text))
