"""StoreSink: the pipeline's events into the store, in batches, in the background; to the
spool while the database is down, and from the spool back into it once it answers again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tether.errors import StoreError, StoreUnavailableError
from tether.pipeline import Event

from ._spool import Spool
from ._store import Store

__all__ = ["SinkStats", "StoreSink"]

log = logging.getLogger("tether.store")


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counts since the sink started; ``available`` is whether the last write got through."""

    written: int
    spooled: int
    replayed: int
    rejected: int
    buffered: int
    available: bool


class StoreSink:
    """An :class:`~tether.pipeline.EventSink` that batches events into ``store``.

    ``emit`` only appends to a buffer; a background task writes the buffer every
    ``flush_interval_s`` (sooner once ``batch_size`` events wait). When the database cannot
    be reached, batches are appended to the spool in ``spool_dir`` (fsync'd) instead, and the
    sink tries the database again after ``retry_s`` (doubling up to ``max_retry_s``); once it
    answers, the spool is replayed before anything newer is written. Event ids make every
    insert idempotent, so nothing is written twice. An event the database rejects for what it
    is (not for being unreachable) is kept in ``spool_dir/rejected-*.jsonl``.

    Only a crash of the process loses events: those still buffered, at most
    ``flush_interval_s`` worth. ``aclose`` (or ``flush``) writes out the buffer.
    """

    def __init__(
        self,
        store: Store,
        spool_dir: str | os.PathLike[str],
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        retry_s: float = 1.0,
        max_retry_s: float = 30.0,
    ) -> None:
        self.store = store
        self.spool = Spool(spool_dir)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._buffer: list[Event] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._available = True
        self._delay = retry_s
        self._next_try = 0.0
        # A spool left by an earlier run (or a crashed gateway) is replayed first.
        self._spool_dirty = bool(self.spool.files())
        self._written = self._spooled = self._replayed = self._rejected = 0

    async def emit(self, event: Event) -> None:
        if self._closing:
            raise StoreError("the event sink is closed")
        self._buffer.append(event)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tether-store-sink")
        self._wake.set()

    def stats(self) -> SinkStats:
        return SinkStats(
            written=self._written,
            spooled=self._spooled,
            replayed=self._replayed,
            rejected=self._rejected,
            buffered=len(self._buffer),
            available=self._available,
        )

    async def flush(self) -> None:
        """Write everything emitted so far (to the database, or else to the spool), and try
        a replay of the spool if one is due."""
        async with self._lock:
            await self._drain()

    async def aclose(self) -> None:
        """Stop the background task and write out the buffer."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        self.spool.close()

    async def _run(self) -> None:
        while not self._closing:
            timeout = self._delay if self._spool_dirty else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if self._closing:
                return
            if len(self._buffer) < self.batch_size:
                await asyncio.sleep(self.flush_interval_s)  # let a batch gather
            self._wake.clear()
            try:
                async with self._lock:
                    await self._drain()
            except Exception:  # the writer must outlive anything; the spool still holds events
                log.exception("event writer failed; retrying")
                await asyncio.sleep(self.retry_s)

    def _due(self) -> bool:
        return self._available or time.monotonic() >= self._next_try

    def _down(self, exc: StoreError) -> None:
        if self._available:
            log.warning("event store unavailable, spooling to %s: %s", self.spool.directory, exc)
        self._available = False
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.max_retry_s)

    def _up(self) -> None:
        if not self._available:
            log.warning("event store available again")
        self._available = True
        self._delay = self.retry_s

    async def _drain(self) -> None:
        if self._spool_dirty and self._due():
            try:
                replayed = await asyncio.to_thread(
                    self.spool.replay, self.store.insert_events, batch_size=self.batch_size
                )
            except StoreUnavailableError as exc:
                self._down(exc)
            else:
                self._replayed += replayed
                self._spool_dirty = False
                self._up()
        while self._buffer:
            batch = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            if not self._spool_dirty and self._due():
                try:
                    await asyncio.to_thread(self.store.insert_events, batch)
                except StoreUnavailableError as exc:
                    self._down(exc)
                except StoreError:
                    await self._one_by_one(batch)
                    continue
                else:
                    self._written += len(batch)
                    self._up()
                    continue
            # Down, or older events still wait in the spool: keep the order, spool this too.
            await asyncio.to_thread(self.spool.append, batch)
            self._spooled += len(batch)
            self._spool_dirty = True

    async def _one_by_one(self, batch: list[Event]) -> None:
        """A batch the database refused: find the events it refuses and set them aside."""
        for event in batch:
            try:
                await asyncio.to_thread(self.store.insert_events, [event])
            except StoreUnavailableError as exc:
                self._down(exc)
                await asyncio.to_thread(self.spool.append, [event])
                self._spooled += 1
                self._spool_dirty = True
            except StoreError as exc:
                log.error("event %s rejected by the store, kept aside: %s", event.id, exc)
                await asyncio.to_thread(_reject, self.spool.directory, event, str(exc))
                self._rejected += 1
            else:
                self._written += 1


def _reject(directory: Path, event: Event, error: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"rejected-{os.getpid()}.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(event.model_dump_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
