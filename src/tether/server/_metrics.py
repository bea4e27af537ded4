"""Prometheus metrics of one gateway process, in a registry of its own."""

from __future__ import annotations

import functools
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tether.pipeline import Event
from tether.store import SinkStats

__all__ = ["Metrics"]

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Requests, turns, actions, latencies and tokens by tenant, and the event store's state."""

    def __init__(self, sink_stats: Callable[[], SinkStats] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tether_requests", "HTTP requests answered.", ["tenant", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "tether_request_duration_seconds",
            "Time to answer an HTTP request (to the last byte of a stream).",
            ["tenant", "route"],
            buckets=_SECONDS,
            registry=r,
        )
        self.turns = Counter(
            "tether_turns", "Guarded turns by final action.", ["tenant", "action"], registry=r
        )
        self.guard_actions = Counter(
            "tether_guard_actions",
            "Actions guards made a turn take, by stage.",
            ["tenant", "stage", "action"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "tether_turn_stage_duration_seconds",
            "Time a turn spent per stage.",
            ["tenant", "stage"],
            buckets=_SECONDS,
            registry=r,
        )
        self.tokens = Counter(
            "tether_tokens", "Tokens the upstream model reported.", ["tenant", "kind"], registry=r
        )
        self.rate_limited = Counter(
            "tether_rate_limited",
            "Requests refused by a rate limit.",
            ["tenant", "scope"],
            registry=r,
        )
        if sink_stats is not None:
            self._sink_gauges(sink_stats)

    def _sink_gauges(self, stats: Callable[[], SinkStats]) -> None:
        for name, doc, field in (
            ("tether_events_written", "Events written to the database.", "written"),
            ("tether_events_spooled", "Events written to the spool instead.", "spooled"),
            ("tether_events_replayed", "Spooled events replayed into the database.", "replayed"),
            ("tether_events_rejected", "Events the database refused, kept aside.", "rejected"),
            ("tether_events_buffered", "Events waiting in memory to be written.", "buffered"),
        ):
            gauge = Gauge(name, doc, registry=self.registry)
            gauge.set_function(functools.partial(_stat, stats, field))
        up = Gauge(
            "tether_store_up",
            "1 if the last event write reached the database.",
            registry=self.registry,
        )
        up.set_function(lambda: float(stats().available))

    def observe_turn(self, tenant: str, event: Event) -> None:
        self.turns.labels(tenant, event.action).inc()
        for taken in event.actions:
            self.guard_actions.labels(tenant, taken.stage, taken.action).inc()
        latency = event.latency
        for stage, ms in (
            ("input_guards", latency.input_guards_ms),
            ("model", latency.model_ms),
            ("output_guards", latency.output_guards_ms),
            ("total", latency.total_ms),
        ):
            self.stage_seconds.labels(tenant, stage).observe(ms / 1000)
        self.tokens.labels(tenant, "prompt").inc(event.usage.prompt_tokens)
        self.tokens.labels(tenant, "completion").inc(event.usage.completion_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _stat(stats: Callable[[], SinkStats], field: str) -> float:
    return float(getattr(stats(), field))
