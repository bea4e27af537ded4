"""Reversible pseudonymization: a per-conversation vault of real values and placeholders.

The model sees ``<PERSON_1>``, ``<EMAIL_1>``; the user sees their own data restored. The same
value gets the same placeholder on every turn of a conversation (``alice@x.com`` and
``Alice@X.com`` are one value), so the model can keep track of who is who without seeing
anyone's data.

How the pipeline uses it (``pipeline/_guardrails.py``), per turn:

1. ``vault = store.get(conversation_id)`` (a :class:`VaultStore` held by ``Guardrails``; a
   turn without a conversation id gets a fresh vault that lives for that turn only).
2. Put it in the guard context of both stages: ``GuardContext(..., metadata={"vault": vault,
   ...})``. A ``pii`` or ``secrets`` guard with ``mode: pseudonymize`` then returns spans
   whose ``replacement`` is the placeholder (registering new values at the input stage), so
   the existing ``apply_spans`` redaction is what pseudonymizes the user's message. At the
   output stage only values the vault already holds get their placeholder back; personal
   data the model produced on its own (from a document, say) is redacted as ``[LABEL]``.
   Without a vault in the context the guard redacts and says so in its reason.
3. The conversation history the client sends back holds real values (the user saw restored
   text): conceal it before it reaches the model, ``vault.conceal(m["content"])`` for every
   earlier user and assistant message. It replaces every value the vault already knows.
4. After the output guards (and any redaction), ``vault.restore(text)`` for what the user
   sees; keep the placeholder text for the event log, so logs hold no personal data. For a
   stream, ``restorer = vault.restorer()``, then ``restorer.feed(chunk)`` per chunk and
   ``restorer.flush()`` at the end: a placeholder split across chunks is held back until
   it is complete.

``restore`` is lenient about what a model does to a placeholder: case (``<person_1>``),
spaces and separators (``< PERSON 1 >``, ``<PERSON-1>``), square brackets (``[PERSON_1]``),
HTML escaping (``&lt;PERSON_1&gt;``) and dropped brackets (``PERSON_1``, exact case only).
Placeholders the vault never issued are left as they are.

Memory is bounded: a vault holds at most ``max_entries`` values (after that new values are
redacted, not pseudonymized) and a store at most ``max_conversations`` vaults, evicting the
least recently used and any idle for longer than ``ttl_s``. Values are kept in memory only,
never logged or persisted.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PseudonymVault", "StreamRestorer", "VaultStore"]

_MAX_VALUE_CHARS = 8192
_MAX_SURFACES = 8
_MIN_NEEDLE = 3
# What a model may write for <LABEL_N>: bounded repetitions only, so matching is linear.
_PLACEHOLDER_RE = re.compile(
    r"(?:<|＜|‹|«|&lt;|\[)[ \t]{0,3}([A-Za-z]{1,20}(?:[_ \-][A-Za-z]{1,20}){0,3})"
    r"[ \t]{0,3}[_\- ]?[ \t]{0,2}(\d{1,6})[ \t]{0,3}(?:>|＞|›|»|&gt;|\])"
)
_BARE_RE = re.compile(r"(?<![\w<\[])([A-Z]{2,20}(?:_[A-Z]{2,20}){0,3})_(\d{1,6})(?![\w>\]])")
# A stream holds back a trailing stretch that may still become a placeholder.
_HOLD_BACK = 48
_OPENERS = ("<", "＜", "‹", "«", "&", "[")


class _Found(Protocol):
    """What :meth:`PseudonymVault.pseudonymize` needs of a detector's match."""

    @property
    def entity(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def value(self) -> str: ...


@dataclass(slots=True)
class _Entry:
    placeholder: str
    entity: str
    shown: str  # the first form the user wrote: what restore gives back
    surfaces: list[str]


def _label(entity: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", entity.upper()).strip("_") or "VALUE"


def _norm_label(raw: str) -> str:
    return re.sub(r"[ \-_]{1,8}", "_", raw.strip().upper())


class PseudonymVault:
    """One conversation's mapping between real values and placeholders; thread-safe."""

    def __init__(self, *, max_entries: int = 1000) -> None:
        self.max_entries = max_entries
        self._lock = threading.RLock()
        self._by_key: dict[tuple[str, str], _Entry] = {}
        self._by_placeholder: dict[str, _Entry] = {}
        self._counters: dict[str, int] = {}
        # needle -> placeholder; None marks an alias two people share (never used).
        self._aliases: dict[tuple[str, str], str | None] = {}
        self._needles: list[tuple[str, bool, str, str]] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

    def placeholder(
        self, entity: str, text: str, value: str | None = None, *, aliases: Iterable[str] = ()
    ) -> str | None:
        """The placeholder for a value, creating one if needed; None when the vault is full
        or the value is too long to keep.

        ``value`` is the canonical form that decides sameness (default: ``text`` casefolded
        and whitespace-collapsed); ``aliases`` are shorter forms that refer to the same
        value (a person's first or last name), used when they are not ambiguous.
        """
        key = (_label(entity), value if value is not None else _canonical(text))
        with self._lock:
            entry = self._by_key.get(key) or self._alias_entry(key)
            if entry is None:
                if len(self._by_key) >= self.max_entries or len(text) > _MAX_VALUE_CHARS:
                    return None
                label = key[0]
                self._counters[label] = self._counters.get(label, 0) + 1
                entry = _Entry(f"<{label}_{self._counters[label]}>", label, text, [])
                self._by_key[key] = entry
                self._by_placeholder[entry.placeholder] = entry
                for alias in aliases:
                    akey = (label, _canonical(alias))
                    if akey in self._by_key:
                        continue
                    if akey in self._aliases and self._aliases[akey] != entry.placeholder:
                        self._aliases[akey] = None  # two values share it: ambiguous
                    else:
                        self._aliases[akey] = entry.placeholder
            if text not in entry.surfaces and len(entry.surfaces) < _MAX_SURFACES:
                entry.surfaces.append(text)
                self._needles = None
            return entry.placeholder

    def lookup(self, entity: str, value: str) -> str | None:
        """The placeholder already issued for a value (by canonical value or alias), if any."""
        key = (_label(entity), value)
        with self._lock:
            entry = self._by_key.get(key) or self._alias_entry(key)
            return entry.placeholder if entry is not None else None

    def value(self, placeholder: str) -> str | None:
        """The real value behind a placeholder (as the user first wrote it)."""
        with self._lock:
            entry = self._by_placeholder.get(placeholder)
            return entry.shown if entry is not None else None

    def items(self) -> list[tuple[str, str]]:
        """(placeholder, value) pairs, in the order they were issued."""
        with self._lock:
            return [(e.placeholder, e.shown) for e in self._by_key.values()]

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._by_placeholder.clear()
            self._counters.clear()
            self._aliases.clear()
            self._needles = None

    def _alias_entry(self, key: tuple[str, str]) -> _Entry | None:
        placeholder = self._aliases.get(key)
        return self._by_placeholder.get(placeholder) if placeholder is not None else None

    # --- applying ---------------------------------------------------------------------

    def known_spans(self, text: str) -> list[tuple[int, int, str, str]]:
        """Where ``text`` mentions values the vault already knows: (start, end, entity,
        placeholder), left to right, longest first where two overlap. Person names and
        their aliases match with their case as written; other values ignore case."""
        needles = self._needle_list()
        if not needles or not text:
            return []
        folded = text.casefold()
        if len(folded) != len(text):  # a character folded to several: keep offsets honest
            folded = text.lower() if len(text.lower()) == len(text) else text
        found: list[tuple[int, int, str, str]] = []
        for needle, exact, entity, placeholder in needles:
            haystack = text if exact else folded
            pos = haystack.find(needle)
            while pos != -1:
                end = pos + len(needle)
                if _word_edge(text, pos - 1) and _word_edge(text, end):
                    found.append((pos, end, entity, placeholder))
                pos = haystack.find(needle, end)
        found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
        kept: list[tuple[int, int, str, str]] = []
        for item in found:
            if not kept or item[0] >= kept[-1][1]:
                kept.append(item)
        return kept

    def _needle_list(self) -> list[tuple[str, bool, str, str]]:
        with self._lock:
            if self._needles is None:
                needles: dict[tuple[str, bool], tuple[str, str]] = {}
                for entry in self._by_key.values():
                    exact = entry.entity == "PERSON"
                    for surface in entry.surfaces:
                        if len(surface) >= _MIN_NEEDLE:
                            needle = surface if exact else surface.casefold()
                            needles[(needle, exact)] = (entry.entity, entry.placeholder)
                for (label, alias), placeholder in self._aliases.items():
                    target = self._by_placeholder.get(placeholder) if placeholder else None
                    if target is None:
                        continue
                    for surface in target.surfaces:
                        for word in surface.split():
                            if _canonical(word) == alias and len(word) >= _MIN_NEEDLE:
                                needles.setdefault((word, True), (label, target.placeholder))
                self._needles = sorted(
                    ((n, exact, e, p) for (n, exact), (e, p) in needles.items()),
                    key=lambda item: -len(item[0]),
                )
            return self._needles

    def pseudonymize(self, text: str, matches: Sequence[_Found]) -> str:
        """``text`` with each match, and every value the vault already knows, replaced by
        its placeholder (a value that cannot be vaulted becomes ``[LABEL]``)."""
        edits: list[tuple[int, int, str]] = []
        for m in matches:
            placeholder = self.placeholder(m.entity, m.text, m.value)
            edits.append((m.start, m.end, placeholder or f"[{_label(m.entity)}]"))
        edits += [(s, e, p) for s, e, _, p in self.known_spans(text)]
        return _apply(text, edits)

    def conceal(self, text: str) -> str:
        """``text`` with every value the vault knows replaced by its placeholder (for the
        history of the conversation, which the client sends back restored)."""
        return _apply(text, [(s, e, p) for s, e, _, p in self.known_spans(text)])

    def restore(self, text: str) -> str:
        """``text`` with the placeholders this vault issued replaced by the real values."""
        if not text or not self._by_placeholder:
            return text

        def bracketed(m: re.Match[str]) -> str:
            entry = self._by_placeholder.get(f"<{_norm_label(m.group(1))}_{int(m.group(2))}>")
            return entry.shown if entry is not None else m.group(0)

        def bare(m: re.Match[str]) -> str:
            entry = self._by_placeholder.get(f"<{m.group(1)}_{int(m.group(2))}>")
            return entry.shown if entry is not None else m.group(0)

        with self._lock:
            text = _PLACEHOLDER_RE.sub(bracketed, text)
            return _BARE_RE.sub(bare, text)

    def restorer(self) -> StreamRestorer:
        """An incremental :meth:`restore` for streamed output."""
        return StreamRestorer(self)


class StreamRestorer:
    """Restores placeholders in a stream of chunks, holding back a trailing stretch that may
    be the start of a placeholder until the next chunk shows what it is."""

    def __init__(self, vault: PseudonymVault) -> None:
        self._vault = vault
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """Restored text that is safe to show now."""
        buf = self._pending + chunk
        cut = _safe_prefix(buf)
        self._pending = buf[cut:]
        return self._vault.restore(buf[:cut])

    def flush(self) -> str:
        """Whatever is still held back, restored; call once at the end of the stream."""
        buf, self._pending = self._pending, ""
        return self._vault.restore(buf)


def _safe_prefix(buf: str) -> int:
    """How much of ``buf`` cannot be part of an unfinished placeholder."""
    tail_start = max(0, len(buf) - _HOLD_BACK)
    cut = len(buf)
    for opener in _OPENERS:
        i = buf.rfind(opener, tail_start)
        if i != -1 and not any(c in buf[i:] for c in ">＞›»]") and "&gt;" not in buf[i:]:
            cut = min(cut, i)
    # A bare placeholder (PERSON_1) may still be growing: hold the last word back.
    j = len(buf)
    while j > tail_start and (buf[j - 1].isalnum() or buf[j - 1] == "_"):
        j -= 1
    return min(cut, j)


def _canonical(text: str) -> str:
    return " ".join(text.casefold().split())


def _word_edge(text: str, i: int) -> bool:
    return i < 0 or i >= len(text) or not (text[i].isalnum() or text[i] == "_")


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    if not edits:
        return text
    out: list[str] = []
    pos = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], -e[1])):
        if start < pos:
            continue  # overlaps an earlier, longer edit
        out += (text[pos:start], replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


class VaultStore:
    """Vaults keyed by conversation id, bounded: least recently used first out, and any
    vault idle for ``ttl_s`` seconds dropped. Thread-safe."""

    def __init__(
        self,
        *,
        max_conversations: int = 10_000,
        ttl_s: float = 24 * 3600.0,
        max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_conversations = max_conversations
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._vaults: OrderedDict[str, tuple[PseudonymVault, float]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._vaults)

    def __contains__(self, conversation_id: object) -> bool:
        with self._lock:
            self._expire(self._clock())
            return conversation_id in self._vaults

    def get(self, conversation_id: str | None) -> PseudonymVault:
        """The conversation's vault, created on first use. ``None`` gets a new vault that is
        not stored (it lives as long as the caller keeps it: one turn)."""
        if conversation_id is None:
            return PseudonymVault(max_entries=self.max_entries)
        now = self._clock()
        with self._lock:
            self._expire(now)
            found = self._vaults.pop(conversation_id, None)
            vault = found[0] if found is not None else PseudonymVault(max_entries=self.max_entries)
            self._vaults[conversation_id] = (vault, now)
            while len(self._vaults) > self.max_conversations:
                self._vaults.popitem(last=False)
            return vault

    def drop(self, conversation_id: str) -> None:
        """Forget a conversation's vault (its placeholders can no longer be restored)."""
        with self._lock:
            self._vaults.pop(conversation_id, None)

    def _expire(self, now: float) -> None:
        # Oldest access first: stop at the first one still fresh.
        while self._vaults:
            _, (_, seen) = next(iter(self._vaults.items()))
            if now - seen <= self.ttl_s:
                break
            self._vaults.popitem(last=False)
