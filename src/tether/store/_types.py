"""What the store hands back: tenants, API keys, policy versions, feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["ApiKey", "Feedback", "PolicyVersion", "Tenant"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Tenant(_Record):
    """A tenant; ``retention_days`` (if set) is how long its events are kept."""

    name: str
    created_at: datetime
    retention_days: int | None = None


class ApiKey(_Record):
    """An API key's public record. The key itself is never stored, only a salted hash of it."""

    id: str
    tenant: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class PolicyVersion(_Record):
    """One version of a tenant's policy; ``policy`` is the resolved policy as JSON."""

    id: int
    tenant: str
    version: str
    source: str
    created_at: datetime
    active: bool
    policy: dict[str, Any]


class Feedback(_Record):
    """A rating of one event's answer (placeholder for the monitoring loop)."""

    id: int
    tenant: str
    event_id: str
    rating: int
    comment: str | None
    created_at: datetime
    corrected: str | None = None
