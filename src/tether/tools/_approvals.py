"""Approvals: tool calls waiting for a person's decision, kept per tenant.

A store never shows or changes one tenant's approval to another: every method takes the
tenant, and an approval of another tenant is reported exactly like one that does not exist.
A pending approval nobody decides before ``expires_at`` becomes ``expired``, which denies the
call. Deciding and resuming are compare-and-set updates, so two approvers (or two resumes)
racing on one approval cannot both win.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tether.errors import ApprovalError, StoreError
from tether.policy import SideEffect

__all__ = [
    "Approval",
    "ApprovalStatus",
    "ApprovalStore",
    "MemoryApprovalStore",
    "SqliteApprovalStore",
    "new_approval",
]

ApprovalStatus = Literal["pending", "approved", "denied", "expired"]
_TIMED_OUT = "timed out: nobody decided in time, so the call is denied"


_T = TypeVar("_T")


def _now() -> datetime:
    return datetime.now(UTC)


class Approval(BaseModel):
    """A tool call the gate sent for approval, with what a person needs to decide it and
    what the agent loop needs to resume the conversation afterwards (``context``)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    tenant: str | None = None
    user: str | None = None
    conversation_id: str | None = None
    tool: str
    call_id: str
    arguments: dict[str, Any]
    side_effect: SideEffect | None = None
    reason: str
    findings: tuple[str, ...] = ()
    policy_version: str = ""
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime
    status: ApprovalStatus = "pending"
    approver: str | None = None
    decided_at: datetime | None = None
    note: str = ""
    approved_arguments: dict[str, Any] | None = Field(
        None, description="Set when the approver changed the arguments (a `modify`)."
    )
    resumed_at: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)

    @property
    def final_arguments(self) -> dict[str, Any]:
        """The arguments the call runs with if approved."""
        return self.approved_arguments if self.approved_arguments is not None else self.arguments


def new_approval(*, timeout_s: float, **fields: Any) -> Approval:
    """An approval that expires ``timeout_s`` seconds from now."""
    created = _now()
    return Approval(created_at=created, expires_at=created + timedelta(seconds=timeout_s), **fields)


@runtime_checkable
class ApprovalStore(Protocol):
    """Where approvals wait. Every method is scoped to one tenant (``None``: requests made
    without a tenant); another tenant's approval does not exist for it."""

    async def add(self, approval: Approval) -> None:
        """Keep a new pending approval."""
        ...

    async def get(self, approval_id: str, *, tenant: str | None) -> Approval:
        """One approval; raises :class:`ApprovalError` when the tenant has none by that id."""
        ...

    async def find(
        self, *, tenant: str | None, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        """The tenant's approvals, newest first, optionally of one status."""
        ...

    async def decide(
        self,
        approval_id: str,
        *,
        tenant: str | None,
        approve: bool,
        approver: str,
        note: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> Approval:
        """Approve (with changed ``arguments``: modify) or deny a pending approval."""
        ...

    async def claim(self, approval_id: str, *, tenant: str | None) -> Approval:
        """Mark a decided (or expired) approval resumed, once; the agent loop then carries on."""
        ...


class _Store:
    """The decision logic, over three primitives each store implements."""

    def _fetch(self, approval_id: str) -> Approval | None:
        raise NotImplementedError

    def _insert(self, approval: Approval) -> None:
        raise NotImplementedError

    def _swap(self, old: Approval, new: Approval) -> bool:
        """Replace ``old`` with ``new`` if the stored one is still in ``old``'s state."""
        raise NotImplementedError

    def _query(
        self, tenant: str | None, status: ApprovalStatus | None, limit: int
    ) -> list[Approval]:
        raise NotImplementedError

    def _expire(self, approval: Approval, now: datetime) -> Approval:
        if approval.status != "pending" or now < approval.expires_at:
            return approval
        expired = approval.model_copy(
            update={"status": "expired", "decided_at": approval.expires_at, "note": _TIMED_OUT}
        )
        if self._swap(approval, expired):
            return expired
        again = self._fetch(approval.id)
        return again if again is not None else expired

    def _scoped(self, approval_id: str, tenant: str | None) -> Approval:
        found = self._fetch(approval_id)
        if found is None or found.tenant != tenant:
            who = f"tenant '{tenant}'" if tenant is not None else "requests without a tenant"
            raise ApprovalError(
                f"there is no approval '{approval_id}' for {who}; list them with "
                "`tether approvals list` (and --tenant)"
            )
        return self._expire(found, _now())

    def get_sync(self, approval_id: str, *, tenant: str | None) -> Approval:
        return self._scoped(approval_id, tenant)

    def find_sync(
        self, *, tenant: str | None, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        now = _now()
        for waiting in self._query(tenant, "pending", 1_000_000):
            self._expire(waiting, now)  # so that the status filter sees timeouts
        return self._query(tenant, status, limit)

    def decide_sync(
        self,
        approval_id: str,
        *,
        tenant: str | None,
        approve: bool,
        approver: str,
        note: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> Approval:
        if not approver.strip():
            raise ApprovalError("say who decides: an approver name is required")
        if arguments is not None and not approve:
            raise ApprovalError("changed arguments only go with an approval, not a denial")
        current = self._scoped(approval_id, tenant)
        if current.status == "expired":
            raise ApprovalError(
                f"approval '{approval_id}' timed out at {current.expires_at:%Y-%m-%d %H:%M:%S} "
                "UTC; timeouts deny, so the call stays denied"
            )
        if current.status != "pending":
            raise ApprovalError(
                f"approval '{approval_id}' was already {current.status} by {current.approver} "
                f"at {current.decided_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        decided = current.model_copy(
            update={
                "status": "approved" if approve else "denied",
                "approver": approver.strip(),
                "decided_at": _now(),
                "note": note,
                "approved_arguments": arguments,
            }
        )
        if not self._swap(current, decided):
            raise ApprovalError(
                f"approval '{approval_id}' was decided by someone else meanwhile; "
                "`tether approvals show` it again"
            )
        return decided

    def claim_sync(self, approval_id: str, *, tenant: str | None) -> Approval:
        current = self._scoped(approval_id, tenant)
        if current.status == "pending":
            raise ApprovalError(
                f"approval '{approval_id}' is still pending: decide it first with "
                f"`tether approvals approve {approval_id}` or `tether approvals deny {approval_id}`"
            )
        if current.resumed_at is not None:
            raise ApprovalError(
                f"approval '{approval_id}' already resumed its conversation at "
                f"{current.resumed_at:%Y-%m-%d %H:%M:%S} UTC; a decision resumes it once"
            )
        claimed = current.model_copy(update={"resumed_at": _now()})
        if not self._swap(current, claimed):
            raise ApprovalError(f"approval '{approval_id}' is being resumed elsewhere")
        return claimed

    # The async protocol, once: a store whose primitives block runs them in a worker thread.
    _threaded = False

    async def _run(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        if self._threaded:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def add(self, approval: Approval) -> None:
        await self._run(self._insert, approval)

    async def get(self, approval_id: str, *, tenant: str | None) -> Approval:
        return await self._run(self.get_sync, approval_id, tenant=tenant)

    async def find(
        self, *, tenant: str | None, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        return await self._run(self.find_sync, tenant=tenant, status=status, limit=limit)

    async def decide(
        self,
        approval_id: str,
        *,
        tenant: str | None,
        approve: bool,
        approver: str,
        note: str = "",
        arguments: dict[str, Any] | None = None,
    ) -> Approval:
        return await self._run(
            self.decide_sync,
            approval_id,
            tenant=tenant,
            approve=approve,
            approver=approver,
            note=note,
            arguments=arguments,
        )

    async def claim(self, approval_id: str, *, tenant: str | None) -> Approval:
        return await self._run(self.claim_sync, approval_id, tenant=tenant)


class ThreadedApprovalStore(_Store):
    """The async protocol over a store whose primitives block (a database): each call runs
    the decision logic in a worker thread."""

    _threaded = True


class MemoryApprovalStore(_Store):
    """Approvals in memory, for tests, notebooks and single-process demos."""

    def __init__(self) -> None:
        self._items: dict[str, Approval] = {}
        self._lock = threading.Lock()

    def _fetch(self, approval_id: str) -> Approval | None:
        return self._items.get(approval_id)

    def _insert(self, approval: Approval) -> None:
        with self._lock:
            if approval.id in self._items:
                raise ApprovalError(f"approval '{approval.id}' exists already")
            self._items[approval.id] = approval

    def _swap(self, old: Approval, new: Approval) -> bool:
        with self._lock:
            stored = self._items.get(old.id)
            if stored is None or (stored.status, stored.resumed_at) != (
                old.status,
                old.resumed_at,
            ):
                return False
            self._items[old.id] = new
            return True

    def _query(
        self, tenant: str | None, status: ApprovalStatus | None, limit: int
    ) -> list[Approval]:
        rows = [
            a
            for a in self._items.values()
            if a.tenant == tenant and (status is None or a.status == status)
        ]
        return sorted(rows, key=lambda a: a.created_at, reverse=True)[:limit]


# Numbered migrations, applied in order on open; PRAGMA user_version records how far.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        tenant TEXT,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        resumed_at TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX approvals_by_tenant ON approvals (tenant, status, created_at);
    """,
)


class SqliteApprovalStore(ThreadedApprovalStore):
    """Approvals in a SQLite file (stdlib ``sqlite3``), shared by the process that runs the
    agent and ``tether approvals`` on the command line. Created, and migrated, on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > len(_MIGRATIONS):
                    raise StoreError(
                        f"{self.path} was written by a newer tether (schema {version}); "
                        "upgrade tether to read it"
                    )
                for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                    conn.executescript(
                        f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the approvals database {self.path}: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the approvals database {self.path}: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"the approvals database {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def _row(approval: Approval) -> tuple[Any, ...]:
        return (
            approval.status,
            approval.resumed_at.isoformat() if approval.resumed_at else None,
            approval.model_dump_json(),
        )

    def _fetch(self, approval_id: str) -> Approval | None:
        with self._connect() as conn:
            row = conn.execute("SELECT data FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return None if row is None else Approval.model_validate_json(row[0])

    def _insert(self, approval: Approval) -> None:
        with self._connect() as conn:
            try:
                conn.execute(
                    "INSERT INTO approvals "
                    "(id, tenant, created_at, expires_at, status, resumed_at, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        approval.id,
                        approval.tenant,
                        approval.created_at.isoformat(),
                        approval.expires_at.isoformat(),
                        *self._row(approval),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ApprovalError(f"approval '{approval.id}' exists already") from None

    def _swap(self, old: Approval, new: Approval) -> bool:
        with self._connect() as conn:
            cursor = conn.execute(
                "UPDATE approvals SET status = ?, resumed_at = ?, data = ? "
                "WHERE id = ? AND status = ? AND resumed_at IS ?",
                (
                    *self._row(new),
                    old.id,
                    old.status,
                    old.resumed_at.isoformat() if old.resumed_at else None,
                ),
            )
            return cursor.rowcount == 1

    def _query(
        self, tenant: str | None, status: ApprovalStatus | None, limit: int
    ) -> list[Approval]:
        sql = "SELECT data FROM approvals WHERE tenant IS ?"
        args: list[Any] = [tenant]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        sql += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [Approval.model_validate_json(r[0]) for r in rows]
