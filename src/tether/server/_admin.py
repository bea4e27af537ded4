"""The admin API (admin key only): tenants, API keys, policy versions with hot reload, and
any tenant's events."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tether.errors import PolicyError, Problem
from tether.policy import Policy, load_policy_text
from tether.policy._loader import parse_yaml
from tether.policy._schema import SLUG
from tether.store import ApiKey, PolicyVersion, Tenant

from ._config import overlay_for, valid_tenant_name
from ._errors import ApiError
from ._routes import gateway_of
from ._schemas import CreateKey, CreateTenant

__all__ = ["router"]

_bearer = HTTPBearer(auto_error=False, description="The admin key.")


async def admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    gateway_of(request).auth.admin(credentials.credentials if credentials else None)


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(admin)])


def _no_tenant(tenant: str) -> ApiError:
    return ApiError(404, f"no tenant {tenant!r}", code="tenant_not_found")


def _key_json(key: ApiKey) -> dict[str, Any]:
    return key.model_dump(mode="json")


def _version_json(version: PolicyVersion) -> dict[str, Any]:
    return version.model_dump(mode="json", exclude={"policy"})


@router.post("/tenants", status_code=201, summary="Create a tenant")
async def create_tenant(body: CreateTenant, request: Request) -> dict[str, Any]:
    if not valid_tenant_name(body.name):
        raise ApiError(400, f"a tenant name must match {SLUG}", param="name")
    store = gateway_of(request).store
    created = await asyncio.to_thread(
        store.create_tenant, body.name, retention_days=body.retention_days
    )
    if created is None:
        raise ApiError(409, f"tenant {body.name!r} exists", code="tenant_exists")
    return created.model_dump(mode="json")


@router.get("/tenants", summary="List tenants and their policy in force")
async def list_tenants(request: Request) -> dict[str, Any]:
    gateway = gateway_of(request)
    tenants: list[Tenant] = await asyncio.to_thread(gateway.store.list_tenants)
    data = []
    for tenant in tenants:
        runtime = gateway.runtime_or_none(tenant.name)
        data.append(
            tenant.model_dump(mode="json")
            | {"policy_version": runtime.version if runtime is not None else None}
        )
    return {"object": "list", "data": data}


@router.post("/tenants/{tenant}/keys", status_code=201, summary="Create an API key")
async def create_key(tenant: str, body: CreateKey, request: Request) -> dict[str, Any]:
    """The answer holds the key itself; it is shown this once and never stored."""
    store = gateway_of(request).store
    made = await asyncio.to_thread(
        store.create_key, tenant, name=body.name, expires_at=body.expires_at
    )
    if made is None:
        raise _no_tenant(tenant)
    record, plaintext = made
    return _key_json(record) | {"key": plaintext}


@router.get("/tenants/{tenant}/keys", summary="List a tenant's API keys (never the keys)")
async def list_keys(tenant: str, request: Request) -> dict[str, Any]:
    store = gateway_of(request).store
    if await asyncio.to_thread(store.get_tenant, tenant) is None:
        raise _no_tenant(tenant)
    keys = await asyncio.to_thread(store.list_keys, tenant)
    return {"object": "list", "data": [_key_json(k) for k in keys]}


@router.delete("/tenants/{tenant}/keys/{key_id}", summary="Revoke an API key")
async def revoke_key(tenant: str, key_id: str, request: Request) -> dict[str, Any]:
    gateway = gateway_of(request)
    revoked = await asyncio.to_thread(gateway.store.revoke_key, tenant, key_id)
    if revoked is None:
        raise ApiError(404, f"tenant {tenant!r} has no key {key_id!r}", code="key_not_found")
    gateway.auth.forget(key_id)
    return _key_json(revoked)


@router.put(
    "/tenants/{tenant}/policy",
    status_code=201,
    summary="Upload a policy and put it in force at once",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def put_policy(
    tenant: str,
    request: Request,
    overlay: Annotated[str | None, Query(description="The policy's tenant overlay to apply.")] = (
        None
    ),
) -> dict[str, Any]:
    """The body is a policy file (YAML), its tenant overlays inline. It is checked as
    ``tether policy check`` would; the new version is in force from the next request on, and
    earlier versions are kept (``POST .../policies/{id}/activate`` puts one back)."""
    gateway = gateway_of(request)
    if await asyncio.to_thread(gateway.store.get_tenant, tenant) is None:
        raise _no_tenant(tenant)
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the policy must be UTF-8 text") from None
    policy = await asyncio.to_thread(_load_upload, text, tenant, overlay)
    version = await gateway.put_policy(tenant, policy, text)
    if version is None:
        raise _no_tenant(tenant)
    return _version_json(version)


def _load_upload(text: str, tenant: str, overlay: str | None) -> Policy:
    file = f"<policy for {tenant}>"
    data, smap = parse_yaml(text, file)
    overlays = data.get("tenants") if isinstance(data, dict) else None
    if isinstance(overlays, dict):
        # An overlay file path would be read on the gateway's host: never from an upload.
        named = [name for name, value in overlays.items() if isinstance(value, str)]
        if named:
            raise PolicyError(
                [
                    smap.problem(("tenants", name), "write the overlay inline, not as a file path")
                    for name in named
                ]
            )
    policy = load_policy_text(text, file=file)
    chosen = overlay_for(policy, tenant, overlay)
    if chosen is not None and chosen not in policy.tenants:
        known = ", ".join(sorted(policy.tenants)) or "none"
        raise PolicyError([Problem(f"no tenant overlay {chosen!r} (it has: {known})", file)])
    return policy.for_tenant(chosen)


@router.get("/tenants/{tenant}/policies", summary="A tenant's policy versions, oldest first")
async def list_policies(tenant: str, request: Request) -> dict[str, Any]:
    store = gateway_of(request).store
    if await asyncio.to_thread(store.get_tenant, tenant) is None:
        raise _no_tenant(tenant)
    versions = await asyncio.to_thread(store.policy_versions, tenant)
    return {"object": "list", "data": [_version_json(v) for v in versions]}


@router.post(
    "/tenants/{tenant}/policies/{version_id}/activate",
    summary="Put an earlier policy version back in force",
)
async def activate_policy(tenant: str, version_id: int, request: Request) -> dict[str, Any]:
    version = await gateway_of(request).activate(tenant, version_id)
    if version is None:
        raise ApiError(
            404, f"tenant {tenant!r} has no policy version {version_id}", code="version_not_found"
        )
    return _version_json(version)


@router.get("/tenants/{tenant}/events", summary="A tenant's recent events")
async def tenant_events(
    tenant: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    gateway = gateway_of(request)
    await gateway.sink.flush()
    found = await asyncio.to_thread(gateway.store.list_events, tenant, limit=limit)
    return {"object": "list", "data": [e.model_dump(mode="json") for e in found]}
