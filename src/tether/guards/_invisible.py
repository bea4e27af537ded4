"""Invisible and control characters: zero-width, bidi overrides, Unicode tags and the like."""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from pydantic import Field

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import invisible_category

__all__ = ["InvisibleTextGuard", "InvisibleTextParams"]

_NOT_PLAIN_RE = re.compile(r"[^\t\n\r\x20-\x7e]")

Category = Literal["zero_width", "bidi", "tag", "control", "variation_selector", "private_use"]


class InvisibleTextParams(GuardParams):
    categories: tuple[Category, ...] = Field(
        ("zero_width", "bidi", "tag", "control", "variation_selector", "private_use"),
        json_schema_extra=tighten("superset"),
    )


@register(
    "guard", "invisible_text", params=InvisibleTextParams, stages=("input", "output"), redacts=True
)
class InvisibleTextGuard:
    """Flags invisible and control characters; redaction removes them."""

    name = "invisible_text"

    def __init__(self, params: InvisibleTextParams) -> None:
        self.params = params
        self._wanted = frozenset(params.categories)

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        spans: list[Span] = []
        counts: Counter[str] = Counter()
        # Only characters other than printable ASCII, tab and newlines can be invisible; the
        # scan skips to them in C rather than looking at every character in Python.
        for m in _NOT_PLAIN_RE.finditer(text):
            i, ch = m.start(), m.group()
            cat = invisible_category(ch)
            if cat is None or cat not in self._wanted:
                continue
            counts[cat] += 1
            if spans and spans[-1].end == i and spans[-1].label == cat:
                spans[-1] = spans[-1].model_copy(update={"end": i + 1})
            else:
                spans.append(Span(start=i, end=i + 1, label=cat, replacement=""))
        if not spans:
            return Verdict(flagged=False, category="invisible_text")
        detail = ", ".join(f"{n} {cat.replace('_', '-')}" for cat, n in sorted(counts.items()))
        return Verdict(
            flagged=True,
            score=1.0,
            category="invisible_text",
            spans=tuple(spans),
            reason=f"invisible characters: {detail}",
        )
