"""The audit store's tables (SQLAlchemy Core), as the latest migration leaves them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UTCDateTime",
    "api_keys",
    "approvals",
    "events",
    "feedback",
    "metadata",
    "policy_versions",
    "schema_version",
    "tenants",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (SQLite keeps naive
    UTC text, which sorts and compares correctly)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store takes timezone-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")
SLUG_LENGTH = 64

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("name", String(SLUG_LENGTH), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retention_days", Integer, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    # The key's public part ("tth_<id>_..."): how a presented key is found.
    Column("id", String(32), primary_key=True),
    Column(
        "tenant",
        String(SLUG_LENGTH),
        ForeignKey("tenants.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(200), nullable=True),
    Column("salt", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "tenant",
        String(SLUG_LENGTH),
        ForeignKey("tenants.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", String(200), nullable=False),
    # The resolved policy (overlay merged), so any version can be run again as it was.
    Column("policy", Json, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("active", Boolean, nullable=False, default=False),
    UniqueConstraint("tenant", "version", name="uq_policy_versions_tenant_version"),
    Index("ix_policy_versions_tenant_active", "tenant", "active"),
)

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),
    # No foreign key: an event is a record of what happened, kept even if its tenant goes.
    Column("tenant", String(SLUG_LENGTH), nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("conversation_id", String(256), nullable=True),
    Column("policy", String(SLUG_LENGTH), nullable=False),
    Column("policy_version", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("action", String(16), nullable=False),
    Column("actions", Json, nullable=False),
    Column("verdicts", Json, nullable=False),
    Column("revisions", Json, nullable=False),
    Column("reasks", Integer, nullable=False),
    Column("input_guards_ms", Float, nullable=False),
    Column("model_ms", Float, nullable=False),
    Column("output_guards_ms", Float, nullable=False),
    Column("total_ms", Float, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("time", UTCDateTime, nullable=False),
    # Every other field of the event (tool calls, agent steps, ...), so none is ever dropped.
    Column("details", Json, nullable=True),
    Index("ix_events_tenant_time", "tenant", "time"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(SLUG_LENGTH), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_feedback_tenant_event", "tenant", "event_id"),
    # The answer the user says it should have been (migration 2).
    Column("corrected", Text, nullable=True),
)

# Tool calls waiting for (or decided by) a person; ``data`` is the whole Approval as JSON, the
# other columns what is looked up and compared-and-set (migration 3).
approvals = Table(
    "approvals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(SLUG_LENGTH), nullable=True),
    Column("tool", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("resumed_at", UTCDateTime, nullable=True),
    Column("data", Text, nullable=False),
    Index("ix_approvals_tenant_status_created", "tenant", "status", "created_at"),
)
