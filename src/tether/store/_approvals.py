"""Approvals in the audit store: the agent that waits and the gateway's dashboard and
approvals API that decide share one database (SQLite or PostgreSQL), so several gateways
and agent processes see the same approvals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.exc import IntegrityError

from tether.errors import ApprovalError
from tether.tools import Approval, ApprovalStatus, ThreadedApprovalStore

from ._store import Store, _translate
from ._tables import approvals

__all__ = ["StoreApprovalStore"]


class StoreApprovalStore(ThreadedApprovalStore):
    """An :class:`~tether.tools.ApprovalStore` in ``store``'s ``approvals`` table. Besides
    the tenant-scoped protocol it answers an administrator's questions across tenants
    (:meth:`lookup`, :meth:`find_all`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @_translate
    def _fetch(self, approval_id: str) -> Approval | None:
        with self.store.engine.connect() as conn:
            data = conn.execute(
                select(approvals.c.data).where(approvals.c.id == approval_id)
            ).scalar_one_or_none()
        return None if data is None else Approval.model_validate_json(data)

    @_translate
    def _insert(self, approval: Approval) -> None:
        try:
            with self.store._tx() as conn:
                conn.execute(insert(approvals).values(**_row(approval)))
        except IntegrityError:
            raise ApprovalError(f"approval '{approval.id}' exists already") from None

    @_translate
    def _swap(self, old: Approval, new: Approval) -> bool:
        resumed: ColumnElement[bool] = (
            approvals.c.resumed_at.is_(None)
            if old.resumed_at is None
            else approvals.c.resumed_at == old.resumed_at
        )
        where = (approvals.c.id == old.id) & (approvals.c.status == old.status) & resumed
        with self.store._tx() as conn:
            done = conn.execute(
                update(approvals)
                .where(where)
                .values(status=new.status, resumed_at=new.resumed_at, data=new.model_dump_json())
            )
            return int(done.rowcount) == 1

    @_translate
    def _query(
        self, tenant: str | None, status: ApprovalStatus | None, limit: int
    ) -> list[Approval]:
        query = select(approvals.c.data).where(
            approvals.c.tenant.is_(None) if tenant is None else approvals.c.tenant == tenant
        )
        return self._rows(query, status, limit)

    def _rows(self, query: Any, status: ApprovalStatus | None, limit: int) -> list[Approval]:
        if status is not None:
            query = query.where(approvals.c.status == status)
        query = query.order_by(approvals.c.created_at.desc(), approvals.c.id).limit(limit)
        with self.store.engine.connect() as conn:
            return [Approval.model_validate_json(d) for d in conn.execute(query).scalars()]

    # -- across tenants (the administrator's view) ---------------------------------------------

    def lookup(self, approval_id: str) -> Approval | None:
        """Any tenant's approval by id (timed out if its time is up); None if there is none."""
        found = self._fetch(approval_id)
        return None if found is None else self.get_sync(found.id, tenant=found.tenant)

    @_translate
    def find_all(self, *, status: ApprovalStatus | None = None, limit: int = 100) -> list[Approval]:
        """Every tenant's approvals, newest first, optionally of one status."""
        with self.store.engine.connect() as conn:
            waiting = conn.execute(
                select(approvals.c.tenant).where(approvals.c.status == "pending").distinct()
            ).scalars()
            tenants = list(waiting)
        for tenant in tenants:
            self.find_sync(tenant=tenant, status="pending", limit=1)  # so timeouts show
        return self._rows(select(approvals.c.data), status, limit)


def _row(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "tenant": approval.tenant,
        "tool": approval.tool,
        "status": approval.status,
        "created_at": approval.created_at,
        "expires_at": approval.expires_at,
        "resumed_at": approval.resumed_at,
        "data": approval.model_dump_json(),
    }
