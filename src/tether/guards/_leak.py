"""System-prompt leakage: the conversation's canary, or a long verbatim run of the prompt."""

from __future__ import annotations

import functools
import re

from pydantic import Field

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten
from ._normalize import View, views

__all__ = ["PromptLeakGuard", "PromptLeakParams"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class PromptLeakParams(GuardParams):
    canary: bool = Field(
        True,
        description="Add a per-conversation canary to the system prompt; flag answers with it.",
        json_schema_extra=tighten("higher"),
    )
    min_words: int = Field(
        10,
        ge=4,
        le=200,
        description="Flag this many consecutive words copied from the system prompt.",
        json_schema_extra=tighten("lower"),
    )


@register("guard", "prompt_leak", params=PromptLeakParams, stages=("output",), redacts=True)
class PromptLeakGuard:
    """Flags answers that contain the conversation's canary or copy a long run of the system
    prompt, also when encoded (base64, hex, spaced out, look-alike letters)."""

    name = "prompt_leak"

    def __init__(self, params: PromptLeakParams) -> None:
        self.params = params

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        canary = str(ctx.metadata.get("canary") or "")
        prompt = str(ctx.metadata.get("system_prompt") or "")
        spans: list[Span] = []
        reasons: list[str] = []
        text_views = views(text)
        if canary and self.params.canary:
            needle = canary.lower()
            for view in text_views:
                at = view.text.find(needle)
                if at >= 0:
                    a, b = view.span(at, at + len(needle))
                    spans.append(Span(start=a, end=b, label="CANARY"))
                    how = (
                        ""
                        if view.transforms == ("normalize",)
                        else f" (after {'+'.join(view.transforms)})"
                    )
                    reasons.append(f"contains the conversation's canary{how}")
                    break
        if prompt:
            public = tuple(str(t) for t in ctx.metadata.get("public_texts") or ())
            run = self._overlap(prompt, public, text_views)
            if run is not None:
                (a, b), words = run
                spans.append(Span(start=a, end=b, label="SYSTEM_PROMPT"))
                reasons.append(f"copies {words} consecutive words of the system prompt")
        if not spans:
            return Verdict(flagged=False, category="prompt_leak")
        return Verdict(
            flagged=True,
            score=1.0,
            category="prompt_leak",
            spans=tuple(spans),
            reason="; ".join(reasons),
        )

    def _overlap(
        self, prompt: str, public: tuple[str, ...], text_views: list[View]
    ) -> tuple[tuple[int, int], int] | None:
        n = self.params.min_words
        shingles, firsts = _shingles(prompt, public, n)
        if not shingles:
            return None
        for view in text_views:
            words = _WORD.findall(view.text)
            # A run can only begin with a word that begins one of the prompt's: only there is
            # a tuple of words built and looked up.
            for i in [k for k, w in enumerate(words[: len(words) - n + 1]) if w in firsts]:
                if tuple(words[i : i + n]) in shingles:
                    j = i + n
                    while j < len(words) and tuple(words[j - n + 1 : j + 1]) in shingles:
                        j += 1
                    matches = list(_WORD.finditer(view.text))  # where the words are
                    span = view.span(matches[i].start(), matches[j - 1].end())
                    return span, j - i
        return None


@functools.lru_cache(maxsize=64)
def _shingles(
    prompt: str, public: tuple[str, ...], n: int
) -> tuple[frozenset[tuple[str, ...]], frozenset[str]]:
    """Runs of ``n`` words of the system prompt, leaving out what the assistant may say openly
    (its refusal and redirect replies, its context facts: ``public``); a run never spans a
    removed part. Cached: the same prompt is checked on every turn. Also the runs' first
    words."""
    segments = [views(prompt)[0].text]
    for text in sorted({views(t)[0].text for t in public}, key=len, reverse=True):
        if text:
            segments = [part for seg in segments for part in seg.split(text)]
    out: set[tuple[str, ...]] = set()
    for seg in segments:
        words = [m.group() for m in _WORD.finditer(seg)]
        out.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return frozenset(out), frozenset(run[0] for run in out)
