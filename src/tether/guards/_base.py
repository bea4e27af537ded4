"""Guard protocol, verdicts and the context a guard sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tether.messages import Message

__all__ = ["Guard", "GuardContext", "GuardParams", "Span", "Stage", "Verdict", "tighten"]

Stage = Literal["input", "output"]
VerdictAction = Literal["allow", "log", "redact", "revise", "reask", "escalate", "block"]


def tighten(direction: str) -> dict[str, Any]:
    """Field metadata: how a tenant overlay may change this parameter (default: not at all).

    ``lower`` / ``higher``: numbers (and booleans, False < True) may only move that way;
    ``superset``: a list may only grow (an overlay's entries are added); ``subset``: it may
    only shrink; ``order:a,b,c``: a choice may only move right (towards stricter).
    """
    return {"tighten": direction}


class GuardParams(BaseModel):
    """Base for a guard's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(BaseModel):
    """A flagged stretch of the checked text; ``replacement`` is what redaction puts there
    (``None``: ``[LABEL]``)."""

    model_config = ConfigDict(frozen=True)

    start: int = Field(..., ge=0)
    end: int = Field(..., ge=0)
    label: str
    replacement: str | None = None


class Verdict(BaseModel):
    """One guard's finding on one text. Guards fill what they found; the runner fills
    ``guard``, ``stage``, ``action`` and ``latency_ms``."""

    model_config = ConfigDict(frozen=True)

    guard: str = ""
    kind: str = ""
    stage: Stage = "input"
    flagged: bool
    score: float = Field(0.0, ge=0.0, le=1.0)
    category: str | None = None
    spans: tuple[Span, ...] = ()
    reason: str = ""
    action: VerdictAction = "allow"
    latency_ms: float = 0.0
    error: str | None = None
    rewrite: str | None = Field(
        None, description="A cleaned form of the text the guard accepts (e.g. JSON without fences)."
    )


@dataclass(frozen=True, slots=True)
class GuardContext:
    """What a guard may know besides the text: the stage, the conversation so far, the tenant."""

    stage: Stage
    messages: Sequence[Message] = ()
    role: str = "user"
    tenant: str | None = None
    policy_version: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Guard(Protocol):
    """A check on one text. ``name`` is the registered guard name."""

    name: str

    async def check(self, text: str, ctx: GuardContext) -> Verdict: ...
