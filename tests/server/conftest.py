"""Fixtures for gateway tests (the harness is in gateway_harness.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import (
    ADMIN_KEY,
    BILLING_POLICY,
    SUPPORT_POLICY,
    RunningGateway,
    echo_model,
    run_gateway,
)

from tether.models import ChatModel
from tether.server import GatewayConfig, Limits, TenantConfig
from tether.server._config import hash_admin_key


@pytest.fixture
def policies(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name, text in (("support", SUPPORT_POLICY), ("billing", BILLING_POLICY)):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(text)
    return files


@pytest.fixture
def make_config(tmp_path: Path, policies: dict[str, Path]) -> Callable[..., GatewayConfig]:
    """A config with tenants acme (support policy) and globex (billing policy) on the echo
    model and a SQLite file; keyword arguments override fields."""

    def make(**fields: Any) -> GatewayConfig:
        values: dict[str, Any] = {
            "db": f"sqlite:///{tmp_path / 'gateway.db'}",
            "spool_dir": tmp_path / "spool",
            "admin_key_sha256": hash_admin_key(ADMIN_KEY),
            "model": "echo",
            "tenants": {
                "acme": TenantConfig(policy=policies["support"]),
                "globex": TenantConfig(policy=policies["billing"]),
            },
            "limits": Limits(tenant_rpm=None),
        }
        values.update(fields)
        return GatewayConfig(**values)

    return make


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningGateway]]:
    """Starts gateways (default upstream: the echo model), all stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(
            config: GatewayConfig, models: Mapping[str, ChatModel] | None = None
        ) -> RunningGateway:
            chosen = models if models is not None else {"echo": echo_model()}
            return stack.enter_context(run_gateway(config, chosen))

        yield start


@pytest.fixture
def gateway(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    return start_gateway(make_config())


@pytest.fixture
def acme_key(gateway: RunningGateway) -> str:
    return gateway.new_key("acme")


@pytest.fixture
def globex_key(gateway: RunningGateway) -> str:
    return gateway.new_key("globex")
