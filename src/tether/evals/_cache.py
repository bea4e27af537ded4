"""A content-addressed cache of model answers, so a re-run costs no model calls.

The key is a hash of everything that determines the answer: the model's name, the messages,
the tools and the sampling options (temperature, max_tokens, seed). Answers live in one
SQLite file shared by every run (``$TETHER_CACHE_DIR/evals/responses.sqlite``).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.datasets import cache_dir
from tether.messages import Message
from tether.models import ChatModel, ModelResponse, Usage

__all__ = [
    "CachingModel",
    "CallStats",
    "ResponseCache",
    "cache_identity",
    "call_stats",
    "default_cache_path",
]


def default_cache_path() -> Path:
    return cache_dir().parent / "evals" / "responses.sqlite"


@dataclass
class CallStats:
    """Model calls made for one case, and how many the cache answered."""

    calls: int = 0
    cached: int = 0
    model_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


# Each case runs in its own task with its own CallStats; tasks copy the context.
call_stats: contextvars.ContextVar[CallStats | None] = contextvars.ContextVar(
    "tether_eval_call_stats", default=None
)


class ResponseCache:
    """Model answers by content hash, in one SQLite file; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL,"
            " created REAL NOT NULL)"
        )

    @staticmethod
    def key(model: str, messages: Sequence[Message], options: dict[str, Any]) -> str:
        """The cache key of one call; ``model`` is :func:`cache_identity` of the model."""
        blob = json.dumps(
            {"model": model, "messages": list(messages), "options": options},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> ModelResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else ModelResponse.model_validate_json(row[0])

    def put(self, key: str, response: ModelResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                (key, response.model_dump_json(), time.time()),
            )

    def __contains__(self, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def cache_identity(model: Any) -> str:
    """What names a model's answers in the cache: its ``cache_identity`` where it has one (the
    embedded model adds the settings that change its answers), else its name."""
    return str(getattr(model, "cache_identity", None) or model.name)


class CachingModel:
    """A :class:`ChatModel` that answers from the cache when it can and records every call
    in the running case's :data:`call_stats`."""

    def __init__(self, inner: ChatModel, cache: ResponseCache | None) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.cache_identity = cache_identity(inner)

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ModelResponse:
        stats = call_stats.get()
        options = {
            "tools": list(tools) if tools else None,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
        }
        key = ResponseCache.key(self.cache_identity, messages, options)
        if self.cache is not None:
            found = self.cache.get(key)  # a local indexed read: cheaper than a thread hop
            if found is not None:
                if stats is not None:
                    stats.calls += 1
                    stats.cached += 1
                    _add_usage(stats, found.usage)
                return found
        t0 = time.perf_counter()
        response = await self.inner.generate(
            messages, tools=tools, temperature=temperature, max_tokens=max_tokens, seed=seed
        )
        if stats is not None:
            stats.calls += 1
            stats.model_ms += (time.perf_counter() - t0) * 1000
            _add_usage(stats, response.usage)
        if self.cache is not None:
            await asyncio.to_thread(self.cache.put, key, response)
        return response

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> AsyncIterator[str]:
        # Evaluation runs whole turns; a stream is the cached whole answer in one piece.
        response = await self.generate(
            messages, temperature=temperature, max_tokens=max_tokens, seed=seed
        )
        yield response.text


def _add_usage(stats: CallStats, usage: Usage) -> None:
    stats.prompt_tokens += usage.prompt_tokens
    stats.completion_tokens += usage.completion_tokens
