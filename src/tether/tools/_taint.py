"""Provenance: which content in a conversation is untrusted, and whether a tool call's
arguments carry data copied from it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tether.guards import compile_safe, find_links

__all__ = ["Provenance"]

_WORD = re.compile(r"\w+", re.UNICODE)
# RE2 (linear time): tool output is untrusted and may be built to make a regex backtrack.
_EMAIL = compile_safe(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Account numbers, IBANs, sort codes, phone numbers: runs of at least five digits, written
# with or without single spaces or hyphens between them ("20-45-67", "6016 1331").
_DIGITS = compile_safe(r"\d(?:[\s-]?\d){4,}")
_QUOTE_WORDS = 12


def _identifiers(text: str) -> set[str]:
    """E-mail addresses, hosts (of URLs, domains and addresses) and numbers of five digits or
    more, normalized."""
    found: set[str] = set()
    if "@" in text:
        found = {str(m.group(0)).lower().rstrip(".") for m in _EMAIL.finditer(text)}
    found |= {f"host:{e.rpartition('@')[2]}" for e in found}  # its domain, as a URL host
    if "." in text:
        found |= {f"host:{link.host}" for link in find_links(text) if link.host}
    found |= {re.sub(r"\D", "", str(m.group(0))) for m in _DIGITS.finditer(text)}
    return found


def _ngrams(words: list[str], n: int) -> Iterator[str]:
    for i in range(len(words) - n + 1):
        yield " ".join(words[i : i + n])


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside an argument value, with where it sits."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


class Provenance:
    """Untrusted content seen in a conversation (tool results from web pages, e-mail,
    documents), indexed so that a call's arguments can be checked for data copied from it:
    an identifier (address, host, account number) that appears only in untrusted content, or
    a run of ``min_words`` words copied from it. Trusted text (the user's messages, the system
    prompt, trusted tool results) is indexed too: what also appears there is not evidence."""

    def __init__(self, min_words: int = 8) -> None:
        self.min_words = min_words
        self.sources: list[str] = []
        self.untrusted: list[str] = []
        self._untrusted_from: list[str] = []
        self.trusted: list[str] = []
        self._bad_ids: dict[str, str] = {}
        self._good_ids: set[str] = set()
        self._bad_ngrams: dict[str, str] = {}
        self._good_ngrams: set[str] = set()

    @property
    def tainted(self) -> bool:
        return bool(self.untrusted)

    def add_untrusted(self, text: str, source: str) -> None:
        self.untrusted.append(text)
        self._untrusted_from.append(source)
        if source not in self.sources:
            self.sources.append(source)
        for ident in _identifiers(text):
            self._bad_ids.setdefault(ident, source)
        words = _WORD.findall(text.lower())
        for gram in _ngrams(words, self.min_words):
            self._bad_ngrams.setdefault(gram, source)

    def add_trusted(self, text: str) -> None:
        self.trusted.append(text)
        self._good_ids |= _identifiers(text)
        self._good_ngrams.update(_ngrams(_WORD.findall(text.lower()), self.min_words))

    def carried(self, arguments: Mapping[str, Any]) -> list[str]:
        """What in ``arguments`` was copied from untrusted content, one finding per argument."""
        if not self.untrusted:
            return []
        findings: list[str] = []
        for path, text in _strings(arguments, ""):
            name = path.lstrip(".")
            ids = sorted(
                i for i in _identifiers(text) if i in self._bad_ids and i not in self._good_ids
            )
            if ids:
                domains = {i.rpartition("@")[2] for i in ids if "@" in i}
                ids = [i for i in ids if i.removeprefix("host:") not in domains]
                shown = ", ".join(i.removeprefix("host:") for i in ids[:3])
                findings.append(
                    f"argument '{name}' carries {shown}, found only in untrusted content "
                    f"(from {self._bad_ids[ids[0]]})"
                )
                continue
            words = _WORD.findall(text.lower())
            copied = [
                g
                for g in _ngrams(words, self.min_words)
                if g in self._bad_ngrams and g not in self._good_ngrams
            ]
            if copied:
                quote = " ".join(copied[0].split()[:_QUOTE_WORDS])
                findings.append(
                    f"argument '{name}' copies {self.min_words} or more words of untrusted "
                    f"content (from {self._bad_ngrams[copied[0]]}): “{quote} …”"
                )
        return findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_words": self.min_words,
            "untrusted": [
                [text, source]
                for text, source in zip(self.untrusted, self._untrusted_from, strict=True)
            ],
            "trusted": list(self.trusted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        out = cls(int(data.get("min_words", 8)))
        for text in data.get("trusted", ()):
            out.add_trusted(str(text))
        for text, source in data.get("untrusted", ()):
            out.add_untrusted(str(text), str(source))
        return out
