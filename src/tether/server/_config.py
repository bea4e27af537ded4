"""The gateway's YAML config, checked like a policy: unknown fields are errors, and every
problem is reported at file:line."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tether.errors import ConfigError, ConfigFileError, PolicyError, Problem
from tether.policy import Policy, PolicySource, load_policy
from tether.policy._loader import parse_yaml, problems_from_validation
from tether.policy._schema import SLUG
from tether.store import data_dir, default_db_url

from ._dashboard_config import DashboardConfig

__all__ = [
    "GatewayConfig",
    "Limits",
    "TenantConfig",
    "Tracing",
    "Upstream",
    "load_gateway_config",
]

TENANT_NAME_LENGTH = 64
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Strict):
    """Request size and rate limits. A rate is requests per minute, with bursts up to that
    many; ``None`` turns a limit off."""

    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest request body accepted.")
    tenant_rpm: int | None = Field(600, gt=0, description="Per tenant, all its keys together.")
    key_rpm: int | None = Field(None, gt=0, description="Per API key.")
    user_rpm: int | None = Field(
        None, gt=0, description="Per end user (the request's `user` field), within a tenant."
    )


class Upstream(_Strict):
    """How long to wait for the upstream model, and when to stop calling it for a while."""

    timeout_s: float | None = Field(
        None,
        gt=0,
        description="Longest wait for an answer (for a stream: for each piece); default: the "
        "model's own limit (the policy's model.timeout_s for an HTTP upstream).",
    )
    failures_to_open: int = Field(
        5, ge=1, description="Failures in a row after which calls fail at once (502)."
    )
    open_s: float = Field(30.0, gt=0, description="How long calls fail at once before a probe.")


class Tracing(_Strict):
    """OpenTelemetry spans for every turn (GenAI semantic conventions); off by default."""

    enabled: bool = Field(False, description="Record each turn as OpenTelemetry spans.")
    otlp_endpoint: str | None = Field(
        None,
        pattern=r"^https?://",
        description="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; default: the "
        "process's global tracer provider.",
    )
    service_name: str = Field("tether-gateway", min_length=1)
    capture_content: bool = Field(False, description="Also record inputs and outputs.")


class TenantConfig(_Strict):
    """A tenant the gateway serves from a policy file."""

    policy: Path = Field(..., description="Policy YAML file, relative to the config file.")
    overlay: str | None = Field(
        None,
        description="Which of the policy's tenant overlays applies; default: the one named "
        "like this tenant, if the policy has it, else none.",
    )
    model: str | None = Field(None, description="Upstream model spec; default: the gateway's.")
    retention_days: int | None = Field(None, gt=0, description="Delete events older than this.")


class GatewayConfig(_Strict):
    """Everything `tether serve` needs."""

    db: str = Field(default_factory=default_db_url, description="SQLite or PostgreSQL URL.")
    redis: str | None = Field(
        None, description="redis://host:port/db for rate limits shared by several gateways."
    )
    redis_prefix: str = Field("tether", min_length=1, description="Prefix of every Redis key.")
    admin_key_sha256: Sha256Hex | None = Field(
        None, description="SHA-256 (hex) of the admin key: `printf %s KEY | sha256sum`."
    )
    admin_key_env: str | None = Field(
        None, description="Name of an environment variable that holds the admin key."
    )
    model: str | None = Field(
        None, description="Upstream model spec for every tenant; default: each policy's own."
    )
    spool_dir: Path | None = Field(
        None, description="Where events wait while the database is down; default: data dir."
    )
    limits: Limits = Limits()
    upstream: Upstream = Upstream()
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    public_metrics: bool = Field(False, description="Serve /metrics without the admin key.")
    policy_poll_s: float = Field(
        2.0, gt=0, description="How often to pick up policies activated by other gateways."
    )
    auth_cache_s: float = Field(
        2.0, ge=0, description="How long a checked API key is trusted before checking again."
    )
    retention_interval_s: float = Field(3600.0, gt=0, description="How often retention runs.")
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    monitoring: Path | None = Field(
        None, description="Monitoring file (alert rules, webhooks, drift), relative to the config."
    )
    tracing: Tracing = Tracing()

    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or data_dir() / "spool"

    def admin_key_hash(self) -> str | None:
        """The admin key's SHA-256, from the config or the environment; None: no admin API."""
        if self.admin_key_sha256 is not None:
            return self.admin_key_sha256
        if self.admin_key_env is not None:
            key = os.environ.get(self.admin_key_env)
            if not key:
                raise ConfigError(
                    f"admin_key_env names ${self.admin_key_env}, which is not set; set it to "
                    "the admin key"
                )
            return hash_admin_key(key)
        return None

    def load_tenant_policy(self, name: str) -> Policy:
        """Tenant ``name``'s policy file, resolved for its overlay."""
        tenant = self.tenants[name]
        policy = load_policy(tenant.policy)
        return policy.for_tenant(overlay_for(policy, name, tenant.overlay))


def overlay_for(policy: Policy, tenant: str, overlay: str | None) -> str | None:
    """The overlay a gateway tenant runs under: the one named, else the tenant's own name if
    the policy has an overlay of that name, else none."""
    if overlay is not None:
        return overlay
    return tenant if tenant in policy.tenants else None


def hash_admin_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def admin_key_matches(key: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_admin_key(key), expected_hash)


def load_gateway_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Load and check a gateway config file and the policy files it names.

    Raises :class:`ConfigFileError` listing every problem found, each with file:line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError([Problem("config file not found", str(p))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError([Problem(f"cannot read config file: {exc}", str(p))]) from None
    try:
        data, smap = parse_yaml(text, str(p))
    except PolicyError as exc:
        raise ConfigFileError(exc.problems) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(
            [Problem("a config must be a YAML mapping (key: value lines)", str(p), 1)]
        )
    source = PolicySource(smap)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(problems_from_validation(exc, source, (), GatewayConfig)) from None
    problems: list[Problem] = []
    tenants = {}
    for name, tenant in config.tenants.items():
        here = ("tenants", name)
        if not valid_tenant_name(name):
            problems.append(
                source.problem(here, f"tenant name {name!r} must match {SLUG}, at most 64 long")
            )
        policy_path = tenant.policy if tenant.policy.is_absolute() else p.parent / tenant.policy
        tenants[name] = tenant.model_copy(update={"policy": policy_path})
        try:
            policy = load_policy(policy_path)
        except PolicyError as exc:
            problems.append(source.problem((*here, "policy"), "the policy file has problems:"))
            problems.extend(exc.problems)
            continue
        if tenant.overlay is not None and tenant.overlay not in policy.tenants:
            known = ", ".join(sorted(policy.tenants)) or "none"
            problems.append(
                source.problem(
                    (*here, "overlay"),
                    f"{policy_path} has no tenant overlay {tenant.overlay!r} (it has: {known})",
                )
            )
    monitoring = config.monitoring
    if monitoring is not None:
        if not monitoring.is_absolute():
            monitoring = p.parent / monitoring
        from tether.monitor import load_monitoring

        try:
            load_monitoring(monitoring)
        except ConfigFileError as exc:
            problems.append(source.problem(("monitoring",), "the monitoring file has problems:"))
            problems.extend(exc.problems)
    if problems:
        raise ConfigFileError(problems)
    spool = config.spool_dir
    if spool is not None and not spool.is_absolute():
        spool = p.parent / spool
    runs_dir = config.dashboard.runs_dir
    if runs_dir is not None and not runs_dir.is_absolute():
        runs_dir = p.parent / runs_dir
    dashboard = config.dashboard.model_copy(update={"runs_dir": runs_dir})
    return config.model_copy(
        update={
            "tenants": tenants,
            "spool_dir": spool,
            "dashboard": dashboard,
            "monitoring": monitoring,
        }
    )


def valid_tenant_name(name: str) -> bool:
    return len(name) <= TENANT_NAME_LENGTH and re.match(SLUG, name) is not None
