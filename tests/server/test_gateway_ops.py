"""Rate limits (in process, and shared through Redis), health, readiness and metrics."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gateway_harness import ADMIN_KEY, RunningGateway

from tether.pipeline import Event
from tether.server import GatewayConfig, Limits, TenantConfig
from tether.store import Store

CHAT = "/v1/chat/completions"
HELLO = {"model": "support", "messages": [{"role": "user", "content": "hello"}]}
REDIS = "redis://127.0.0.1:6379/0"


def statuses(gateway: RunningGateway, key: str, count: int, **body: object) -> list[int]:
    with gateway.http(key) as http:
        return [http.post(CHAT, json={**HELLO, **body}).status_code for _ in range(count)]


def test_per_tenant_limit_leaves_other_tenants_alone(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(make_config(limits=Limits(tenant_rpm=3)))
    first, second = gateway.new_key("acme"), gateway.new_key("acme")
    assert statuses(gateway, first, 2) + statuses(gateway, second, 2) == [200, 200, 200, 429]
    globex = gateway.new_key("globex")
    assert statuses(gateway, globex, 1, model="billing") == [200]


def test_per_key_and_per_user_limits(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(make_config(limits=Limits(tenant_rpm=None, key_rpm=2, user_rpm=1)))
    key, other_key = gateway.new_key("acme"), gateway.new_key("acme")
    assert statuses(gateway, key, 3) == [200, 200, 429]
    assert statuses(gateway, other_key, 1, user="ann") == [200]
    assert statuses(gateway, other_key, 1, user="ann") == [429]  # ann's turn is used up


@pytest.mark.redis
def test_a_limit_in_redis_is_shared_by_two_gateways(
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    redis_prefix: str,
) -> None:
    config = make_config(redis=REDIS, redis_prefix=redis_prefix, limits=Limits(tenant_rpm=4))
    one, two = start_gateway(config), start_gateway(config)
    key = one.new_key("acme")
    assert statuses(one, key, 2) + statuses(two, key, 2) == [200] * 4
    assert statuses(one, key, 1) + statuses(two, key, 1) == [429, 429]
    with two.http() as http:
        assert http.get("/readyz").json()["checks"]["redis"] == "ok"


def test_when_redis_is_down_requests_pass_and_readiness_says_so(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        gateway = start_gateway(make_config(redis=url, limits=Limits(tenant_rpm=1)))
        key = gateway.new_key("acme")
        assert statuses(gateway, key, 3) == [200] * 3
        with gateway.http() as http:
            ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unreachable")


def test_health_and_readiness(gateway: RunningGateway) -> None:
    with gateway.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "events_spooled": 0}}


def test_metrics_by_tenant_behind_the_admin_key(gateway: RunningGateway, acme_key: str) -> None:
    with gateway.http(acme_key) as http:
        http.post(CHAT, json=HELLO)
        http.post(CHAT, json={**HELLO, "messages": [{"role": "user", "content": "bitcoin?"}]})
        http.post(CHAT, json={**HELLO, "model": "nope"})
        assert http.get("/metrics").status_code == 403
    with gateway.http(ADMIN_KEY) as admin:
        text = admin.get("/metrics").text
    assert (
        'tether_requests_total{route="/v1/chat/completions",status="200",tenant="acme"} 2.0' in text
    )
    assert (
        'tether_requests_total{route="/v1/chat/completions",status="404",tenant="acme"} 1.0' in text
    )
    assert 'tether_turns_total{action="allow",tenant="acme"} 1.0' in text
    assert 'tether_turns_total{action="block",tenant="acme"} 1.0' in text
    assert 'tether_guard_actions_total{action="block",stage="input",tenant="acme"} 1.0' in text
    assert (
        'tether_request_duration_seconds_bucket{le="10.0",route="/v1/chat/completions",tenant="acme"}'
        in text
    )
    assert (
        'tether_turn_stage_duration_seconds_count{stage="input_guards",tenant="acme"} 2.0' in text
    )
    assert "tether_store_up 1.0" in text


def test_public_metrics(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(make_config(public_metrics=True))
    with gateway.http() as http:
        assert http.get("/metrics").status_code == 200


def test_retention_runs_at_start_and_keeps_recent_events(
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    policies: dict[str, Path],
) -> None:
    config = make_config(
        tenants={"acme": TenantConfig(policy=policies["support"], retention_days=7)}
    )
    now = datetime.now(UTC)
    old, recent = (
        Event(tenant="acme", policy="support", policy_version="v", model="m", input="i",
              output="o", action="allow", time=now - timedelta(days=days))
        for days in (8, 6)
    )  # fmt: skip
    with Store(config.db) as store:
        store.insert_events([old, recent])
    gateway = start_gateway(config)
    deadline = time.monotonic() + 30
    while gateway.gateway.store.get_event("acme", old.id) is not None:
        assert time.monotonic() < deadline, "retention did not run"
        time.sleep(0.05)
    assert gateway.gateway.store.get_event("acme", recent.id) is not None
