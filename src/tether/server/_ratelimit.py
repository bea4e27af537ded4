"""Rate limits: GCRA (a leaky bucket kept as one timestamp per key) in process, or in Redis so
that several gateways share them. A request is admitted only if every limit it falls under
admits it, and only then is it counted against all of them."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["Limit", "MemoryRateLimiter", "RateLimiter", "RedisRateLimiter"]

log = logging.getLogger("tether.server")


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``per_minute`` requests a minute under ``key``, in bursts of up to that many."""

    scope: str
    key: str
    per_minute: int

    @property
    def interval_s(self) -> float:
        return 60.0 / self.per_minute

    @property
    def tolerance_s(self) -> float:
        return self.interval_s * (self.per_minute - 1)


class RateLimiter(Protocol):
    async def admit(self, limits: Sequence[Limit]) -> tuple[Limit, float] | None:
        """None if admitted, else the limit hit and the seconds until it would admit."""
        ...

    async def aclose(self) -> None: ...


class MemoryRateLimiter:
    """Limits for one gateway process."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}  # theoretical arrival time per key

    async def admit(self, limits: Sequence[Limit]) -> tuple[Limit, float] | None:
        now = time.monotonic()
        if len(self._tat) > 100_000:  # forget keys whose bucket has emptied
            self._tat = {k: t for k, t in self._tat.items() if t > now}
        updates = []
        for limit in limits:
            tat = max(self._tat.get(limit.key, now), now)
            wait = tat - now - limit.tolerance_s
            if wait > 0:
                return limit, wait
            updates.append((limit.key, tat + limit.interval_s))
        self._tat.update(updates)
        return None

    async def aclose(self) -> None:
        return None


# KEYS: one per limit; ARGV: interval and tolerance (microseconds) for each. Redis's own clock,
# so gateways on different hosts agree. Returns 0, or the index (1-based) of the limit hit
# and the microseconds to wait.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local wait = tat - now - tolerance
  if wait > 0 then return {i, wait} end
  tats[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return {0, 0}
"""


class RedisRateLimiter:
    """Limits shared by every gateway that uses the same Redis and ``prefix``. When Redis
    cannot be reached, requests are admitted (and logged): a rate limit protects capacity,
    and an outage of it should not take the gateway down."""

    def __init__(self, url: str, *, prefix: str = "tether") -> None:
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self._script = self.client.register_script(_GCRA)
        self.errors = 0

    async def admit(self, limits: Sequence[Limit]) -> tuple[Limit, float] | None:
        if not limits:
            return None
        keys = [f"{self.prefix}:rl:{limit.key}" for limit in limits]
        args: list[int] = []
        for limit in limits:
            args += [round(limit.interval_s * 1e6), round(limit.tolerance_s * 1e6)]
        try:
            hit, wait_us = await self._script(keys=keys, args=args)
        except RedisError as exc:
            self.errors += 1
            log.warning("rate limits not applied, Redis failed: %s", exc)
            return None
        if int(hit) == 0:
            return None
        return limits[int(hit) - 1], int(wait_us) / 1e6

    async def ping(self) -> None:
        await self.client.ping()

    async def aclose(self) -> None:
        await self.client.aclose()
