from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from tether.models import EmbeddedModel

SERVER_START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real llama-cpp-python server answering with SmolLM2."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("openai_server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(EmbeddedModel().model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
    ]
    # Output goes to a file, not a pipe that nobody reads and that could fill up and stall it.
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(server, base_url, log)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_ready(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited with status {server.returncode}:\n"
                f"{log.read_text(errors='replace')}"
            )
        try:
            if httpx.get(f"{base_url}/models", timeout=1.0).is_success:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    pytest.fail(
        f"llama_cpp.server did not answer within {SERVER_START_TIMEOUT_S:g}s:\n"
        f"{log.read_text(errors='replace')}"
    )


# PostgreSQL and Redis, as the development machines and CI run them. A test that needs one
# is marked `postgres` or `redis`; when the service is down it is skipped with the reason
# (deselect with -m "not postgres and not redis"), except under CI, where it fails.
POSTGRES_ADMIN_URL = os.environ.get(
    "TETHER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TETHER_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs PostgreSQL at $TETHER_TEST_POSTGRES")
    config.addinivalue_line("markers", "redis: needs Redis at $TETHER_TEST_REDIS")


def service_missing(what: str, detail: str) -> NoReturn:
    message = f"{what} is not reachable ({detail}); start it, or deselect these tests"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


@contextlib.contextmanager
def _postgres_database(prefix: str) -> Iterator[str]:
    """A new, uniquely named PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_url = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL at {POSTGRES_ADMIN_URL}", str(exc).strip())
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for this test session (tests keep apart by unique names)."""
    with _postgres_database("tether_test") as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database for one test alone (migrations, outages)."""
    with _postgres_database("tether_t") as url:
        yield url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        service_missing(f"Redis at {REDIS_URL}", str(exc))
    prefix = f"tether-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
