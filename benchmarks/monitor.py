"""Monitoring targets, measured side by side in one run.

1. Alert evaluation keeps up with 1,000 turns/s: events written through `Store.insert_events`
   (rollups included) in batches of 100 a tenth of a second, the rules evaluated over the
   store every second, on SQLite and PostgreSQL; and the in-memory evaluator (replays).
2. An injection wave in a replayed traffic file raises its alert within one window (10 min):
   delay from the wave's start to the alert, over several seeds.
3. Drift: detection rate on topic-shifted traffic and false-alarm rate on same-distribution
   traffic over repeated samples (alpha 0.05).
4. `tether monitor stats` over 1,000,000 events on PostgreSQL answers in <= 1 s (median).

    python benchmarks/monitor.py [--events 1000000] [--skip-stats]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from tether.monitor import (
    AlertEvaluator,
    MemoryAlerts,
    MemoryCounts,
    StoreAlerts,
    StoreCounts,
    drift_between,
    load_monitoring,
    replay_alerts,
    synthetic_traffic,
)
from tether.store import Store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RULES = load_monitoring("examples/monitor/monitoring.yaml")
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _pg_db() -> str:
    name = f"tether_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ingest(url: str, seconds: int = 20, rate: int = 1000) -> dict[str, float]:
    """Write `rate` turns/s for `seconds` (traffic time = wall time), evaluating every second."""
    events = synthetic_traffic(
        start=T0, minutes=seconds // 60 + 1, per_minute=rate * 60, attack_from=0, seed=7
    )[: seconds * rate]
    with Store(url) as store:
        evaluator = AlertEvaluator(RULES, StoreCounts(store), StoreAlerts(store))
        write_s, eval_s = [], []
        start = time.perf_counter()
        for second in range(seconds):
            chunk = events[second * rate : (second + 1) * rate]
            for i in range(0, rate, 100):
                t = time.perf_counter()
                store.insert_events(chunk[i : i + 100])
                write_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            evaluator.evaluate(chunk[-1].time)
            eval_s.append(time.perf_counter() - t)
        wall = time.perf_counter() - start
        alerts = store.list_alerts(None)
    return {
        "turns_per_s": seconds * rate / wall,
        "batch100_write_ms_median": 1000 * statistics.median(write_s),
        "evaluate_ms_median": 1000 * statistics.median(eval_s),
        "alerts": len(alerts),
    }


def memory_eval(n: int = 100_000) -> float:
    events = synthetic_traffic(start=T0, minutes=n // 1000, per_minute=1000, seed=8)
    counts, book = MemoryCounts(), MemoryAlerts()
    evaluator = AlertEvaluator(RULES, counts, book)
    start = time.perf_counter()
    for i in range(0, len(events), 1000):
        counts.add(events[i : i + 1000])
        evaluator.evaluate(events[i + 999].time)
    return len(events) / (time.perf_counter() - start)


def wave_delays(seeds: int = 5) -> list[float]:
    delays = []
    for seed in range(seeds):
        traffic = synthetic_traffic(
            start=T0, minutes=60, per_minute=20, attack_from=30, attack_minutes=5,
            attack_share=0.3, seed=seed,
        )  # fmt: skip
        (wave,) = [a for a in replay_alerts(RULES, traffic).alerts if a.rule == "injection-wave"]
        delays.append((wave.started_at - (T0 + timedelta(minutes=30))).total_seconds() / 60)
    return delays


def drift_rates(repeats: int = 20, alpha: float = 0.05) -> tuple[float, float]:
    def texts(seed: int, shift: float | None) -> list[str]:
        return [
            e.input
            for e in synthetic_traffic(
                start=T0, minutes=10, per_minute=20, shift_at=0 if shift else None,
                shift_share=shift or 0.0, seed=seed,
            )
        ]  # fmt: skip

    false_alarms = detections = 0
    for r in range(repeats):
        ref = texts(1000 + r, None)
        same = drift_between(
            ref, texts(2000 + r, None), alpha=alpha, samples=200, permutations=200, seed=r
        )
        shifted = drift_between(
            ref, texts(3000 + r, 0.2), alpha=alpha, samples=200, permutations=200, seed=r
        )
        false_alarms += same.drifted
        detections += shifted.drifted
    return detections / repeats, false_alarms / repeats


def stats_1m(n: int) -> dict[str, float]:
    name = _pg_db()
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        with Store(url) as store:
            start = time.perf_counter()
            per_minute = 1000
            done = 0
            seed = 0
            while done < n:
                minutes = min(60, (n - done) // per_minute or 1)
                batch = synthetic_traffic(
                    start=T0 + timedelta(minutes=done // per_minute), minutes=minutes,
                    per_minute=per_minute, attack_from=5, seed=seed,
                )  # fmt: skip
                for i in range(0, len(batch), 5000):
                    store.insert_events(batch[i : i + 5000])
                done += len(batch)
                seed += 1
            load_s = time.perf_counter() - start
            until = T0 + timedelta(minutes=n // per_minute + 1)
            timings = []
            for _ in range(5):
                t = time.perf_counter()
                result = store.stats("northbank", since=T0, until=until, step=timedelta(hours=1))
                timings.append(time.perf_counter() - t)
            assert result.turns == done, (result.turns, done)
        return {"events": done, "load_s": load_s, "stats_s_median": statistics.median(timings)}
    finally:
        _drop(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument("--drift-repeats", type=int, default=20)
    parser.add_argument(
        "--only", choices=["eval", "ingest", "drift", "stats"], help="run one part alone"
    )
    args = parser.parse_args()
    part = args.only
    if part in (None, "eval"):
        print(f"in-memory evaluation: {memory_eval():,.0f} turns/s")
        print(f"injection wave -> alert delay (min, window 10): {wave_delays()}")
    if part in (None, "ingest"):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            print("ingest+evaluate SQLite:", ingest(f"sqlite:///{tmp}/bench.db"))
        name = _pg_db()
        try:
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            print("ingest+evaluate PostgreSQL:", ingest(url))
        finally:
            _drop(name)
    if part in (None, "drift"):
        detect, false_alarm = drift_rates(args.drift_repeats)
        print(
            f"drift (alpha 0.05, {args.drift_repeats} repeats): detection {detect:.0%} at 20% "
            f"shift, false alarms {false_alarm:.0%}"
        )
    if part in (None, "stats") and not args.skip_stats:
        print("stats on PostgreSQL:", stats_1m(args.events))


if __name__ == "__main__":
    main()
