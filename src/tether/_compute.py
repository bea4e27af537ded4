"""One lock for the heavy computation tether runs in its own process.

Two things compute in-process: the embedding passes of the guards (all-MiniLM-L6-v2 in numpy,
whose BLAS uses every core) and the embedded chat model's decode steps (llama.cpp, on every
core it is given). Run at the same time they do not share the cores, they fight over them:
both keep threads spinning between steps, and a 1,000-attack campaign with four attacks at
once ran 89% over its model's time against 35% one at a time (BENCHMARKS.md, "Campaign
overhead"). Holding this lock, each computes alone at full speed, and they take turns at
the granularity of one embedding pass or one decode step, so a guard check waits at most for
one step of another request's answer, not for the whole answer.
"""

from __future__ import annotations

import threading

__all__ = ["CORES"]

CORES = threading.Lock()
"""Held by one embedding pass or one decode step of the embedded model at a time."""
