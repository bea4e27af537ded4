"""PostgreSQL's fast path for events: COPY into a per-connection staging table, then one
``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING id``, so a batch is still written at most
once and the caller still learns which rows were new. The JSON columns are serialized by
pydantic straight from the event (no dump-and-reparse), and NUL characters, which PostgreSQL
text and jsonb cannot hold, become U+FFFD as on the generic path."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import JSON, Connection, Table
from sqlalchemy.dialects.postgresql import JSONB

from tether.guards import Verdict
from tether.pipeline import ActionTaken, Event, RevisionRound

from ._tables import events

__all__ = ["EVENT_COLUMNS", "JSON_COLUMNS", "RawJson", "copy_events", "copy_upsert", "event_values"]

# Event fields stored in columns of their own; every other field goes to ``details``.
EVENT_COLUMNS = frozenset(
    {
        "id", "time", "tenant", "user", "conversation_id", "policy", "policy_version", "model",
        "input", "output", "action", "actions", "verdicts", "revisions", "reasks", "latency",
        "usage", "error",
    }
)  # fmt: skip
_DETAILS = frozenset(Event.model_fields) - EVENT_COLUMNS
_ACTIONS = TypeAdapter(tuple[ActionTaken, ...])
_VERDICTS = TypeAdapter(tuple[Verdict, ...])
_REVISIONS = TypeAdapter(tuple[RevisionRound, ...])
JSON_COLUMNS = frozenset({"actions", "verdicts", "revisions", "details"})


class RawJson(str):
    """JSON text that is already serialized: the SQLite engine's JSON serializer passes it
    through instead of encoding it again (see ``_engine``)."""

    __slots__ = ()


_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_COLUMNS = [c.name for c in events.columns]


def _json(data: bytes | str) -> str:
    text = data.decode() if isinstance(data, bytes) else data
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def _text(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def event_values(event: Event) -> dict[str, Any]:
    """The ``events`` row of ``event``, column by column; JSON columns as JSON text."""
    values: dict[str, Any] = {
        "id": event.id,
        "tenant": _text(event.tenant),
        "user_id": _text(event.user),
        "conversation_id": _text(event.conversation_id),
        "policy": _text(event.policy),
        "policy_version": _text(event.policy_version),
        "model": _text(event.model),
        "input": _text(event.input),
        "output": _text(event.output),
        "action": event.action,
        "actions": _json(_ACTIONS.dump_json(event.actions)),
        "verdicts": _json(_VERDICTS.dump_json(event.verdicts)),
        "revisions": _json(_REVISIONS.dump_json(event.revisions)),
        "reasks": event.reasks,
        "input_guards_ms": event.latency.input_guards_ms,
        "model_ms": event.latency.model_ms,
        "output_guards_ms": event.latency.output_guards_ms,
        "total_ms": event.latency.total_ms,
        "prompt_tokens": event.usage.prompt_tokens,
        "completion_tokens": event.usage.completion_tokens,
        "error": _text(event.error),
        "time": event.time,
        "details": _json(event.model_dump_json(include=set(_DETAILS))),
    }
    return values


def _row(event: Event) -> tuple[Any, ...]:
    values = event_values(event)
    return tuple(values[name] for name in _COLUMNS)


def copy_events(conn: Connection, batch: Sequence[Event]) -> set[str]:
    """Write ``batch`` (ids unique within it) in the open transaction; the ids that were new."""
    new = _staged_insert(
        conn, events.name, _COLUMNS, (_row(e) for e in batch), keys=["id"], returning="id"
    )
    return {str(value) for value in new}


def copy_upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    summed: Sequence[str] = (),
) -> None:
    """Insert ``rows`` (dicts with the same columns) through a staging table filled by COPY:
    a row whose ``keys`` exist already is skipped, or, with ``summed``, adds those columns
    to the stored row. JSON values are written as JSON text."""
    if not rows:
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON | JSONB)}
    values = (
        tuple(json.dumps(row[c]) if c in json_columns else row[c] for c in columns) for row in rows
    )
    _staged_insert(conn, table.name, columns, values, keys=keys, summed=summed)


def _staged_insert(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    values: Iterable[tuple[Any, ...]],
    *,
    keys: Sequence[str],
    summed: Sequence[str] = (),
    returning: str | None = None,
) -> list[Any]:
    """COPY ``values`` into a staging table private to the connection (emptied at each commit,
    so pooled connections reuse it), then move them into ``table`` in key order — so that
    concurrent writers of the same keys never deadlock — resolving conflicts on ``keys``."""
    from psycopg import sql  # only here: psycopg is installed where PostgreSQL is used

    driver = conn.connection.driver_connection
    assert driver is not None, "an open transaction has a driver connection"
    staging = sql.Identifier(f"_tether_{table}_in")
    target = sql.Identifier(table)
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    key_names = sql.SQL(", ").join(map(sql.Identifier, keys))
    conflict: sql.Composable = sql.SQL("DO NOTHING")
    if summed:
        conflict = sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{c} = {t}.{c} + EXCLUDED.{c}").format(c=sql.Identifier(c), t=target)
                for c in summed
            )
        )
    insert = sql.SQL(
        "INSERT INTO {target} ({names}) SELECT {names} FROM {staging} ORDER BY {keys} "
        "ON CONFLICT ({keys}) {conflict}"
    ).format(target=target, names=names, staging=staging, keys=key_names, conflict=conflict)
    if returning is not None:
        insert = sql.SQL("{} RETURNING {}").format(insert, sql.Identifier(returning))
    with driver.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            ).format(staging, target)
        )
        cursor.execute(sql.SQL("DELETE FROM {}").format(staging))  # an earlier write, same tx
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, names)) as copy:
            for row in values:
                copy.write_row(row)
        cursor.execute(insert)
        return [row[0] for row in cursor.fetchall()] if returning is not None else []
