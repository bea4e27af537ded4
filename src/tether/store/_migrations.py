"""Numbered schema migrations, applied in order on start and recorded in ``schema_version``.

A migration is a function of an open transaction. Never edit one that has shipped: add the
next number. Migration 1 builds the tables from ``_tables``; the first later migration that
changes one of those tables must give migration 1 its own frozen copy of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    text,
)

from ._monitoring import migrate_monitoring
from ._tables import (
    SLUG_LENGTH,
    UTCDateTime,
    api_keys,
    approvals,
    events,
    policy_versions,
    schema_version,
    tenants,
)

__all__ = ["MIGRATIONS", "Migration", "SchemaStatus", "schema_status", "upgrade"]

# Any constant; it names the PostgreSQL advisory lock that serializes concurrent upgrades.
_LOCK_ID = 0x7E7E_0001


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    description: str
    apply: Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Which migrations a database has, and which it still needs."""

    current: int
    latest: int
    pending: tuple[Migration, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


# ``feedback`` as migration 1 made it (migration 2 adds ``corrected``).
_feedback_v1 = Table(
    "feedback",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(SLUG_LENGTH), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_feedback_tenant_event", "tenant", "event_id"),
)


def _initial(conn: Connection) -> None:
    for table in (tenants, api_keys, policy_versions, events, _feedback_v1):
        table.create(conn)


def _approvals(conn: Connection) -> None:
    approvals.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tenants, api_keys, policy_versions, events, feedback", _initial),
    Migration(
        2,
        "monitoring: event_rollups, alerts, reviews, drift_reports, feedback.corrected",
        migrate_monitoring,
    ),
    Migration(3, "approvals", _approvals),
)


def _applied(conn: Connection) -> set[int]:
    if not inspect(conn).has_table(schema_version.name):
        return set()
    return set(conn.scalars(select(schema_version.c.version)))


def schema_status(engine: Engine) -> SchemaStatus:
    with engine.connect() as conn:
        done = _applied(conn)
    return SchemaStatus(
        current=max(done, default=0),
        latest=MIGRATIONS[-1].number,
        pending=tuple(m for m in MIGRATIONS if m.number not in done),
    )


def upgrade(engine: Engine) -> list[Migration]:
    """Apply every pending migration in one transaction; returns those applied. Safe to run
    from several processes at once (PostgreSQL: an advisory lock; SQLite: a write lock)."""
    # SQLite: take the write lock when the transaction starts (see _engine), so a second
    # process waits for the first rather than failing when both try to write.
    with engine.execution_options(tether_immediate=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        schema_version.create(conn, checkfirst=True)
        done = _applied(conn)
        applied = []
        for migration in MIGRATIONS:
            if migration.number in done:
                continue
            migration.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=migration.number,
                    description=migration.description,
                    applied_at=datetime.now(UTC),
                )
            )
            applied.append(migration)
    return applied
