"""Look-alike letters: words that mix letters of other scripts into Latin ones ("pаy" with a
Cyrillic а), the homoglyph evasion. People writing English, or Russian, or Greek, do not mix
scripts inside a word; a text that does is written to get past filters that read words."""

from __future__ import annotations

from pydantic import Field

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import _WORD_RE, fold_homoglyphs

__all__ = ["LookalikesGuard", "LookalikesParams"]


class LookalikesParams(GuardParams):
    min_words: int = Field(
        2,
        ge=1,
        description="Flag a text with at least this many words spelled with look-alike letters.",
        json_schema_extra=tighten("lower"),
    )


@register("guard", "lookalikes", params=LookalikesParams, stages=("input", "output"), redacts=True)
class LookalikesGuard:
    """Flags words spelled with look-alike letters from other scripts (Cyrillic, Greek,
    Armenian, Cherokee, Latin small capitals) where the text's normalization folds them to
    Latin; redaction replaces each with its Latin spelling."""

    name = "lookalikes"

    def __init__(self, params: LookalikesParams) -> None:
        self.params = params

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        if text.isascii():
            return Verdict(flagged=False, category="lookalikes")
        folded = fold_homoglyphs(text)  # one character for one: offsets line up
        spans = [
            Span(
                start=m.start(),
                end=m.end(),
                label="lookalikes",
                replacement=folded[m.start() : m.end()],
            )
            for m in _WORD_RE.finditer(text)
            if folded[m.start() : m.end()] != m.group()
        ]
        if len(spans) < self.params.min_words:
            return Verdict(flagged=False, category="lookalikes")
        shown = ", ".join(repr(s.replacement) for s in spans[:3])
        return Verdict(
            flagged=True,
            score=1.0,
            category="lookalikes",
            spans=tuple(spans),
            reason=f"{len(spans)} word(s) spelled with look-alike letters: {shown}"
            + (" …" if len(spans) > 3 else ""),
        )
