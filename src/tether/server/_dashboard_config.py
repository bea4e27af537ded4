"""The dashboard's part of the gateway config (``dashboard:``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DashboardConfig"]


class DashboardConfig(BaseModel):
    """The web dashboard at ``/``: who may log in is decided by the keys (the admin key sees
    every tenant, a tenant's key only its own); these are its other settings."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Serve the dashboard at /.")
    runs_dir: Path | None = Field(
        None,
        description="Folder of evaluation runs to list (relative to the config file); "
        "default: .tether/runs in the working directory, where `tether eval run` writes.",
    )
    session_ttl_s: float = Field(
        8 * 3600.0, gt=0, description="How long a login lasts before it must be repeated."
    )
    secret_env: str | None = Field(
        None,
        description="Environment variable holding the secret that signs session cookies; "
        "set it when several gateways share the load. Default: a random secret per process "
        "(a restart logs everyone out).",
    )

    def resolved_runs_dir(self) -> Path:
        return self.runs_dir if self.runs_dir is not None else Path(".tether/runs")
