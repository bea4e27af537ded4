"""The durable audit store: tenants, API keys, policy versions, events and feedback in SQLite
(the default) or PostgreSQL, with numbered migrations applied on open, and an event sink that
batches writes and spools to disk while the database is down."""

from ._engine import data_dir, default_db_url, safe_url
from ._keys import KEY_PREFIX
from ._migrations import MIGRATIONS, Migration, SchemaStatus
from ._sink import SinkStats, StoreSink
from ._spool import Spool
from ._store import Store
from ._types import ApiKey, Feedback, PolicyVersion, Tenant

__all__ = [
    "KEY_PREFIX",
    "MIGRATIONS",
    "ApiKey",
    "Feedback",
    "Migration",
    "PolicyVersion",
    "SchemaStatus",
    "SinkStats",
    "Spool",
    "Store",
    "StoreSink",
    "Tenant",
    "data_dir",
    "default_db_url",
    "safe_url",
]
