"""Alert rules: the file format, judging, replays of traffic files, live evaluation over the
store (SQLite and PostgreSQL) and webhook delivery with retries to a real HTTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tether.errors import ConfigFileError
from tether.monitor import (
    Monitor,
    Webhook,
    deliver,
    load_monitoring,
    load_monitoring_text,
    replay_alerts,
    synthetic_traffic,
)
from tether.store import Store
from webhook_receiver import Hook

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
RULES = """
alerts:
  - name: injection-wave
    when: {guard: injection}
    above: 0.05
    window: 10m
    severity: critical
  - name: prompt-leak
    when: {guard: prompt_leak}
    count_above: 0
    window: 10m
  - name: refusal-spike
    when: {guard: refusal}
    change: 2
    window: 1h
    baseline: 1d
    min_turns: 50
"""


def test_monitoring_file_problems_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "monitoring.yaml"
    bad.write_text(
        "alerts:\n  - name: a\n    when: {guard: injection}\n    above: 0.1\n    window: 10 parsecs\n"
        "  - name: b\n    when: {guard: injection, tool: deny}\n    above: 0.1\n    colour: red\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_monitoring(bad)
    text = "\n".join(str(p) for p in info.value.problems)
    assert f"{bad}:5" in text and "not a duration" in text
    assert f"{bad}:7" in text and "one of guard, taken or tool" in text
    assert f"{bad}:9" in text and "colour" in text
    with pytest.raises(ConfigFileError, match="exactly one of above"):
        load_monitoring_text("alerts: [{name: x, when: {action: block}}]")
    config = load_monitoring_text(RULES)
    assert [r.window for r in config.alerts] == [timedelta(minutes=10)] * 2 + [timedelta(hours=1)]


def test_replay_raises_the_injection_wave_within_one_window_and_resolves_it() -> None:
    config = load_monitoring_text(RULES)
    traffic = synthetic_traffic(
        start=T0, minutes=60, per_minute=30, attack_from=30, attack_minutes=5, leak_at=(50,)
    )
    result = replay_alerts(config, traffic)
    by_rule = {a.rule: a for a in result.alerts}
    wave = by_rule["injection-wave"]
    attack_start = T0 + timedelta(minutes=30)
    assert attack_start < wave.started_at <= attack_start + timedelta(minutes=10)
    assert wave.status == "resolved" and wave.fired_count > 1  # deduplicated while it lasted
    assert by_rule["prompt-leak"].started_at == T0 + timedelta(minutes=51)
    assert "refusal-spike" not in by_rule
    assert len(result.alerts) == 2


def test_replay_of_quiet_traffic_raises_nothing() -> None:
    config = load_monitoring_text(RULES)
    assert (
        replay_alerts(config, synthetic_traffic(start=T0, minutes=40, per_minute=30)).alerts == []
    )


def test_rate_of_change_against_the_baseline() -> None:
    config = load_monitoring_text(RULES)
    calm = synthetic_traffic(start=T0, minutes=180, per_minute=10, refusal_share=0.02, seed=3)
    angry = synthetic_traffic(
        start=T0 + timedelta(minutes=180), minutes=60, per_minute=10, refusal_share=0.2, seed=4
    )
    alerts = replay_alerts(config, [*calm, *angry]).alerts
    spike = [a for a in alerts if a.rule == "refusal-spike"]
    assert len(spike) == 1 and spike[0].value >= 2
    assert spike[0].started_at > T0 + timedelta(minutes=180)


async def test_webhook_retries_until_delivered(hook: Hook) -> None:
    config = load_monitoring_text(RULES)
    alert = replay_alerts(
        config, synthetic_traffic(start=T0, minutes=20, per_minute=30, attack_from=5)
    ).alerts[0]
    hook.statuses = [503, 500]
    webhook = Webhook(url=hook.url, retries=3, backoff_s=0.01)
    (record,) = await deliver([webhook], alert, "opened")
    assert record["ok"] and record["attempts"] == 3
    assert hook.received[0]["alert"]["rule"] == "injection-wave"
    hook.statuses = [503] * 5
    (failed,) = await deliver([Webhook(url=hook.url, retries=1, backoff_s=0.01)], alert, "opened")
    assert not failed["ok"] and failed["attempts"] == 2 and failed["error"] == "HTTP 503"
    hook.statuses = [404]
    (gone,) = await deliver([Webhook(url=hook.url, retries=5, backoff_s=0.01)], alert, "opened")
    assert gone["attempts"] == 1  # a 404 is not worth retrying


async def test_webhook_signature(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import hmac
    import json

    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    alert = replay_alerts(
        load_monitoring_text(RULES),
        synthetic_traffic(start=T0, minutes=20, per_minute=30, attack_from=5),
    ).alerts[0]
    await deliver([Webhook(url=hook.url, secret_env="HOOK_SECRET")], alert, "opened")
    body = json.dumps(hook.received[0], separators=(",", ":"), ensure_ascii=False).encode()
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hook.headers[0]["X-Tether-Signature"] == expected


async def test_live_evaluation_over_the_store_delivers_once(store: Store, hook: Hook) -> None:
    config = load_monitoring_text(
        RULES + f"webhooks:\n  - {{url: '{hook.url}', backoff_s: 0.01}}\n"
    )
    traffic = synthetic_traffic(
        start=T0, minutes=20, per_minute=30, attack_from=10, attack_minutes=10
    )
    monitor = Monitor(config, store)
    await asyncio.to_thread(
        store.insert_events, [e for e in traffic if e.time < T0 + timedelta(minutes=10)]
    )
    assert await monitor.tick(T0 + timedelta(minutes=10)) == []
    await asyncio.to_thread(store.insert_events, traffic)
    opened = await monitor.tick(T0 + timedelta(minutes=15))
    assert [(c.change, c.alert.rule) for c in opened] == [("opened", "injection-wave")]
    again = await monitor.tick(T0 + timedelta(minutes=16))
    assert [c.change for c in again] == ["refired"]
    resolved = await monitor.tick(T0 + timedelta(minutes=45))
    assert [c.change for c in resolved] == ["resolved"]
    assert [m["change"] for m in hook.received] == ["opened", "resolved"]
    (stored,) = store.list_alerts(None)
    assert stored.status == "resolved" and stored.fired_count == 2
    assert [d["ok"] for d in stored.deliveries] == [True, True]
