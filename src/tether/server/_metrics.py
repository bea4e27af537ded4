"""Prometheus metrics of the gateway, in a registry of its own.

Under ``tether serve --workers N`` every worker writes its values to files in the directory
``$PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up by ``serve``), and
``/metrics``, whichever worker answers it, adds up all of them: counters and histograms are
summed over the workers; the event store's figures are each live worker's own, summed
(``tether_store_up`` is the lowest of them). A single process keeps them in memory.

Labels are bounded: tenants come from the config, guards (their ids) from the policies, models
from the config and policies, tool names from the policies' and clients' tool lists, actions and
stages from fixed sets; no label ever holds user text. As a safety net each of the open
dimensions (guard, model, tool) keeps at most ``MAX_VALUES`` distinct values per process and
counts the rest under ``other``."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tether.pipeline import Event
from tether.store import SinkStats

__all__ = ["MAX_VALUES", "MULTIPROCESS_ENV", "Metrics"]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

MAX_VALUES = 100

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_GUARD_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class _Bounded:
    """The first ``limit`` distinct values of a label as themselves, later ones as ``other``."""

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.limit = limit
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value[:100] or "unknown"
        if value in self.seen:
            return value
        with self.lock:
            if len(self.seen) < self.limit:
                self.seen.add(value)
                return value
        return "other"


class Metrics:
    """Requests, turns, actions, latencies and tokens by tenant; guard flags and latency by
    guard; turns, tokens and model latency by model; tool-call decisions by tool; and the event
    store's state."""

    def __init__(self, sink_stats: Callable[[], SinkStats] | None = None) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
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
        self.model_turns = Counter(
            "tether_model_turns",
            "Guarded turns by upstream model and final action.",
            ["tenant", "model", "action"],
            registry=r,
        )
        self.model_tokens = Counter(
            "tether_model_tokens",
            "Tokens by upstream model.",
            ["tenant", "model", "kind"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "tether_model_duration_seconds",
            "Time the upstream model took per turn (re-asks included).",
            ["tenant", "model"],
            buckets=_SECONDS,
            registry=r,
        )
        self.guard_flags = Counter(
            "tether_guard_flags",
            "Verdicts that flagged, by guard (its policy id), stage and the action it asked.",
            ["tenant", "guard", "stage", "action"],
            registry=r,
        )
        self.guard_seconds = Histogram(
            "tether_guard_duration_seconds",
            "Time each guard took per check.",
            ["tenant", "guard", "stage"],
            buckets=_GUARD_SECONDS,
            registry=r,
        )
        self.reasks = Counter(
            "tether_reasks",
            "Times the model was asked again after a guard.",
            ["tenant"],
            registry=r,
        )
        self.refusals = Counter(
            "tether_refusals",
            "Answers the refusal guard found to be refusals, by model.",
            ["tenant", "model"],
            registry=r,
        )
        self.tool_calls = Counter(
            "tether_tool_calls",
            "Tool calls by the gate's decision.",
            ["tenant", "tool", "decision"],
            registry=r,
        )
        self._guard = _Bounded()
        self._model = _Bounded()
        self._tool = _Bounded()
        self.rate_limited = Counter(
            "tether_rate_limited",
            "Requests refused by a rate limit.",
            ["tenant", "scope"],
            registry=r,
        )
        self._sink: list[tuple[Gauge, str]] = []
        if sink_stats is not None:
            self._sink_gauges(sink_stats)

    def _sink_gauges(self, stats: Callable[[], SinkStats]) -> None:
        self._stats = stats
        for name, doc, field in (
            ("tether_events_written", "Events written to the database.", "written"),
            ("tether_events_spooled", "Events written to the spool instead.", "spooled"),
            ("tether_events_replayed", "Spooled events replayed into the database.", "replayed"),
            ("tether_events_rejected", "Events the database refused, kept aside.", "rejected"),
            ("tether_events_buffered", "Events waiting in memory to be written.", "buffered"),
            ("tether_store_up", "1 if the last event write reached the database.", "available"),
        ):
            gauge = Gauge(
                name,
                doc,
                registry=self.registry,
                multiprocess_mode="livemin" if field == "available" else "livesum",
            )
            if self.multiprocess:
                self._sink.append((gauge, field))  # a function cannot be read across processes
            else:
                gauge.set_function(functools.partial(_stat, stats, field))

    def _publish_sink(self) -> None:
        """Write this worker's event-store figures where the other workers can read them."""
        if self._sink:
            stats = self._stats()
            for gauge, field in self._sink:
                gauge.set(float(getattr(stats, field)))

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
        model = self._model(event.model)
        self.model_turns.labels(tenant, model, event.action).inc()
        self.model_tokens.labels(tenant, model, "prompt").inc(event.usage.prompt_tokens)
        self.model_tokens.labels(tenant, model, "completion").inc(event.usage.completion_tokens)
        if latency.model_ms > 0:
            self.model_seconds.labels(tenant, model).observe(latency.model_ms / 1000)
        if event.reasks:
            self.reasks.labels(tenant).inc(event.reasks)
        verdicts = [*event.verdicts, *(v for call in event.tool_calls for v in call.verdicts)]
        refused = False
        for v in verdicts:
            guard = self._guard(v.guard or v.kind)
            self.guard_seconds.labels(tenant, guard, v.stage).observe(v.latency_ms / 1000)
            if v.flagged:
                self.guard_flags.labels(tenant, guard, v.stage, v.action).inc()
                refused = refused or (v.kind == "refusal" and v.stage == "output")
        if refused:
            self.refusals.labels(tenant, model).inc()
        for call in event.tool_calls:
            self.tool_calls.labels(tenant, self._tool(call.tool), call.decision).inc()
        self._publish_sink()

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        self._publish_sink()
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def _stat(stats: Callable[[], SinkStats], field: str) -> float:
    return float(getattr(stats(), field))
