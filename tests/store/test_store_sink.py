"""StoreSink: batched writes, the spool while the database is down, replay on recovery —
nothing lost, nothing written twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tether.errors import StoreError, StoreUnavailableError
from tether.pipeline import Event
from tether.store import Spool, Store, StoreSink


class SwitchableStore(Store):
    """A real SQLite store whose event inserts can be switched to fail like an outage, or to
    lose the acknowledgement of a write that went through, or to refuse chosen events."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False
        self.ack_lost = False
        self.refused: set[str] = set()

    def insert_events(self, batch: Sequence[Event]) -> None:
        if self.down:
            raise StoreUnavailableError("cannot reach the test database: switched off")
        if any(e.id in self.refused for e in batch):
            raise StoreError("value too long for type character varying(64)")
        super().insert_events(batch)
        if self.ack_lost:
            raise StoreUnavailableError("connection dropped before the commit was acknowledged")


@pytest.fixture
def store(tmp_path: Path) -> SwitchableStore:
    return SwitchableStore(f"sqlite:///{tmp_path / 'audit.db'}")


def sink_for(store: Store, tmp_path: Path, **options: float) -> StoreSink:
    settings: dict[str, float] = {"flush_interval_s": 0.01, "retry_s": 0.01, "max_retry_s": 0.01}
    settings.update(options)
    return StoreSink(store, tmp_path / "spool", **settings)


async def emit_all(sink: StoreSink, events: list[Event]) -> None:
    for event in events:
        await sink.emit(event)


async def test_events_are_written_in_batches(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    sink = sink_for(store, tmp_path, batch_size=100)
    await emit_all(sink, [make_event("acme", input=f"q{i}") for i in range(1234)])
    await sink.aclose()
    assert store.count_events("acme") == 1234
    stats = sink.stats()
    assert stats.written == 1234 and stats.spooled == 0 and stats.available
    store.close()


async def test_background_writer_writes_without_being_asked(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    sink = sink_for(store, tmp_path)
    await sink.emit(make_event("acme"))
    for _ in range(500):  # up to 5 s on a loaded machine; usually one flush interval
        if store.count_events("acme"):
            break
        await asyncio.sleep(0.01)
    assert store.count_events("acme") == 1
    await sink.aclose()
    store.close()


async def test_outage_spools_then_replays_everything_once(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    sink = sink_for(store, tmp_path, batch_size=50)
    before = [make_event("acme", input=f"before {i}") for i in range(100)]
    during = [make_event("acme", input=f"during {i}") for i in range(300)]
    after = [make_event("acme", input=f"after {i}") for i in range(70)]
    await emit_all(sink, before)
    await sink.flush()
    store.down = True
    await emit_all(sink, during)
    await sink.flush()
    assert not sink.stats().available and sink.stats().spooled == 300
    assert sink.spool.pending() == 300  # on disk, fsync'd
    assert store.count_events("acme") == 100
    store.down = False
    await asyncio.sleep(0.05)  # past the retry delay
    await emit_all(sink, after)
    await sink.aclose()
    assert store.count_events("acme") == 470
    stored = {e.id for e in store.list_events("acme", limit=1000)}
    assert stored == {e.id for e in before + during + after}
    assert sink.spool.files() == [] and sink.stats().replayed == 300
    store.close()


async def test_a_lost_acknowledgement_writes_nothing_twice(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    sink = sink_for(store, tmp_path)
    store.ack_lost = True  # the rows commit, but the sink is told the database went away
    await emit_all(sink, [make_event("acme") for _ in range(40)])
    await sink.flush()
    assert sink.stats().spooled == 40
    store.ack_lost = False
    await asyncio.sleep(0.05)
    await sink.aclose()
    assert store.count_events("acme") == 40
    store.close()


async def test_an_event_the_database_refuses_is_kept_aside(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    events = [make_event("acme") for _ in range(10)]
    store.refused = {events[3].id}
    sink = sink_for(store, tmp_path)
    await emit_all(sink, events)
    await sink.aclose()
    assert store.count_events("acme") == 9 and sink.stats().rejected == 1
    (rejected,) = (tmp_path / "spool").glob("rejected-*.jsonl")
    assert json.loads(rejected.read_text())["id"] == events[3].id
    store.close()


async def test_a_crashed_gateways_spool_is_replayed_and_a_live_ones_is_left(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    crashed = Spool(tmp_path / "spool")
    crashed.append([make_event("acme", input="from the crashed one") for _ in range(5)])
    crashed.close()  # its process is gone: the lock went with it
    live = Spool(tmp_path / "spool")
    live.append([make_event("acme", input="from the live one") for _ in range(3)])
    sink = sink_for(store, tmp_path)
    await sink.flush()
    assert store.count_events("acme") == 5
    assert sink.spool.files() == [live.path]  # still its writer's, untouched
    live.close()  # now that gateway is gone too: the next one to start replays its spool
    await sink.aclose()
    await StoreSink(store, tmp_path / "spool").aclose()
    assert store.count_events("acme") == 8
    store.close()


def test_a_line_torn_by_a_crash_is_kept_aside(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    good = make_event("acme")
    torn = make_event("acme").model_dump_json()[:40]
    (spool_dir / "events-old.jsonl").write_text(good.model_dump_json() + "\n" + torn)
    replayed = Spool(spool_dir).replay(store.insert_events)
    assert replayed == 1 and store.count_events("acme") == 1
    assert (spool_dir / "events-old.unreadable").read_text() == torn + "\n"
    assert not (spool_dir / "events-old.jsonl").exists()
    store.close()


async def test_replay_stops_when_the_database_goes_away_again(
    store: SwitchableStore, tmp_path: Path, make_event: Callable[..., Event]
) -> None:
    crashed = Spool(tmp_path / "spool")
    crashed.append([make_event("acme") for _ in range(20)])
    crashed.close()
    store.down = True
    sink = sink_for(store, tmp_path)
    await emit_all(sink, [make_event("acme") for _ in range(5)])
    await sink.flush()
    assert sink.spool.pending() == 25 and store.count_events("acme") == 0
    store.down = False
    await asyncio.sleep(0.05)
    await sink.aclose()
    assert store.count_events("acme") == 25 and sink.spool.pending() == 0
    store.close()
