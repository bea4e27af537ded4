"""The gateway on PostgreSQL: the audit trail survives the database going away mid-traffic."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from gateway_harness import RunningGateway
from sqlalchemy.engine import make_url

from tether.server import GatewayConfig
from tether.store import Store

pytestmark = pytest.mark.postgres

CHAT = "/v1/chat/completions"
WAIT_S = 60.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def database_down(url: str) -> Iterator[None]:
    """Refuse new connections to the database and end the open ones; let them back after."""
    parsed = make_url(url)
    name = parsed.database
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_chat_and_events_on_postgres(
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    fresh_postgres_url: str,
) -> None:
    gateway = start_gateway(make_config(db=fresh_postgres_url))
    key = gateway.new_key("acme")
    with gateway.http(key) as http:
        body = {"model": "support", "messages": [{"role": "user", "content": "hi"}]}
        event_id = http.post(CHAT, json=body).json()["tether"]["event_id"]
        assert http.get(f"/v1/events/{event_id}").json()["tenant"] == "acme"


def test_database_killed_mid_traffic_loses_no_event_and_writes_none_twice(
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    fresh_postgres_url: str,
) -> None:
    # Keys checked once are trusted for the whole test: the requests need no database.
    gateway = start_gateway(make_config(db=fresh_postgres_url, auth_cache_s=600))
    key = gateway.new_key("acme")
    sink = gateway.gateway.sink
    answered: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with gateway.http(key) as http:
            for i in range(1000):
                if stop.is_set():
                    return
                body = {"model": "support", "messages": [{"role": "user", "content": f"q{i}"}]}
                answered.append(http.post(CHAT, json=body).status_code)
                time.sleep(0.005)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        wait_for(lambda: len(answered) >= 20 and sink.stats().written > 0, "traffic to start")
        with database_down(fresh_postgres_url):
            wait_for(lambda: sink.stats().spooled >= 20, "events to be spooled")
            with gateway.http() as http:
                ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("unreachable")
        wait_for(lambda: sink.stats().replayed > 0, "the spool to be replayed")
        wait_for(lambda: len(answered) >= 150, "traffic after the outage")
    finally:
        stop.set()
        sender.join(WAIT_S)
    assert set(answered) == {200}  # the gateway answered throughout
    wait_for(lambda: sink.stats().buffered == 0, "the buffer to drain")
    with Store(fresh_postgres_url) as store:
        wait_for(lambda: store.count_events("acme") >= len(answered), "every event")
        events = store.list_events("acme", limit=10_000)
    stats = sink.stats()
    assert stats.spooled >= 20 and stats.replayed == stats.spooled and stats.rejected == 0
    assert len(events) == len(answered)
    assert len({e.id for e in events}) == len(events)
    assert sorted(int(e.input[1:]) for e in events) == list(range(len(answered)))
