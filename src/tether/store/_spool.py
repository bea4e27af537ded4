"""A local append-only spool for events the database could not take, replayed on recovery.

Each writer appends to its own ``events-<uuid>.jsonl`` in the spool folder, holding an
exclusive ``flock`` on it while it is open, and fsyncs after every batch. Replay takes every
file in the folder that no live writer holds (a crashed gateway's file included), inserts its
events, and deletes the file only once all of them are in. Inserts skip event ids already
stored, so a replay cut short and done again writes nothing twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from tether.pipeline import Event

__all__ = ["Spool"]

log = logging.getLogger("tether.store")


class Spool:
    """Append-only JSONL files of events in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"events-{uuid.uuid4().hex}.jsonl"
        self._file: IO[bytes] | None = None

    def append(self, events: Sequence[Event]) -> None:
        """Append ``events`` and fsync: once this returns they survive a crash."""
        if not events:
            return
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _fsync_dir(self.directory)  # so the new file's name survives a crash too
        data = b"".join(e.model_dump_json().encode() + b"\n" for e in events)
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def files(self) -> list[Path]:
        """Every spool file in the folder, this writer's and others'."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("events-*.jsonl"))

    def pending(self) -> int:
        """How many events wait in the folder's spool files."""
        total = 0
        for path in self.files():
            try:
                with path.open("rb") as fh:
                    total += sum(1 for line in fh if line.strip())
            except FileNotFoundError:
                continue  # replayed meanwhile
        return total

    def replay(self, insert: Callable[[list[Event]], None], *, batch_size: int = 500) -> int:
        """Insert the events of every spool file no live writer holds, deleting each file once
        all its events are in; returns how many were replayed. ``insert`` raising (the
        database went away again) leaves the rest of the files for the next replay."""
        self.close()  # our own file is replayed like any other; a new one starts next time
        replayed = 0
        for path in self.files():
            try:
                fh = path.open("rb")
            except FileNotFoundError:
                continue
            with fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another live gateway's spool: it replays it itself
                events = _read(path, fh)
                for start in range(0, len(events), batch_size):
                    insert(events[start : start + batch_size])
                path.unlink(missing_ok=True)
                replayed += len(events)
        if replayed:
            _fsync_dir(self.directory)
        return replayed


def _read(path: Path, fh: IO[bytes]) -> list[Event]:
    events = []
    for number, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            events.append(Event.model_validate_json(line))
        except ValidationError:
            # Only a line torn by a crash while it was being written can be unreadable; what
            # is left of it is kept aside, not silently dropped.
            with path.with_suffix(".unreadable").open("ab") as bad:
                bad.write(line if line.endswith(b"\n") else line + b"\n")
            log.error("%s:%d: unreadable spooled event kept in %s", path, number, bad.name)
    return events


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
