"""The store's monitoring side, on SQLite and PostgreSQL: rollups, stats, review queue,
feedback with corrections, alerts (deduplicated), drift reports, and migration 2 over a
database that already holds events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tether.guards import Verdict
from tether.pipeline import Event, Latency
from tether.store import Store
from tether.store._migrations import _feedback_v1, _initial
from tether.store._tables import events as events_table

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _event(i: int, *, tenant: str = "acme", flagged: bool = False, ms: float = 100.0) -> Event:
    return Event(
        id=f"e{i:05d}",
        tenant=tenant,
        time=T0 + timedelta(seconds=10 * i),
        policy="p",
        policy_version="p@1",
        model="m",
        input=f"question {i}",
        output="refused" if flagged else f"answer {i}",
        action="block" if flagged else "allow",
        verdicts=(
            Verdict(guard="inj", kind="injection", stage="input", flagged=flagged,
                    category="injection" if flagged else None),
        ),
        latency=Latency(input_guards_ms=5, model_ms=ms - 5, total_ms=ms),
    )  # fmt: skip


def test_rollups_count_each_inserted_turn_once(store: Store) -> None:
    batch = [_event(i, flagged=i % 4 == 0) for i in range(40)]
    store.insert_events(batch)
    store.insert_events(batch[:10])  # replayed from the spool: no double count
    stats = store.stats("acme", since=T0, until=T0 + timedelta(hours=1))
    assert stats.turns == 40
    assert stats.actions == {"allow": 30, "block": 10}
    assert stats.flags == {"injection": 10}
    assert stats.latency_ms["total"] == pytest.approx(100.0)
    assert stats.latency_p50_ms is not None and 50 < stats.latency_p50_ms <= 100
    counts = store.count_signal(
        since=T0, until=T0 + timedelta(hours=1), kind="flag", key="injection|input|*"
    )
    assert counts == {"acme": (10, 40)}
    # A window that covers only the first minute (6 turns, i = 0..5).
    first = store.stats(
        "acme", since=T0, until=T0 + timedelta(minutes=1), step=timedelta(minutes=1)
    )
    assert first.turns == 6 and first.series[0].turns == 6 and first.series[0].flagged == 2
    assert store.stats("other", since=T0, until=T0 + timedelta(hours=1)).turns == 0


def test_review_queue_feedback_and_labels(store: Store) -> None:
    store.insert_events([_event(i, flagged=i in (1, 2)) for i in range(5)])
    assert store.count_reviews("acme") == 2
    fb = store.add_feedback("acme", "e00003", rating=-1, comment="wrong", corrected="Better.")
    assert fb is not None and fb.corrected == "Better."
    assert store.list_feedback("acme")[0].corrected == "Better."
    assert store.add_feedback("acme", "nope", rating=-1) is None
    queue = store.review_queue("acme")
    assert [i.event_id for i in queue] == ["e00003", "e00002", "e00001"]
    assert queue[0].reasons == ["downvoted"] and queue[0].corrected == "Better."
    assert queue[0].rating == -1
    assert queue[1].reasons == ["flagged"] and queue[1].guards == ["injection"]
    item = store.label_review("acme", "e00002", label="false_positive", reviewer="ann")
    assert item is not None and item.label == "false_positive" and item.reviewer == "ann"
    manual = store.label_review("acme", "e00004", label="correct")  # not queued before
    assert manual is not None and manual.reasons == ["manual"]
    assert store.label_review("acme", "missing", label="correct") is None
    assert store.label_review("other", "e00001", label="correct") is None  # tenant-scoped
    assert store.count_reviews("acme") == 2
    assert store.count_reviews("acme", status="reviewed") == 2
    with pytest.raises(ValueError, match="label must be"):
        store.label_review("acme", "e00001", label="bogus")  # type: ignore[arg-type]
    assert store.delete_events("acme", older_than=T0 + timedelta(hours=1)) == 5
    assert store.count_reviews("acme", status="all") == 0


def test_alerts_are_deduplicated_and_resolved(store: Store) -> None:
    args = {"severity": "critical", "message": "m", "value": 0.2, "threshold": 0.05,
            "window_s": 600, "details": {"turns": 50}}  # fmt: skip
    first, new = store.open_alert(tenant="acme", rule="wave", now=T0, **args)  # type: ignore[arg-type]
    again, new_again = store.open_alert(
        tenant="acme",
        rule="wave",
        now=T0 + timedelta(minutes=1),
        **args,  # type: ignore[arg-type]
    )
    assert new and not new_again and again.id == first.id and again.fired_count == 2
    assert [a.id for a in store.open_alerts()] == [first.id]
    store.record_delivery(first.id, [{"url": "http://x", "ok": True}])
    resolved = store.resolve_alert(tenant="acme", rule="wave", now=T0 + timedelta(minutes=5))
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.deliveries == [{"url": "http://x", "ok": True}]
    third, new_third = store.open_alert(
        tenant="acme", rule="wave", now=T0 + timedelta(hours=1), **args
    )  # type: ignore[arg-type]
    assert new_third and third.id != first.id
    assert len(store.list_alerts("acme")) == 2
    assert len(store.list_alerts("acme", status="firing")) == 1
    assert store.list_alerts("globex") == []
    acked = store.acknowledge_alert("acme", third.id, by="ops")
    assert acked is not None and acked.acknowledged_by == "ops"
    assert store.get_alert("globex", third.id) is None


def test_drift_reports_round_trip(store: Store) -> None:
    report = store.add_drift_report(
        tenant="acme", stream="input", reference="suite:x.yaml", since=T0,
        until=T0 + timedelta(hours=1), n_reference=50, n_live=60, statistic=0.01,
        p_value=0.002, alpha=0.01, drifted=True,
        topics=[{"topic": "crypto", "growth": 0.3}],
    )  # fmt: skip
    assert report.drifted and report.id > 0
    assert store.list_drift_reports("acme")[0].topics == [{"topic": "crypto", "growth": 0.3}]
    assert store.list_drift_reports("globex") == []


def test_migration_2_counts_events_stored_before_it(tmp_path: Path) -> None:
    """A database made by migration 1 alone gets rollups and queue entries for its events."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        from sqlalchemy import insert

        from tether.store._migrations import _LOCK_ID  # noqa: F401 - same module, for clarity
        from tether.store._store import _event_row
        from tether.store._tables import schema_version

        _initial(conn)
        schema_version.create(conn)
        conn.execute(insert(schema_version).values(version=1, description="1", applied_at=T0))
        conn.execute(
            insert(events_table), [_event_row(_event(i, flagged=i < 3)) for i in range(10)]
        )
        conn.execute(
            insert(_feedback_v1).values(
                tenant="acme", event_id="e00007", rating=-1, comment=None, created_at=T0
            )
        )
    engine.dispose()
    with Store(url) as store:
        assert store.status().up_to_date
        assert store.stats("acme", since=T0, until=T0 + timedelta(hours=1)).turns == 10
        assert store.count_reviews("acme") == 4
        assert store.list_feedback("acme")[0].corrected is None
