"""The gateway as an ASGI app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tether import __version__
from tether.errors import ConfigError
from tether.models import ChatModel

from . import _admin, _approvals_api, _ops, _routes
from ._config import GatewayConfig
from ._dashboard import install_dashboard
from ._errors import install_error_handlers
from ._gateway import Gateway
from ._middleware import BodyLimit, RequestMetrics

__all__ = ["CONFIG_ENV", "app_from_environment", "create_app"]

# `tether serve --workers N` hands each worker process its config (as JSON) in this variable.
CONFIG_ENV = "TETHER_GATEWAY_CONFIG"

_DESCRIPTION = """\
An OpenAI-compatible gateway that guards every turn with the tenant's tether policy and
records it in the audit store. Point any OpenAI client at `/v1` with a tenant's API key.
Errors use OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
"""


def create_app(config: GatewayConfig, *, models: Mapping[str, ChatModel] | None = None) -> FastAPI:
    """The gateway for ``config``; it opens the store and loads policies when it starts.
    ``models`` maps model specs to ready instances, which win over loading the spec."""
    gateway = Gateway(config, models=models)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await gateway.start()
            yield
        finally:
            # Also after a failed start: what it opened (the database's pool) is closed.
            await gateway.stop()

    app = FastAPI(
        title="tether gateway",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    app.include_router(_routes.router)
    app.include_router(_admin.router)
    app.include_router(_ops.router)
    app.include_router(_approvals_api.router)
    if config.dashboard.enabled:
        install_dashboard(app, config.dashboard)
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=lambda: gateway.metrics)
    return app


def app_from_environment() -> FastAPI:
    """The gateway for the config in ``$TETHER_GATEWAY_CONFIG`` (what `tether serve --workers`
    sets for its worker processes)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise ConfigError(f"${CONFIG_ENV} is not set; start the gateway with `tether serve`")
    return create_app(GatewayConfig.model_validate_json(raw))
