"""`tether db`: the audit store's schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tether.errors import ConfigError

from ._common import console, handle_errors

if TYPE_CHECKING:
    from tether.store import Store

F = TypeVar("F", bound=Callable[..., Any])
__all__ = ["db"]

_DB_HELP = (
    "Database URL (sqlite:///FILE or postgresql://...); default: $TETHER_DB, else a SQLite "
    "file in the data folder."
)


@click.group()
def db() -> None:
    """The audit store's database (SQLite by default, PostgreSQL by URL).

    The gateway applies migrations when it starts; these commands do it ahead of time or
    say where a database stands.

    \b
    tether db status
    tether db upgrade --db postgresql://tether@db.internal:5432/tether
    """


def _url(db_url: str | None, config_file: Path | None) -> str | None:
    if db_url is not None and config_file is not None:
        raise ConfigError("give --db or --config, not both")
    if config_file is not None:
        from tether.server import load_gateway_config

        return load_gateway_config(config_file).db
    return db_url


def _store(db_url: str | None, config_file: Path | None) -> Store:
    try:
        from tether.store import Store
    except ImportError as exc:
        raise ConfigError(
            f"the audit store needs the server extra ({exc.name} is missing): "
            "pip install 'tether[server]'"
        ) from None
    return Store(_url(db_url, config_file), upgrade=False)


def _db_options(fn: F) -> F:
    """--db and --config, shared by every `tether db` command."""
    fn = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        help="Take --db from this gateway config.",
    )(fn)
    return click.option("--db", "db_url", help=_DB_HELP)(fn)


@db.command()
@_db_options
@handle_errors
def upgrade(db_url: str | None, config_file: Path | None) -> None:
    """Apply every pending migration."""
    with _store(db_url, config_file) as store:
        applied = store.upgrade()
        status = store.status()
        for migration in applied:
            console.print(f"applied {migration.number}: {migration.description}")
        console.print(f"{store.safe_url}: schema version {status.current} (latest)")


@db.command()
@_db_options
@handle_errors
def status(db_url: str | None, config_file: Path | None) -> None:
    """Show the schema version and any pending migrations (exit 1 if some are pending)."""
    with _store(db_url, config_file) as store:
        found = store.status()
        console.print(f"{store.safe_url}: schema version {found.current} of {found.latest}")
        for migration in found.pending:
            console.print(f"pending {migration.number}: {migration.description}")
        if found.pending:
            console.print("run `tether db upgrade` to apply them")
            raise SystemExit(1)
