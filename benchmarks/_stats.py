"""Confidence intervals shared by the benchmark scripts (the library's own Wilson interval)."""

from __future__ import annotations

from tether.evals._stats import wilson

__all__ = ["rate", "wilson"]


def rate(k: int, n: int) -> str:
    """'12.5% [8.1–18.7] (k/n)'."""
    lo, hi = wilson(k, n)
    return f"{100 * k / max(n, 1):.1f}% [{100 * lo:.1f}–{100 * hi:.1f}] ({k}/{n})"
