"""`tether serve` as real processes: one on SQLite, two sharing PostgreSQL and Redis, and the
demo on the embedded model."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from gateway_harness import ADMIN_KEY, SUPPORT_POLICY

from tether.server._config import hash_admin_key
from tether.store import Store

pytestmark = pytest.mark.server

START_TIMEOUT_S = 120.0  # imports and, for the demo, the embedding model, on a busy machine
HELLO = [{"role": "user", "content": "hello"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(args: list[str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    command = [sys.executable, "-m", "tether", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"tether serve exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"tether serve did not get ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def config_file(tmp_path: Path, db: str, *extra: str) -> Path:
    (tmp_path / "support.yaml").write_text(SUPPORT_POLICY)
    (tmp_path / "replies.yaml").write_text("- Hello from upstream.\n" * 20)
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "\n".join(
            [
                f"db: {db}",
                f"admin_key_sha256: {hash_admin_key(ADMIN_KEY)}",
                f"model: scripted:{tmp_path / 'replies.yaml'}",
                f"spool_dir: {tmp_path / 'spool'}",
                "policy_poll_s: 0.2",
                "tenants:",
                "  acme: {policy: support.yaml}",
                *extra,
            ]
        )
        + "\n"
    )
    return path


def new_key(url: str) -> str:
    answer = httpx.post(
        f"{url}/admin/tenants/acme/keys",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["key"]
    return key


def test_serve_answers_and_keeps_every_event_through_shutdown(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    with serve(["--config", str(config_file(tmp_path, db))], tmp_path / "log") as (url, process):
        with openai.OpenAI(base_url=f"{url}/v1", api_key=new_key(url), max_retries=0) as client:
            for _ in range(5):
                completion = client.chat.completions.create(model="support", messages=HELLO)
                assert completion.choices[0].message.content == "Hello from upstream."
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    with Store(db) as store:
        assert store.count_events("acme") == 5  # the buffer was written out on shutdown


def test_workers_share_the_port_and_every_event_is_kept(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"
    log = tmp_path / "log"
    args = ["--config", str(config_file(tmp_path, db)), "--workers", "2"]
    with serve(args, log) as (url, process):
        with openai.OpenAI(base_url=f"{url}/v1", api_key=new_key(url), max_retries=0) as client:
            for _ in range(10):
                completion = client.chat.completions.create(model="support", messages=HELLO)
                assert completion.choices[0].message.content == "Hello from upstream."
        # Whichever worker answers /metrics, it counts the turns of both.
        for _ in range(4):
            metrics = httpx.get(
                f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
            ).text
            turns = re.findall(
                r'^tether_turns_total\{action="allow",tenant="acme"\} (\S+)$', metrics, re.M
            )
            assert [float(t) for t in turns] == [10.0], metrics
            assert "tether_events_buffered" in metrics
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    workers = set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))
    assert len(workers) == 2, log.read_text()
    with Store(db) as store:
        assert store.count_events("acme") == 10


@pytest.mark.postgres
@pytest.mark.redis
def test_two_gateways_share_postgres_and_redis(
    tmp_path: Path, fresh_postgres_url: str, redis_prefix: str
) -> None:
    config = config_file(
        tmp_path,
        fresh_postgres_url,
        "redis: redis://127.0.0.1:6379/0",
        f"redis_prefix: {redis_prefix}",
        "limits: {tenant_rpm: 6}",
    )
    with (
        serve(["--config", str(config)], tmp_path / "one.log") as (one, _),
        serve(["--config", str(config)], tmp_path / "two.log") as (two, _),
        contextlib.ExitStack() as closing,
    ):
        key = new_key(one)
        clients = [
            closing.enter_context(openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0))
            for url in (one, two)
        ]
        for i in range(6):
            clients[i % 2].chat.completions.create(model="support", messages=HELLO)
        for client in clients:  # the tenant's six a minute are used up on both
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="support", messages=HELLO)
        stricter = SUPPORT_POLICY.replace("terms: [bitcoin]", "terms: [bitcoin, hello]")
        uploaded = httpx.put(
            f"{one}/admin/tenants/acme/policy",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            content=stricter,
            timeout=30,
        )
        assert uploaded.status_code == 201
        deadline = time.monotonic() + 30
        while True:
            listed = httpx.get(
                f"{two}/admin/tenants", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ).json()["data"]
            if listed[0]["policy_version"] == uploaded.json()["version"]:
                break
            assert time.monotonic() < deadline, "the second gateway kept the old policy"
            time.sleep(0.1)
        events = httpx.get(
            f"{two}/admin/tenants/acme/events", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
    assert len(events.json()["data"]) == 6  # both gateways' turns, in the one database


@pytest.mark.embedded
def test_demo_on_the_embedded_model(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with serve(["--demo", "--log-level", "warning"], log) as (url, _):
        keys = dict(re.findall(r"^  (\w+) +(\S+)$", log.read_text(), re.MULTILINE))
        assert set(keys) == {"admin", "northbank", "southbank", "clinic"}
        # On a busy 2-core machine one embedded turn can take minutes: generous time limits.
        with (
            openai.OpenAI(base_url=f"{url}/v1", api_key=keys["northbank"], timeout=600) as north,
            openai.OpenAI(base_url=f"{url}/v1", api_key=keys["southbank"], timeout=600) as south,
        ):
            # Greedy decoding, so that every run gets the same answer. Sampled, one CI run's
            # answer came back blocked (2026-11-29), which says nothing about the demo; the
            # response is printed if it happens again, guards included.
            answer = north.chat.completions.create(
                model="bank-support",
                messages=[{"role": "user", "content": "How do I reset my card PIN?"}],
                temperature=0,
                seed=7,
            )
            assert answer.choices[0].message.content
            assert answer.tether["action"] in ("allow", "redact"), answer.model_dump()  # type: ignore[attr-defined]
            version = answer.tether["policy_version"]  # type: ignore[attr-defined]
            assert version.startswith("bank-support/northbank@")
            refused = south.chat.completions.create(
                model="bank-support",
                messages=[{"role": "user", "content": "Should I buy bitcoin?"}],
            )
            assert refused.choices[0].finish_reason == "content_filter"
