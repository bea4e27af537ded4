"""OpenTelemetry traces of guarded turns, following the GenAI semantic conventions: one span per
turn (``invoke_agent <policy>``), with children for each guard (``guard <id>``), the model call
(``chat <model>``) and each tool call (``execute_tool <tool>``), timed from the event's own
latencies. Off unless asked for; needs the ``otel`` extra (``pip install 'tether[otel]'``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigError
from tether.pipeline import Event, EventSink

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = ["TracingSink", "otlp_tracer_provider", "trace_event"]

_INSTALL = "OpenTelemetry is not installed: pip install 'tether[otel]'"
_FINISH = {
    "allow": "stop",
    "redact": "stop",
    "block": "content_filter",
    "escalate": "content_filter",
}


def _ns(event: Event, offset_ms: float) -> int:
    start = event.time - timedelta(milliseconds=event.latency.total_ms)
    return int((start + timedelta(milliseconds=offset_ms)).timestamp() * 1e9)


def trace_event(tracer: Tracer, event: Event, *, capture_content: bool = False) -> None:
    """Record one turn as spans (children of the current span, if any)."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    lat = event.latency
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": event.policy,
        "gen_ai.request.model": event.model,
        "gen_ai.usage.input_tokens": event.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": event.usage.completion_tokens,
        "tether.event_id": event.id,
        "tether.action": event.action,
        "tether.policy_version": event.policy_version,
        "tether.reasks": event.reasks,
        "tether.flagged": [v.guard for v in event.verdicts if v.flagged],
    }
    if event.tenant:
        attrs["tether.tenant"] = event.tenant
    if event.conversation_id:
        attrs["gen_ai.conversation.id"] = event.conversation_id
    if capture_content:
        attrs["tether.input"] = event.input
        attrs["tether.output"] = event.output
    root = tracer.start_span(
        f"invoke_agent {event.policy}", attributes=attrs, start_time=_ns(event, 0)
    )
    if event.action == "error":
        root.set_status(Status(StatusCode.ERROR, event.error or "error"))
    ctx = trace.set_span_in_context(root)
    offsets = {
        "input": 0.0,
        "output": lat.input_guards_ms + lat.model_ms,
        "tool": lat.input_guards_ms,
    }
    for v in event.verdicts:
        begin = offsets.get(v.stage, 0.0)
        span = tracer.start_span(
            f"guard {v.guard}",
            context=ctx,
            start_time=_ns(event, begin),
            attributes={
                "tether.guard.id": v.guard,
                "tether.guard.name": v.kind,
                "tether.guard.stage": v.stage,
                "tether.guard.flagged": v.flagged,
                "tether.guard.score": v.score,
                "tether.guard.action": v.action,
                **({"tether.guard.category": v.category} if v.category else {}),
            },
        )
        if v.error:
            span.set_status(Status(StatusCode.ERROR, v.error))
        span.end(end_time=_ns(event, begin + v.latency_ms))
    if lat.model_ms > 0:
        chat = tracer.start_span(
            f"chat {event.model}",
            context=ctx,
            start_time=_ns(event, lat.input_guards_ms),
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": event.model,
                "gen_ai.response.model": event.model,
                "gen_ai.usage.input_tokens": event.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": event.usage.completion_tokens,
                "gen_ai.response.finish_reasons": [_FINISH.get(event.action, "error")],
            },
        )
        chat.end(end_time=_ns(event, lat.input_guards_ms + lat.model_ms))
    for call in event.tool_calls:
        begin = lat.input_guards_ms
        span = tracer.start_span(
            f"execute_tool {call.tool}",
            context=ctx,
            start_time=_ns(event, begin),
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.tool,
                "gen_ai.tool.call.id": call.call_id,
                "tether.tool.decision": call.decision,
                "tether.tool.status": call.status,
            },
        )
        span.end(end_time=_ns(event, begin + call.gate_ms + call.run_ms))
    root.end(end_time=_ns(event, lat.total_ms))


class TracingSink:
    """An event sink that records each turn as spans, then passes the event on (to ``inner``,
    if given). ``tracer_provider`` defaults to the global one."""

    def __init__(
        self,
        inner: EventSink | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        capture_content: bool = False,
    ) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            raise ConfigError(_INSTALL) from None
        from tether import __version__

        self.inner = inner
        self.capture_content = capture_content
        self.tracer = trace.get_tracer("tether", __version__, tracer_provider=tracer_provider)

    async def emit(self, event: Event) -> None:
        trace_event(self.tracer, event, capture_content=self.capture_content)
        if self.inner is not None:
            await self.inner.emit(event)


def otlp_tracer_provider(
    endpoint: str, *, service_name: str = "tether", headers: dict[str, str] | None = None
) -> TracerProvider:
    """A tracer provider that batches spans to an OTLP/HTTP collector (Jaeger, Phoenix,
    Langfuse, the OpenTelemetry Collector), e.g. ``http://127.0.0.1:4318/v1/traces``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError(_INSTALL) from None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers))
    )
    return provider
