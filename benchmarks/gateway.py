"""Gateway overhead over calling the same upstream directly, gateway throughput, and event
ingest into SQLite and PostgreSQL.

    .venv/bin/python benchmarks/gateway.py [--rounds 300] [--events 20000] [--postgres URL]
    .venv/bin/python benchmarks/gateway.py --in-process 1000
    .venv/bin/python benchmarks/gateway.py --workers 2 --events 2000


A fake OpenAI-compatible upstream (answers at once) and `tether serve` run as separate
processes on 127.0.0.1; the client sends a 1 KB message, sequentially, straight to the
upstream and through the gateway (a tenant with no guards, and one with a typical policy:
length, invisible text, deny list, the injection / jailbreak / prompt-extraction scan that
`tether scan` runs by default, output PII and secrets). Overhead is the difference of the
medians (and of the p99s). Throughput: 16 concurrent clients for --seconds. Ingest: batches of
500 events with five verdicts each, written by Store.insert_events and through StoreSink.
--in-process N: the gateway's own CPU per guarded turn, without HTTP on either side (the app
on an in-process ASGI transport, the upstream replaced by the scripted model).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "bench-admin-key"
MESSAGE = (
    "Hello, I was charged twice for my groceries yesterday and I can't see the refund yet. "
    "My card ends in 4821 and I use the app on Android. Could you tell me how long a "
    "refund usually takes, whether I should cancel the card, and if there is a fee for a "
    "replacement? I also noticed the app logs me out every few minutes, which is annoying. "
) * 3
MESSAGE = MESSAGE[:1024]
ANSWER = "Refunds usually arrive within three to five working days. " * 4

BARE_POLICY = "name: bare\nidentity: {purpose: Answer questions.}\n"
TYPICAL_POLICY = """
name: typical
identity: {purpose: Answer questions about cards and accounts.}
guards:
  input:
    - guard: length
      params: {max_chars: 4000}
    - guard: invisible_text
      action: redact
    - guard: deny_list
      params: {terms: [bitcoin, crypto]}
    - guard: injection
    - guard: jailbreak
    - guard: prompt_extraction
  output:
    - guard: pii
      params: {entities: [CREDIT_CARD, IBAN, US_SSN], mode: mask}
      action: redact
    - guard: secrets
"""


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The fake upstream: a raw ASGI app that answers every request with one completion."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 256, "completion_tokens": 48, "total_tokens": 304},
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process(command: list[str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{command} exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(ready_url, timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{command} did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_posts(
    url: str, headers: dict[str, str], body: dict[str, Any], rounds: int
) -> list[float]:
    with httpx.Client(headers=headers, timeout=30) as client:
        for _ in range(30):  # warm up: connections, caches, lazy imports
            client.post(url, json=body).raise_for_status()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return times


def throughput(url: str, headers: dict[str, str], body: dict[str, Any], seconds: float) -> float:
    async def run() -> int:
        done = 0
        stop_at = time.monotonic() + seconds
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < stop_at:
                    (await client.post(url, json=body)).raise_for_status()
                    done += 1

            await asyncio.gather(*(worker() for _ in range(16)))
        return done

    return asyncio.run(run()) / seconds


def wrk_throughput(
    url: str, headers: dict[str, str], body: dict[str, Any], seconds: float, folder: Path
) -> float | None:
    """Requests/s measured by wrk (a C load generator, far lighter than a Python client), or
    None when wrk is not installed (`apt-get install wrk`)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = folder / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    for name, value in {**headers, "Content-Type": "application/json"}.items():
        lines.append(f'wrk.headers["{name}"] = {json.dumps(value)}')
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [wrk, "-t2", "-c16", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if found is None or errors is not None:
        raise RuntimeError(f"wrk failed or saw errors:\n{done.stdout}\n{done.stderr}")
    return float(found[1])


def gateway_rows(
    rounds: int, seconds: float, folder: Path, workers: int = 1
) -> list[tuple[str, str, str]]:
    up_port, gw_port = free_port(), free_port()
    (folder / "bare.yaml").write_text(BARE_POLICY)
    (folder / "typical.yaml").write_text(TYPICAL_POLICY)
    from tether.server._config import hash_admin_key

    (folder / "gateway.yaml").write_text(
        f"db: sqlite:///{folder / 'gateway.db'}\n"
        f"spool_dir: {folder / 'spool'}\n"
        f"admin_key_sha256: {hash_admin_key(ADMIN_KEY)}\n"
        f"model: openai:fake@http://127.0.0.1:{up_port}/v1\n"
        "limits: {tenant_rpm: null}\n"
        "tenants:\n  bare: {policy: bare.yaml}\n  typical: {policy: typical.yaml}\n"
    )
    upstream = [sys.executable, __file__, "--serve-upstream", str(up_port)]
    # One worker is pinned to one core; several share the machine (with the client and upstream).
    gateway = [
        *(["taskset", "-c", "0"] if _taskset() and workers == 1 else []),
        sys.executable, "-m", "tether", "serve", "--config", str(folder / "gateway.yaml"),
        "--port", str(gw_port), "--log-level", "warning", "--workers", str(workers),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{gw_port}"
    rows = []
    with (
        process(upstream, f"http://127.0.0.1:{up_port}/", folder / "upstream.log"),
        process(gateway, f"{base}/healthz", folder / "gateway.log"),
    ):
        keys = {}
        for tenant in ("bare", "typical"):
            answer = httpx.post(
                f"{base}/admin/tenants/{tenant}/keys",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                json={},
            )
            keys[tenant] = answer.json()["key"]
        messages = [{"role": "user", "content": MESSAGE}]
        direct = timed_posts(
            f"http://127.0.0.1:{up_port}/v1/chat/completions",
            {},
            {"model": "fake", "messages": messages},
            rounds,
        )
        rows.append(
            (
                "upstream called directly",
                f"{statistics.median(direct):.2f}",
                f"{percentile(direct, 0.99):.2f}",
            )
        )
        for tenant, model in (("bare", "bare"), ("typical", "typical")):
            via = timed_posts(
                f"{base}/v1/chat/completions",
                {"Authorization": f"Bearer {keys[tenant]}"},
                {"model": model, "messages": messages},
                rounds,
            )
            rows.append(
                (
                    f"through the gateway, {tenant} policy",
                    f"{statistics.median(via):.2f}",
                    f"{percentile(via, 0.99):.2f}",
                )
            )
            rows.append(
                (
                    f"**gateway overhead, {tenant} policy**",
                    f"{statistics.median(via) - statistics.median(direct):.2f}",
                    f"{percentile(via, 0.99) - percentile(direct, 0.99):.2f}",
                )
            )
        for what, target, auth, payload in (
            ("the upstream directly", f"http://127.0.0.1:{up_port}", {}, "fake"),
            ("through the gateway, typical policy", base, {"Authorization": f"Bearer {keys['typical']}"}, "typical"),
        ):  # fmt: skip
            rate_wrk = wrk_throughput(
                f"{target}/v1/chat/completions",
                auth,
                {"model": payload, "messages": messages},
                seconds,
                folder,
            )
            if rate_wrk is not None:
                rows.append(
                    (
                        f"throughput (wrk, 16 connections), {what}, {workers} worker(s)",
                        f"{rate_wrk:.0f} requests/s",
                        "",
                    )
                )
        ceiling = throughput(
            f"http://127.0.0.1:{up_port}/v1/chat/completions",
            {},
            {"model": "fake", "messages": messages},
            seconds,
        )
        rows.append(
            (
                "throughput, upstream directly, 16 concurrent clients (the harness's ceiling)",
                f"{ceiling:.0f} requests/s",
                "",
            )
        )
        rate = throughput(
            f"{base}/v1/chat/completions",
            {"Authorization": f"Bearer {keys['typical']}"},
            {"model": "typical", "messages": messages},
            seconds,
        )
        rows.append(
            (
                f"throughput, typical policy, 16 concurrent clients, {workers} worker(s)",
                f"{rate:.0f} requests/s",
                "",
            )
        )
    return rows


def _taskset() -> bool:
    return os.environ.get("BENCH_PIN") == "1"


def sample_events(n: int, tenant: str) -> list[Any]:
    from tether.guards import Span, Verdict
    from tether.models import Usage
    from tether.pipeline import Event, Latency

    verdicts = tuple(
        Verdict(guard=name, kind=name, stage="input", flagged=name == "pii", score=0.1,
                reason="ok" if name != "pii" else "an e-mail address",
                spans=(Span(start=3, end=20, label="EMAIL"),) if name == "pii" else (),
                latency_ms=0.2)
        for name in ("length", "invisible_text", "deny_list", "pii", "secrets")
    )  # fmt: skip
    return [
        Event(
            tenant=tenant,
            user=f"user-{i % 100}",
            policy="typical",
            policy_version="typical@0123456789ab",
            model="openai:fake",
            input=MESSAGE[:300],
            output=ANSWER,
            action="allow",
            verdicts=verdicts,
            latency=Latency(
                input_guards_ms=1.0, model_ms=20.0, output_guards_ms=0.5, total_ms=22.0
            ),
            usage=Usage(prompt_tokens=256, completion_tokens=48),
        )
        for i in range(n)
    ]


def ingest_rows(url: str, label: str, count: int, folder: Path) -> list[tuple[str, str, str]]:
    from tether.store import Store, StoreSink

    rows = []
    with Store(url) as store:
        tenant = f"bench{uuid.uuid4().hex[:8]}"
        events = sample_events(count, tenant)
        start = time.perf_counter()
        for i in range(0, count, 500):
            store.insert_events(events[i : i + 500])
        elapsed = time.perf_counter() - start
        rows.append(
            (
                f"{label}: Store.insert_events, batches of 500",
                f"{count / elapsed:,.0f} events/s",
                "",
            )
        )
        events = sample_events(count, tenant)

        async def through_sink() -> float:
            sink = StoreSink(store, folder / f"spool-{label}")
            begin = time.perf_counter()
            for event in events:
                await sink.emit(event)
            await sink.aclose()
            return time.perf_counter() - begin

        elapsed = asyncio.run(through_sink())
        assert store.count_events(tenant) == 2 * count
        rows.append(
            (f"{label}: StoreSink (emit, batching, close)", f"{count / elapsed:,.0f} events/s", "")
        )
    return rows


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str | None]:
    try:
        import psycopg

        conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        yield None
        return
    name = f"tether_bench_{uuid.uuid4().hex[:8]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def in_process(turns: int, folder: Path) -> None:
    from tether.models import ScriptedModel
    from tether.server import create_app
    from tether.server._config import hash_admin_key, load_gateway_config

    (folder / "typical.yaml").write_text(TYPICAL_POLICY)
    (folder / "gateway.yaml").write_text(
        f"db: sqlite:///{folder / 'gateway.db'}\nspool_dir: {folder / 'spool'}\n"
        f"admin_key_sha256: {hash_admin_key(ADMIN_KEY)}\nmodel: fake\n"
        "limits: {tenant_rpm: null}\ntenants:\n  typical: {policy: typical.yaml}\n"
    )
    model = ScriptedModel([ANSWER], repeat_last=True, name="fake")
    app = create_app(load_gateway_config(folder / "gateway.yaml"), models={"fake": model})

    async def run() -> tuple[float, float]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                made = await client.post("/admin/tenants/typical/keys", headers=admin, json={})
                headers = {"Authorization": f"Bearer {made.json()['key']}"}
                body = {"model": "typical", "messages": [{"role": "user", "content": MESSAGE}]}
                for _ in range(50):  # warm-up
                    await client.post("/v1/chat/completions", headers=headers, json=body)
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(turns):
                    answer = await client.post("/v1/chat/completions", headers=headers, json=body)
                    assert answer.status_code == 200, answer.text
                return time.process_time() - cpu, time.perf_counter() - wall

    cpu, wall = asyncio.run(run())
    print(f"in process, typical policy, {turns} turns: {1000 * cpu / turns:.2f} ms CPU and "
          f"{1000 * wall / turns:.2f} ms wall per turn (client included)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-process", type=int, metavar="N", help="only the in-process cost")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        import uvicorn

        uvicorn.run(upstream_app, host="127.0.0.1", port=args.serve_upstream, log_level="warning")
        return
    if args.in_process:
        with tempfile.TemporaryDirectory() as tmp:
            in_process(args.in_process, Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = gateway_rows(args.rounds, args.seconds, folder, args.workers)
        ingest = ingest_rows(f"sqlite:///{folder / 'ingest.db'}", "SQLite", args.events, folder)
        with postgres_database(args.postgres) as pg:
            if pg is not None:
                ingest += ingest_rows(pg, "PostgreSQL", args.events, folder)
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python {platform.python_version()}, "
        f"{args.rounds} rounds, 1 KB message, {os.cpu_count()} cores\n"
    )
    print("| what | median ms | p99 ms |\n|---|---|---|")
    for what, median, p99 in rows:
        print(f"| {what} | {median} | {p99} |")
    print("\n| ingest | rate | |\n|---|---|---|")
    for what, value, _ in ingest:
        print(f"| {what} | {value} | |")


if __name__ == "__main__":
    main()
