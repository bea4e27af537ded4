"""Who is calling: a tenant's API key, or the admin key."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime

from tether.errors import StoreUnavailableError
from tether.store import ApiKey, Store

from ._config import admin_key_matches
from ._errors import ApiError

__all__ = ["Authenticator"]


class Authenticator:
    """Checks API keys against the store, trusting a checked key for ``cache_s`` seconds (a
    revoked key stops working at once on the gateway that revoked it, within ``cache_s`` on
    the others). While the store is unreachable, keys checked before keep working."""

    def __init__(self, store: Store, *, cache_s: float, admin_hash: str | None) -> None:
        self.store = store
        self.cache_s = cache_s
        self.admin_hash = admin_hash
        # SHA-256 of the presented key → (its record, when it was checked); never the key.
        self._cache: dict[str, tuple[ApiKey, float]] = {}

    async def tenant_key(self, token: str | None) -> ApiKey:
        if token is None:
            raise ApiError(
                401,
                "no API key: send the header 'Authorization: Bearer <key>'",
                code="missing_api_key",
            )
        if self.admin_hash is not None and admin_key_matches(token, self.admin_hash):
            raise ApiError(
                403,
                "the admin key opens only the /admin routes; use one of the tenant's keys",
                code="admin_key",
            )
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        now = time.monotonic()
        fresh = cached is not None and now - cached[1] < self.cache_s
        if cached is not None and fresh and cached[0].usable(datetime.now(UTC)):
            return cached[0]
        try:
            key = await asyncio.to_thread(self.store.authenticate, token)
        except StoreUnavailableError:
            if cached is not None and cached[0].usable(datetime.now(UTC)):
                return cached[0]
            raise
        if key is None:
            self._cache.pop(digest, None)
            raise ApiError(
                401, "invalid API key: unknown, revoked or expired", code="invalid_api_key"
            )
        self._cache[digest] = (key, now)
        return key

    def forget(self, key_id: str) -> None:
        """Stop trusting a key at once (it was revoked)."""
        self._cache = {d: entry for d, entry in self._cache.items() if entry[0].id != key_id}

    def admin(self, token: str | None) -> None:
        if self.admin_hash is None:
            raise ApiError(
                403,
                "the admin API is off: set admin_key_sha256 or admin_key_env in the gateway config",
                code="admin_disabled",
            )
        if token is None:
            raise ApiError(
                401,
                "no admin key: send the header 'Authorization: Bearer <admin key>'",
                code="missing_api_key",
            )
        if not admin_key_matches(token, self.admin_hash):
            raise ApiError(403, "this route needs the admin key", code="admin_only")
