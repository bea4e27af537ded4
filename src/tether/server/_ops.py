"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from tether.errors import StoreError

from ._ratelimit import RedisRateLimiter
from ._routes import gateway_of

__all__ = ["router"]

router = APIRouter(tags=["operations"])
_bearer = HTTPBearer(auto_error=False, description="The admin key (unless metrics are public).")
_READY_TIMEOUT_S = 5.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database (and Redis, if configured) answer")
async def readyz(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    checks: dict[str, Any] = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(gateway.store.ping), _READY_TIMEOUT_S)
        checks["database"] = "ok"
    except (StoreError, TimeoutError) as exc:
        checks["database"] = f"unreachable: {exc}" if str(exc) else "unreachable: timed out"
    if isinstance(gateway.limiter, RedisRateLimiter):
        try:
            await asyncio.wait_for(gateway.limiter.ping(), _READY_TIMEOUT_S)
            checks["redis"] = "ok"
        except (RedisError, OSError, TimeoutError) as exc:
            checks["redis"] = f"unreachable: {exc}"
    checks["events_spooled"] = await asyncio.to_thread(gateway.sink.spool.pending)
    ready = all(v == "ok" for k, v in checks.items() if k in ("database", "redis"))
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Per-tenant figures, so the admin key is needed unless the config sets
    ``public_metrics: true``."""
    gateway = gateway_of(request)
    if not gateway.config.public_metrics:
        gateway.auth.admin(credentials.credentials if credentials else None)
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
