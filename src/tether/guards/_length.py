"""Length limits on characters and (estimated) tokens."""

from __future__ import annotations

import math

import re2
from pydantic import Field

from tether.registry import register

from ._base import GuardContext, GuardParams, Verdict, tighten

__all__ = ["LengthGuard", "LengthParams", "estimate_tokens"]

_PIECES = re2.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of BPE tokens: each punctuation mark is one, and each word
    costs one token per started four characters. It errs high on English prose, the safe side
    for a limit, and needs no model files."""
    return sum(max(1, math.ceil(len(p) / 4)) for p in _PIECES.findall(text))


class LengthParams(GuardParams):
    max_chars: int | None = Field(8000, gt=0, json_schema_extra=tighten("lower"))
    max_tokens: int | None = Field(None, gt=0, json_schema_extra=tighten("lower"))


@register("guard", "length", params=LengthParams, stages=("input", "output"))
class LengthGuard:
    """Flags text longer than a character or estimated-token limit."""

    name = "length"

    def __init__(self, params: LengthParams) -> None:
        self.params = params

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        p = self.params
        if p.max_chars is not None and len(text) > p.max_chars:
            return Verdict(
                flagged=True,
                score=1.0,
                category="length",
                reason=f"{len(text)} characters, over the limit of {p.max_chars}",
            )
        if p.max_tokens is not None:
            tokens = estimate_tokens(text)
            if tokens > p.max_tokens:
                return Verdict(
                    flagged=True,
                    score=1.0,
                    category="length",
                    reason=f"about {tokens} tokens, over the limit of {p.max_tokens}",
                )
        return Verdict(flagged=False, category="length")
