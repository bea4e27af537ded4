"""The upstream model, wrapped: a time limit per call and a circuit breaker, so a failing
upstream costs each request little and answers 502/504 at once while it is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tether.errors import ModelError, ModelTimeoutError
from tether.messages import Message
from tether.models import ChatModel, ModelResponse

__all__ = ["GuardedUpstream"]


class GuardedUpstream:
    """A :class:`ChatModel` around ``model``: each call (each streamed piece) must come within
    ``timeout_s``; after ``failures_to_open`` failures in a row the circuit opens and calls
    fail at once for ``open_s`` seconds, then one call is let through to probe it."""

    def __init__(
        self,
        model: ChatModel,
        *,
        timeout_s: float | None = None,
        failures_to_open: int = 5,
        open_s: float = 30.0,
    ) -> None:
        self.model = model
        self.name = model.name
        self.timeout_s = timeout_s
        self.failures_to_open = failures_to_open
        self.open_s = open_s
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def _admit(self) -> None:
        if self.is_open:
            wait = self._open_until - time.monotonic()
            raise ModelError(
                f"the upstream {self.name} failed {self._failures} times in a row; not calling "
                f"it for another {wait:.0f} s"
            )

    def _failed(self) -> None:
        self._failures += 1
        if self._failures >= self.failures_to_open:
            self._open_until = time.monotonic() + self.open_s

    def _succeeded(self) -> None:
        self._failures = 0
        self._open_until = 0.0

    async def _timed(self, step: Any) -> Any:
        if self.timeout_s is None:
            return await step
        try:
            return await asyncio.wait_for(step, self.timeout_s)
        except TimeoutError:
            raise ModelTimeoutError(
                f"the upstream {self.name} timed out after {self.timeout_s:g} s"
            ) from None

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ModelResponse:
        self._admit()
        try:
            reply: ModelResponse = await self._timed(
                self.model.generate(
                    messages,
                    tools=tools,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    seed=seed,
                )
            )
        except ModelError:
            self._failed()
            raise
        self._succeeded()
        return reply

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> AsyncIterator[str]:
        self._admit()
        pieces = aiter(
            self.model.stream(messages, temperature=temperature, max_tokens=max_tokens, seed=seed)
        )
        try:
            while True:
                try:
                    piece: str = await self._timed(anext(pieces))
                except StopAsyncIteration:
                    break
                yield piece
        except ModelError:
            self._failed()
            raise
        finally:
            closer = getattr(pieces, "aclose", None)
            if closer is not None:
                await closer()
        self._succeeded()

    async def aclose(self) -> None:
        closer = getattr(self.model, "aclose", None)
        if closer is not None:
            await closer()
