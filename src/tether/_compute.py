"""One lock for the heavy computation tether runs in its own process.

Two things compute in-process: the embedding passes of the guards (all-MiniLM-L6-v2 in numpy,
whose BLAS uses every core) and the embedded chat model's decode steps (llama.cpp, on every
core it is given). Run at the same time they do not share the cores, they fight over them:
both keep threads spinning between steps, and a 1,000-attack campaign with four attacks at
once ran 89% over its model's time against 35% one at a time (BENCHMARKS.md, "Campaign
overhead"). Holding this lock, each computes alone at full speed, and they take turns at
the granularity of one embedding pass or one decode step, so a guard check waits at most for
one step of another request's answer, not for the whole answer.

Taking turns is not enough on its own. After each call, OpenBLAS (numpy's BLAS in its PyPI
wheels) keeps its worker threads spinning for 2**28 cycles, about 0.1 s, in case another
call comes. The model's decode threads that start meanwhile share the cores with them: a
model call made right after an embedding pass took 5-16% longer (BENCHMARKS.md, "Campaign
overhead"). So tether sets OPENBLAS_THREAD_TIMEOUT to 20 (2**20 cycles, under 1 ms), unless
the environment already sets it; back-to-back passes run no slower. OpenBLAS reads it once,
when numpy loads it, so this module runs first in `import tether`; a program that imports
numpy before tether must set the variable itself.
"""

from __future__ import annotations

import os
import threading

__all__ = ["BLAS_THREAD_TIMEOUT", "CORES"]

BLAS_THREAD_TIMEOUT = "20"
"""OPENBLAS_THREAD_TIMEOUT's default here: log2 of the cycles a worker spins when idle."""
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_THREAD_TIMEOUT)

CORES = threading.Lock()
"""Held by one embedding pass or one decode step of the embedded model at a time."""
