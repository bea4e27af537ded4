"""The audit store: tenants, API keys, policy versions, events and feedback.

Every method that reads or writes a tenant's data takes the tenant and touches only its rows.
Methods are synchronous (call them from a worker thread in async code); SQLAlchemy's
connection pool makes them safe to call from several threads at once.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Row, Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import (
    TimeoutError as PoolTimeoutError,
)

from tether.errors import StoreError, StoreUnavailableError
from tether.pipeline import Event

from ._engine import default_db_url, make_engine, normalize_url, safe_url
from ._keys import new_key, split_key, verify_secret
from ._migrations import Migration, SchemaStatus, schema_status, upgrade
from ._monitoring import MonitoringMethods, record_turns, reviews
from ._pgcopy import EVENT_COLUMNS, JSON_COLUMNS, RawJson, copy_events, event_values
from ._tables import api_keys, events, feedback, policy_versions, tenants
from ._types import ApiKey, Feedback, PolicyVersion, Tenant

__all__ = ["Store"]

P = ParamSpec("P")
R = TypeVar("R")
_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


def _translate(fn: Callable[P, R]) -> Callable[P, R]:
    """Database errors become StoreUnavailableError (worth retrying) or StoreError."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SQLAlchemyError as exc:
            store = args[0]
            where = store.safe_url if isinstance(store, Store) else "the database"
            detail = _first_line(exc)
            if isinstance(exc, _UNAVAILABLE) or (
                isinstance(exc, DBAPIError) and exc.connection_invalidated
            ):
                raise StoreUnavailableError(f"cannot reach {where}: {detail}") from exc
            raise StoreError(f"{where}: {detail}") from exc

    return wrapper


def _first_line(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


class Store(MonitoringMethods):
    """The audit store at ``url`` (default: ``$TETHER_DB``, else a SQLite file in the data
    folder); pending migrations are applied on open unless ``upgrade=False``."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self.url = normalize_url(url or default_db_url())
        self.safe_url = safe_url(self.url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        if upgrade:
            try:
                self.upgrade()
            except BaseException:
                self.engine.dispose()
                raise

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE): a
        deferred one that reads and then writes fails at once with "database is locked" when
        another writer (the event sink) committed in between, instead of waiting its turn."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(tether_immediate=True)
            with conn.begin():
                yield conn

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can say ON CONFLICT DO NOTHING on this backend."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- schema ------------------------------------------------------------------------------

    @_translate
    def upgrade(self) -> list[Migration]:
        """Apply pending migrations; returns those applied."""
        return upgrade(self.engine)

    @_translate
    def status(self) -> SchemaStatus:
        return schema_status(self.engine)

    @_translate
    def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    # -- tenants -----------------------------------------------------------------------------

    @_translate
    def create_tenant(self, name: str, *, retention_days: int | None = None) -> Tenant | None:
        """A new tenant; None if the name is taken."""
        now = datetime.now(UTC)
        stmt = (
            self._insert(tenants)
            .values(name=name, created_at=now, retention_days=retention_days)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(tenants.c.name)
        )
        with self._tx() as conn:
            created = conn.execute(stmt).first() is not None
        return Tenant(name=name, created_at=now, retention_days=retention_days) if created else None

    @_translate
    def ensure_tenant(self, name: str, *, retention_days: int | None = None) -> Tenant:
        """The tenant, created if missing, with this retention."""
        with self._tx() as conn:
            conn.execute(
                self._insert(tenants)
                .values(name=name, created_at=datetime.now(UTC), retention_days=retention_days)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            conn.execute(
                update(tenants).where(tenants.c.name == name).values(retention_days=retention_days)
            )
            row = conn.execute(select(tenants).where(tenants.c.name == name)).one()
        return Tenant.model_validate(row._mapping)

    @_translate
    def get_tenant(self, name: str) -> Tenant | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
        return Tenant.model_validate(row._mapping) if row else None

    @_translate
    def list_tenants(self) -> list[Tenant]:
        """Every tenant (an administrator's view)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(tenants).order_by(tenants.c.name)).all()
        return [Tenant.model_validate(r._mapping) for r in rows]

    # -- API keys ----------------------------------------------------------------------------

    @_translate
    def create_key(
        self, tenant: str, *, name: str | None = None, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str] | None:
        """A new key for ``tenant`` and its plaintext, which is not kept and cannot be shown
        again; None if there is no such tenant."""
        key = new_key()
        now = datetime.now(UTC)
        with self._tx() as conn:
            if conn.execute(select(tenants.c.name).where(tenants.c.name == tenant)).first() is None:
                return None
            conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    tenant=tenant,
                    name=name,
                    salt=key.salt,
                    hash=key.hash,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        record = ApiKey(
            id=key.id,
            tenant=tenant,
            name=name,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
        return record, key.plaintext

    @_translate
    def authenticate(self, plaintext: str, *, now: datetime | None = None) -> ApiKey | None:
        """The key's record if ``plaintext`` is a valid, unrevoked, unexpired key."""
        parts = split_key(plaintext)
        if parts is None:
            return None
        key_id, secret = parts
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None or not verify_secret(row.salt, secret, row.hash):
            return None
        record = _key(row)
        return record if record.usable(now or datetime.now(UTC)) else None

    @_translate
    def list_keys(self, tenant: str) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(api_keys).where(api_keys.c.tenant == tenant).order_by(api_keys.c.created_at)
            ).all()
        return [_key(r) for r in rows]

    @_translate
    def revoke_key(self, tenant: str, key_id: str) -> ApiKey | None:
        """Revoke one of ``tenant``'s keys (again is a no-op); None if it has no such key."""
        where = (api_keys.c.id == key_id) & (api_keys.c.tenant == tenant)
        with self._tx() as conn:
            conn.execute(
                update(api_keys)
                .where(where & api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = conn.execute(select(api_keys).where(where)).first()
        return _key(row) if row else None

    # -- policy versions ---------------------------------------------------------------------

    @_translate
    def add_policy_version(
        self,
        tenant: str,
        *,
        version: str,
        policy: Mapping[str, Any],
        source: str,
        activate: bool = True,
    ) -> PolicyVersion | None:
        """Record a version of ``tenant``'s policy (a version seen before is reused) and, with
        ``activate``, make it the one in force; None if there is no such tenant."""
        with self._tx() as conn:
            if conn.execute(select(tenants.c.name).where(tenants.c.name == tenant)).first() is None:
                return None
            conn.execute(
                self._insert(policy_versions)
                .values(
                    tenant=tenant,
                    version=version,
                    policy=dict(policy),
                    source=source,
                    created_at=datetime.now(UTC),
                    active=False,
                )
                .on_conflict_do_nothing(index_elements=["tenant", "version"])
            )
            row = conn.execute(
                select(policy_versions).where(
                    (policy_versions.c.tenant == tenant) & (policy_versions.c.version == version)
                )
            ).one()
            if activate:
                row = self._activate(conn, tenant, row.id)
        return _policy(row)

    @_translate
    def activate_policy(self, tenant: str, version_id: int) -> PolicyVersion | None:
        """Put an earlier version back in force; None if ``tenant`` has no such version."""
        with self._tx() as conn:
            found = conn.execute(
                select(policy_versions.c.id).where(
                    (policy_versions.c.tenant == tenant) & (policy_versions.c.id == version_id)
                )
            ).first()
            if found is None:
                return None
            return _policy(self._activate(conn, tenant, version_id))

    def _activate(self, conn: Connection, tenant: str, version_id: int) -> Row[Any]:
        conn.execute(
            update(policy_versions)
            .where((policy_versions.c.tenant == tenant) & (policy_versions.c.id != version_id))
            .values(active=False)
        )
        conn.execute(
            update(policy_versions).where(policy_versions.c.id == version_id).values(active=True)
        )
        return conn.execute(select(policy_versions).where(policy_versions.c.id == version_id)).one()

    @_translate
    def active_policy(self, tenant: str) -> PolicyVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(policy_versions).where(
                    (policy_versions.c.tenant == tenant) & policy_versions.c.active
                )
            ).first()
        return _policy(row) if row else None

    @_translate
    def active_versions(self) -> dict[str, tuple[int, str]]:
        """Every tenant's policy in force as ``(id, version)`` (for the gateway's reload)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    policy_versions.c.tenant, policy_versions.c.id, policy_versions.c.version
                ).where(policy_versions.c.active)
            ).all()
        return {r.tenant: (r.id, r.version) for r in rows}

    @_translate
    def policy_versions(self, tenant: str) -> list[PolicyVersion]:
        """``tenant``'s policy versions, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(policy_versions)
                .where(policy_versions.c.tenant == tenant)
                .order_by(policy_versions.c.id)
            ).all()
        return [_policy(r) for r in rows]

    @_translate
    def get_policy_version(self, tenant: str, version_id: int) -> PolicyVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(policy_versions).where(
                    (policy_versions.c.tenant == tenant) & (policy_versions.c.id == version_id)
                )
            ).first()
        return _policy(row) if row else None

    # -- events ------------------------------------------------------------------------------

    @_translate
    def insert_events(self, batch: Sequence[Event]) -> None:
        """Write events; one whose id is already stored is skipped, so a batch may be written
        again (after a lost acknowledgement, or from the spool) without duplicates."""
        if not batch:
            return
        unique = list({e.id: e for e in reversed(batch)}.values())[::-1]
        with self._tx() as conn:
            if conn.dialect.name == "postgresql":
                inserted = copy_events(conn, unique)
            else:
                rows = [_raw_json_row(e) for e in unique]
                stmt = self._insert(events).on_conflict_do_nothing(index_elements=["id"])
                inserted = set(conn.scalars(stmt.returning(events.c.id), rows))
            # Monitoring rollups and review queue: only rows really inserted count.
            record_turns(conn, [e for e in unique if e.id in inserted])

    @_translate
    def list_events(
        self,
        tenant: str,
        *,
        limit: int = 100,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
    ) -> list[Event]:
        """``tenant``'s events, newest first."""
        query = select(events).where(events.c.tenant == tenant)
        if since is not None:
            query = query.where(events.c.time >= since)
        if until is not None:
            query = query.where(events.c.time < until)
        if action is not None:
            query = query.where(events.c.action == action)
        query = query.order_by(events.c.time.desc(), events.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_event(r) for r in rows]

    @_translate
    def get_event(self, tenant: str, event_id: str) -> Event | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(events).where((events.c.tenant == tenant) & (events.c.id == event_id))
            ).first()
        return _event(row) if row else None

    @_translate
    def count_events(self, tenant: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(events).where(events.c.tenant == tenant)
                ).scalar_one()
            )

    @_translate
    def delete_events(self, tenant: str, *, older_than: datetime) -> int:
        """Delete ``tenant``'s events (and their feedback) from before ``older_than``."""
        old = select(events.c.id).where((events.c.tenant == tenant) & (events.c.time < older_than))
        with self._tx() as conn:
            for table in (feedback, reviews):
                conn.execute(
                    delete(table).where(
                        (table.c.tenant == tenant) & table.c.event_id.in_(old.scalar_subquery())
                    )
                )
            return int(
                conn.execute(
                    delete(events).where((events.c.tenant == tenant) & (events.c.time < older_than))
                ).rowcount
            )

    def apply_retention(self, *, now: datetime | None = None) -> dict[str, int]:
        """Delete every tenant's events older than its ``retention_days``; how many, by tenant."""
        now = now or datetime.now(UTC)
        deleted = {}
        for tenant in self.list_tenants():
            if tenant.retention_days is not None:
                cutoff = now - timedelta(days=tenant.retention_days)
                deleted[tenant.name] = self.delete_events(tenant.name, older_than=cutoff)
        return deleted

    # -- feedback ----------------------------------------------------------------------------

    @_translate
    def add_feedback(
        self,
        tenant: str,
        event_id: str,
        *,
        rating: int,
        comment: str | None = None,
        corrected: str | None = None,
    ) -> Feedback | None:
        """Rate one of ``tenant``'s events, optionally with the answer it should have been; a
        down-vote (-1) puts the turn in the review queue. None if there is no such event."""
        now = datetime.now(UTC)
        with self._tx() as conn:
            owned = conn.execute(
                select(events.c.id).where((events.c.tenant == tenant) & (events.c.id == event_id))
            ).first()
            if owned is None:
                return None
            new_id = conn.execute(
                insert(feedback)
                .values(
                    tenant=tenant,
                    event_id=event_id,
                    rating=rating,
                    comment=_clean(comment),
                    corrected=_clean(corrected),
                    created_at=now,
                )
                .returning(feedback.c.id)
            ).scalar_one()
            if rating < 0:
                self._queue_downvote(conn, tenant, event_id)
        return Feedback(
            id=new_id,
            tenant=tenant,
            event_id=event_id,
            rating=rating,
            comment=comment,
            created_at=now,
            corrected=corrected,
        )

    @_translate
    def list_feedback(self, tenant: str) -> list[Feedback]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(feedback).where(feedback.c.tenant == tenant).order_by(feedback.c.id)
            ).all()
        return [Feedback.model_validate(r._mapping) for r in rows]


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _policy(row: Row[Any]) -> PolicyVersion:
    return PolicyVersion.model_validate(row._mapping)


# Event fields with columns of their own; the others are kept together in ``details``.
# A JSON-escaped NUL that is not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters: store U+FFFD instead, on every backend
    alike, so an event reads back the same wherever it was stored."""
    return value.replace("\x00", "\ufffd") if value is not None else None


def _raw_json_row(event: Event) -> dict[str, Any]:
    """The row for an engine whose JSON serializer passes :class:`RawJson` through (SQLite's,
    see ``_engine``): the JSON columns serialized once, straight from the event."""
    values = event_values(event)
    for name in JSON_COLUMNS:
        values[name] = RawJson(values[name])
    return values


def _event_row(event: Event) -> dict[str, Any]:
    text = event.model_dump_json()
    if "\\u0000" in text:  # rare: only then pay for the rewrite
        text = _NUL_ESCAPE.sub(r"\1\\ufffd", text)
    data = json.loads(text)
    latency, usage = data["latency"], data["usage"]
    details = {k: v for k, v in data.items() if k not in EVENT_COLUMNS}
    return {
        "id": data["id"],
        "tenant": data["tenant"],
        "user_id": data["user"],
        "conversation_id": data["conversation_id"],
        "policy": data["policy"],
        "policy_version": data["policy_version"],
        "model": data["model"],
        "input": data["input"],
        "output": data["output"],
        "action": data["action"],
        "actions": data["actions"],
        "verdicts": data["verdicts"],
        "revisions": data["revisions"],
        "reasks": data["reasks"],
        "input_guards_ms": latency["input_guards_ms"],
        "model_ms": latency["model_ms"],
        "output_guards_ms": latency["output_guards_ms"],
        "total_ms": latency["total_ms"],
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "error": data["error"],
        "time": event.time,
        "details": details or None,
    }


def _event(row: Row[Any]) -> Event:
    r = row._mapping
    return Event.model_validate(
        {
            "id": r["id"],
            "time": r["time"],
            "tenant": r["tenant"],
            "user": r["user_id"],
            "conversation_id": r["conversation_id"],
            "policy": r["policy"],
            "policy_version": r["policy_version"],
            "model": r["model"],
            "input": r["input"],
            "output": r["output"],
            "action": r["action"],
            "actions": r["actions"],
            "verdicts": r["verdicts"],
            "revisions": r["revisions"],
            "reasks": r["reasks"],
            "latency": {
                "input_guards_ms": r["input_guards_ms"],
                "model_ms": r["model_ms"],
                "output_guards_ms": r["output_guards_ms"],
                "total_ms": r["total_ms"],
            },
            "usage": {
                "prompt_tokens": r["prompt_tokens"],
                "completion_tokens": r["completion_tokens"],
            },
            "error": r["error"],
            **(r["details"] or {}),
        }
    )
