"""The gateway: an OpenAI-compatible, multi-tenant guarded API over the audit store
(`tether serve`)."""

from ._app import CONFIG_ENV, app_from_environment, create_app
from ._config import GatewayConfig, Limits, TenantConfig, Upstream, load_gateway_config
from ._errors import ApiError
from ._gateway import Gateway, TenantRuntime
from ._upstream import GuardedUpstream

__all__ = [
    "CONFIG_ENV",
    "ApiError",
    "Gateway",
    "GatewayConfig",
    "GuardedUpstream",
    "Limits",
    "TenantConfig",
    "TenantRuntime",
    "Upstream",
    "app_from_environment",
    "create_app",
    "load_gateway_config",
]
