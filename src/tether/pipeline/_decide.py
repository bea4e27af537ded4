"""Turn verdicts into one decision, and apply redactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tether.guards import Span, Verdict

__all__ = ["Decision", "apply_spans", "decide"]

_PRIORITY = {
    "block": 6,
    "escalate": 5,
    "reask": 4,
    "revise": 3,
    "redact": 2,
    "log": 1,
    "allow": 0,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """The strictest action any verdict asks for, and the verdicts asking for it."""

    action: str
    verdicts: tuple[Verdict, ...]

    @property
    def reason(self) -> str:
        if len(self.verdicts) == 1:
            return self.verdicts[0].reason
        return "; ".join(f"{v.guard}: {v.reason}" for v in self.verdicts)

    @property
    def guards(self) -> tuple[str, ...]:
        return tuple(v.guard for v in self.verdicts)


def decide(verdicts: Sequence[Verdict]) -> Decision:
    """Precedence: block > escalate > reask > revise > redact > log > allow. A redaction that has no
    spans to redact cannot be carried out, so it blocks instead (fail closed)."""
    flagged = [v for v in verdicts if v.flagged]
    fixed = [
        v.model_copy(
            update={"action": "block", "reason": v.reason + " (nothing to redact; blocked)"}
        )
        if v.action == "redact" and not v.spans
        else v
        for v in flagged
    ]
    if not fixed:
        return Decision("allow", ())
    top = max(_PRIORITY[v.action] for v in fixed)
    action = next(a for a, p in _PRIORITY.items() if p == top)
    return Decision(action, tuple(v for v in fixed if v.action == action))


def apply_spans(text: str, spans: Sequence[Span]) -> str:
    """Replace each span (overlaps merged) with its replacement, or ``[LABEL]``."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            if span.end > last.end:
                merged[-1] = last.model_copy(update={"end": span.end})
            continue
        merged.append(span)
    out: list[str] = []
    pos = 0
    for span in merged:
        out.append(text[pos : span.start])
        out.append(span.replacement if span.replacement is not None else f"[{span.label}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)
