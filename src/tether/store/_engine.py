"""Database URLs and engines: SQLite (the default) and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from tether.errors import ConfigError

__all__ = ["data_dir", "default_db_url", "make_engine", "normalize_url", "safe_url"]

# How long a connection attempt to PostgreSQL may take before the store counts it as down.
CONNECT_TIMEOUT_S = 5
_FORMS = "sqlite:///path/to/file.db, sqlite:///:memory:, postgresql://user@host:5432/dbname"


def data_dir() -> Path:
    """Where tether keeps its data: ``$TETHER_DATA_DIR``, else ``$XDG_DATA_HOME/tether``, else
    ``~/.local/share/tether``."""
    explicit = os.environ.get("TETHER_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "tether"


def default_db_url() -> str:
    """``$TETHER_DB``, else a SQLite file in the data folder."""
    return os.environ.get("TETHER_DB") or f"sqlite:///{data_dir() / 'tether.db'}"


def normalize_url(url: str) -> URL:
    """Parse a database URL; ``postgresql://`` means the psycopg (3) driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"malformed database URL {url!r}; use one of: {_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.drivername != "postgresql+psycopg":
            raise ConfigError(
                f"database URL {safe_url(parsed)!r}: only the psycopg driver is supported; "
                "write postgresql://..."
            )
        return parsed
    if backend == "sqlite":
        return parsed
    raise ConfigError(
        f"database URL {safe_url(parsed)!r}: tether stores into SQLite or PostgreSQL; "
        f"use one of: {_FORMS}"
    )


def safe_url(url: URL | str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def make_engine(url: str | URL) -> Engine:
    parsed = normalize_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
    return _sqlite_engine(parsed)


def _json_text(value: Any) -> str:
    """JSON for a JSON column; text the store serialized already (RawJson) goes as it is."""
    from ._pgcopy import RawJson

    return str(value) if isinstance(value, RawJson) else json.dumps(value)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "connect_args": {"timeout": 30, "check_same_thread": False},
        "json_serializer": _json_text,
    }
    if in_memory:
        # One shared connection, or each thread would see its own empty database.
        options["poolclass"] = StaticPool
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below start transactions, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers don't wait for the writer
            # An audit record must survive a power cut: fsync the WAL at every commit (cheap,
            # since events are written in batches).
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("tether_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
