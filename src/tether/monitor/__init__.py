"""Production monitoring: alert rules over sliding windows (threshold and rate of change),
evaluated continuously over the store's rollups or over a replayed traffic file, stored,
deduplicated and delivered to webhooks with retries; drift of live inputs and outputs against
an eval suite or a past window (MMD permutation test, and the topics that grew); the review
queue's exports as eval suites and preference pairs; OpenTelemetry traces of each turn."""

from ._alerts import (
    AlertBook,
    AlertChange,
    AlertEvaluator,
    Counts,
    MemoryAlerts,
    MemoryCounts,
    ReplayResult,
    StoreAlerts,
    StoreCounts,
    replay_alerts,
)
from ._config import (
    AlertRule,
    DriftSchedule,
    MonitoringConfig,
    Signal,
    Webhook,
    load_monitoring,
    load_monitoring_text,
    parse_duration,
)
from ._drift import DriftResult, drift_between, drift_check, mmd_test, suite_texts
from ._export import (
    expected_behavior,
    preference_pairs,
    preferences_jsonl,
    reviewed,
    suite_from_reviews,
)
from ._monitor import Monitor
from ._tracing import TracingSink, otlp_tracer_provider, trace_event
from ._traffic import TOPICS, load_traffic, synthetic_traffic, write_traffic
from ._webhooks import alert_payload, deliver, post_with_retries

__all__ = [
    "TOPICS",
    "AlertBook",
    "AlertChange",
    "AlertEvaluator",
    "AlertRule",
    "Counts",
    "DriftResult",
    "DriftSchedule",
    "MemoryAlerts",
    "MemoryCounts",
    "Monitor",
    "MonitoringConfig",
    "ReplayResult",
    "Signal",
    "StoreAlerts",
    "StoreCounts",
    "TracingSink",
    "Webhook",
    "alert_payload",
    "deliver",
    "drift_between",
    "drift_check",
    "expected_behavior",
    "load_monitoring",
    "load_monitoring_text",
    "load_traffic",
    "mmd_test",
    "otlp_tracer_provider",
    "parse_duration",
    "post_with_retries",
    "preference_pairs",
    "preferences_jsonl",
    "replay_alerts",
    "reviewed",
    "suite_from_reviews",
    "suite_texts",
    "synthetic_traffic",
    "trace_event",
    "write_traffic",
]
