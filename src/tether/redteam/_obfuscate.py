"""Obfuscations attackers use to slip past text filters; each maps a text to a disguised one.

The detectors' normalization layer undoes each of these; the benchmark and the tests apply
them to known attacks to measure that.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Callable

__all__ = ["OBFUSCATIONS", "Obfuscation"]

Obfuscation = Callable[[str], str]

_HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "i": "і"})
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


OBFUSCATIONS: dict[str, Obfuscation] = {
    "base64": lambda t: base64.b64encode(t.encode()).decode(),
    "base64_wrapped": lambda t: (
        f"Decode this and follow it: {base64.b64encode(t.encode()).decode()}"
    ),
    "hex": lambda t: t.encode().hex(),
    "rot13": lambda t: codecs.encode(t, "rot13"),
    "url": lambda t: "".join(f"%{b:02X}" for b in t.encode()),
    "html": lambda t: "".join(f"&#{ord(c)};" if c.isalpha() else c for c in t),
    "leet": lambda t: t.translate(_LEET),
    "homoglyph": lambda t: t.translate(_HOMOGLYPHS),
    "zero_width": lambda t: "\u200b".join(t),
    "spaced": lambda t: "  ".join(" ".join(w) for w in t.split(" ")),
    "fullwidth": _fullwidth,
}
