"""Statistics for reports: Wilson intervals, percentiles, the exact McNemar test, F1 intervals."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["f1_interval", "mcnemar_exact", "percentile", "wilson"]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (95% by default); (0, 1) for n=0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), interpolating linearly between ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs at p = 1/2."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    # Integer division of exact big integers: no overflow or underflow for large counts.
    return min(1.0, 2 * tail / (1 << n))


def f1_interval(
    tp: int, fp: int, fn: int, other: int, *, rounds: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """A 95% percentile-bootstrap interval for F1 = 2tp / (2tp + fp + fn).

    F1 is not a proportion of one population, so it has no Wilson interval. The items
    (``other``: those that are neither tp, fp nor fn) are resampled ``rounds`` times with a
    fixed seed, so the interval is the same on every run. None when F1 is undefined."""
    n = tp + fp + fn + other
    if tp + fp + fn == 0:
        return None
    rng = random.Random(seed)  # noqa: S311 - a bootstrap, not cryptography
    values: list[float] = []
    for _ in range(rounds):
        counts = [0, 0, 0, 0]
        for outcome in rng.choices(range(4), weights=(tp, fp, fn, other), k=n):
            counts[outcome] += 1
        denominator = 2 * counts[0] + counts[1] + counts[2]
        # A resample without any positive, true or predicted, has no F1 to count.
        if denominator:
            values.append(2 * counts[0] / denominator)
    values.sort()
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]
