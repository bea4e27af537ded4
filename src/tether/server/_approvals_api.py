"""The approvals API: tool calls an agent waits on, listed and decided over HTTP. A tenant's
key sees and decides only its tenant's approvals; the admin key sees every tenant's. The
agent that stopped resumes with ``rails.resume(id)`` once a call is decided."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from tether.errors import ApprovalError
from tether.store import StoreApprovalStore
from tether.tools import Approval, ApprovalStatus

from ._config import admin_key_matches
from ._errors import ApiError
from ._routes import gateway_of

__all__ = ["Caller", "approval_store", "decide_approval", "public_approval", "router"]

router = APIRouter(prefix="/v1/approvals", tags=["approvals"])
_bearer = HTTPBearer(auto_error=False, description="A tenant's API key, or the admin key.")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: ``tenant`` None is the admin (every tenant)."""

    tenant: str | None
    name: str


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    gateway = gateway_of(request)
    token = credentials.credentials if credentials else None
    if token is not None and gateway.admin_hash and admin_key_matches(token, gateway.admin_hash):
        return Caller(None, "admin")
    key = await gateway.auth.tenant_key(token)
    request.state.tenant = key.tenant
    await gateway.admit(key)
    return Caller(key.tenant, key.name or f"key {key.id}")


CallerDep = Annotated[Caller, Depends(caller)]


def approval_store(request: Request) -> StoreApprovalStore:
    store: StoreApprovalStore | None = getattr(request.app.state, "approvals", None)
    if store is None or store.store is not gateway_of(request).store:
        store = StoreApprovalStore(gateway_of(request).store)
        request.app.state.approvals = store
    return store


def public_approval(approval: Approval) -> dict[str, Any]:
    """An approval as the API shows it: without the conversation it carries for the resume."""
    return approval.model_dump(mode="json", exclude={"context"})


def _not_found(approval_id: str) -> ApiError:
    return ApiError(404, f"no approval {approval_id!r}", code="approval_not_found")


async def _scoped(store: StoreApprovalStore, approval_id: str, who: Caller) -> Approval:
    found = await asyncio.to_thread(store.lookup, approval_id)
    if found is None or (who.tenant is not None and found.tenant != who.tenant):
        raise _not_found(approval_id)
    return found


async def decide_approval(
    store: StoreApprovalStore,
    approval_id: str,
    who: Caller,
    *,
    approve: bool,
    approver: str | None,
    note: str,
    arguments: dict[str, Any] | None,
) -> Approval:
    """Decide an approval the caller may see; 404 if it may not, 409 if it is decided."""
    found = await _scoped(store, approval_id, who)
    try:
        return await store.decide(
            approval_id,
            tenant=found.tenant,
            approve=approve,
            approver=(approver or "").strip() or who.name,
            note=note,
            arguments=arguments,
        )
    except ApprovalError as exc:
        raise ApiError(409, str(exc), code="approval_decided") from None


class Decision(BaseModel):
    """A decision; ``arguments`` (approve only) replaces the call's arguments: a modify."""

    model_config = ConfigDict(extra="forbid")

    approver: str | None = Field(None, max_length=200, description="Default: the key's name.")
    note: str = Field("", max_length=2000)
    arguments: dict[str, Any] | None = None


class Denial(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approver: str | None = Field(None, max_length=200, description="Default: the key's name.")
    note: str = Field("", max_length=2000)


@router.get("", summary="Approvals, newest first")
async def list_approvals(
    request: Request,
    who: CallerDep,
    status: Annotated[
        Literal["pending", "approved", "denied", "expired", "all"], Query()
    ] = "pending",
    tenant: Annotated[str | None, Query(description="Admin key only: one tenant's.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    store = approval_store(request)
    wanted: ApprovalStatus | None = None if status == "all" else status
    if who.tenant is not None and tenant is not None and tenant != who.tenant:
        raise ApiError(403, "a tenant's key sees only its own tenant's approvals", param="tenant")
    scope = who.tenant or tenant
    if scope is None:
        found = await asyncio.to_thread(store.find_all, status=wanted, limit=limit)
    else:
        found = await store.find(tenant=scope, status=wanted, limit=limit)
    return {"object": "list", "data": [public_approval(a) for a in found]}


@router.get("/{approval_id}", summary="One approval")
async def get_approval(request: Request, who: CallerDep, approval_id: str) -> dict[str, Any]:
    return public_approval(await _scoped(approval_store(request), approval_id, who))


@router.post("/{approval_id}/approve", summary="Approve, optionally with changed arguments")
async def approve(
    request: Request, who: CallerDep, approval_id: str, body: Decision | None = None
) -> dict[str, Any]:
    body = body or Decision()
    decided = await decide_approval(
        approval_store(request),
        approval_id,
        who,
        approve=True,
        approver=body.approver,
        note=body.note,
        arguments=body.arguments,
    )
    return public_approval(decided)


@router.post("/{approval_id}/deny", summary="Deny")
async def deny(
    request: Request, who: CallerDep, approval_id: str, body: Denial | None = None
) -> dict[str, Any]:
    body = body or Denial()
    decided = await decide_approval(
        approval_store(request),
        approval_id,
        who,
        approve=False,
        approver=body.approver,
        note=body.note,
        arguments=None,
    )
    return public_approval(decided)
