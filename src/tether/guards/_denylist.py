"""Keyword and regular-expression deny lists.

User-supplied patterns run on RE2, a linear-time engine: no pattern can backtrack
catastrophically, so a policy cannot hang the process. RE2 lacks backreferences and
lookaround; such a pattern is rejected when the policy loads, naming the pattern.
"""

from __future__ import annotations

import asyncio
import re
from functools import cached_property
from typing import Any

import re2
from pydantic import Field, ValidationInfo, field_validator

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import normalize

__all__ = ["DenyListGuard", "DenyListParams", "compile_safe"]

# Texts longer than this are matched in a worker thread so the event loop keeps serving.
_THREAD_THRESHOLD = 20_000
_MAX_PATTERN_MEMORY = 8 << 20
_WORD_EDGE = r"[^\pL\pN_]"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\{\{\s*([^{}\s]*)\s*\}\}")


def compile_safe(pattern: str, *, case_sensitive: bool = False) -> Any:
    """Compile ``pattern`` with RE2 under a memory cap; raises ValueError naming the problem."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_PATTERN_MEMORY
    options.case_sensitive = case_sensitive
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(
            f"pattern {pattern!r} is not supported by the linear-time regex engine (RE2): {detail}"
        ) from None


class DenyListParams(GuardParams):
    terms: tuple[str, ...] = Field((), json_schema_extra=tighten("superset"))
    define: dict[str, str] = Field(
        default_factory=dict,
        description="Named RE2 fragments that patterns use as {{name}}: a list of words several "
        "patterns share is written once.",
    )
    patterns: tuple[str, ...] = Field(
        (),
        description="RE2 syntax (no backreferences or lookaround).",
        json_schema_extra=tighten("superset"),
    )
    case_sensitive: bool = Field(False, json_schema_extra=tighten("lower"))
    whole_words: bool = Field(
        True, description="Terms match whole words only.", json_schema_extra=tighten("lower")
    )
    category: str = "deny_list"

    @field_validator("define")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, fragment in value.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"define: {name!r} is not a name (letters, digits and _)")
            compile_safe(fragment)
        return value

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        define = info.data.get("define", {})  # validated first: declared before patterns
        for pattern in value:
            compile_safe(_expand(pattern, define))
        return value

    def expand(self, pattern: str) -> str:
        """``pattern`` with each ``{{name}}`` replaced by its definition, as a group."""
        return _expand(pattern, self.define)

    @field_validator("terms")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not t.strip() for t in value):
            raise ValueError("terms must not be empty strings")
        return value


def _expand(pattern: str, define: dict[str, str]) -> str:
    def fragment(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in define:
            known = ", ".join(sorted(define)) or "none"
            raise ValueError(
                f"pattern uses {{{{{name}}}}}, which define does not name (defined: {known})"
            )
        return f"(?:{define[name]})"

    return _REFERENCE.sub(fragment, pattern)


@register("guard", "deny_list", params=DenyListParams, stages=("input", "output"), redacts=True)
class DenyListGuard:
    """Flags listed terms and patterns, matched on normalized text (NFKC, casefolded,
    invisible characters removed) so look-alike spellings do not slip through."""

    name = "deny_list"

    def __init__(self, params: DenyListParams) -> None:
        self.params = params

    @cached_property
    def _term_regex(self) -> Any:
        p = self.params
        if not p.terms:
            return None
        fold = not p.case_sensitive
        terms = sorted(
            {normalize(t.strip(), casefold=fold).text for t in p.terms}, key=len, reverse=True
        )
        body = "|".join(re2.escape(t) for t in terms)
        if p.whole_words:
            return compile_safe(
                f"(?:^|{_WORD_EDGE})({body})(?:{_WORD_EDGE}|$)", case_sensitive=True
            )
        return compile_safe(f"({body})", case_sensitive=True)

    @cached_property
    def _patterns(self) -> list[Any]:
        return [
            compile_safe(self.params.expand(p), case_sensitive=self.params.case_sensitive)
            for p in self.params.patterns
        ]

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        if len(text) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(self._scan, text)
        return self._scan(text)

    def _scan(self, text: str) -> Verdict:
        norm = normalize(text, casefold=not self.params.case_sensitive)
        spans: list[Span] = []
        hits: list[str] = []
        if self._term_regex is not None:
            pos = 0
            while (m := self._term_regex.search(norm.text, pos)) is not None:
                start, end = m.span(1)
                spans.append(self._span(norm.span(start, end)))
                hits.append(m.group(1))
                pos = end
        for regex in self._patterns:
            for m in regex.finditer(norm.text):
                if m.end() > m.start():
                    spans.append(self._span(norm.span(m.start(), m.end())))
                    hits.append(m.group(0))
        if not spans:
            return Verdict(flagged=False, category=self.params.category)
        shown = ", ".join(dict.fromkeys(repr(h) for h in hits[:5]))
        more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
        return Verdict(
            flagged=True,
            score=1.0,
            category=self.params.category,
            spans=tuple(sorted(spans, key=lambda s: s.start)),
            reason=f"matched {shown}{more}",
        )

    def _span(self, bounds: tuple[int, int]) -> Span:
        return Span(start=bounds[0], end=bounds[1], label=self.params.category.upper())
