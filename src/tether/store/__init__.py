"""The durable audit store: tenants, API keys, policy versions, events and feedback in SQLite
(the default) or PostgreSQL, with numbered migrations applied on open, and an event sink that
batches writes and spools to disk while the database is down."""

from ._approvals import StoreApprovalStore
from ._engine import data_dir, default_db_url, safe_url
from ._keys import KEY_PREFIX
from ._migrations import MIGRATIONS, Migration, SchemaStatus
from ._monitoring import (
    LABELS,
    LATENCY_BOUNDS_MS,
    Alert,
    DriftReport,
    ReviewItem,
    RollupStats,
    StatsPoint,
    TurnFacts,
    facts_from_event,
    flag_keys,
    histogram_quantile,
    minute,
    rollup_rows,
)
from ._sink import SinkStats, StoreSink
from ._spool import Spool
from ._store import Store
from ._types import ApiKey, Feedback, PolicyVersion, Tenant

__all__ = [
    "KEY_PREFIX",
    "LABELS",
    "LATENCY_BOUNDS_MS",
    "MIGRATIONS",
    "Alert",
    "ApiKey",
    "DriftReport",
    "Feedback",
    "Migration",
    "PolicyVersion",
    "ReviewItem",
    "RollupStats",
    "SchemaStatus",
    "SinkStats",
    "Spool",
    "StatsPoint",
    "Store",
    "StoreApprovalStore",
    "StoreSink",
    "Tenant",
    "TurnFacts",
    "data_dir",
    "default_db_url",
    "facts_from_event",
    "flag_keys",
    "histogram_quantile",
    "minute",
    "rollup_rows",
    "safe_url",
]
