"""OpenTelemetry spans of a guarded turn (GenAI conventions), caught by an in-memory exporter."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from tether import Guardrails, load_policy_text
from tether.models import ScriptedModel
from tether.monitor import TracingSink
from tether.pipeline import MemorySink

POLICY = """
name: support
identity: {purpose: Answer questions about the product.}
guards:
  input:
    - {guard: deny_list, id: crypto, params: {terms: [bitcoin]}, action: block}
  output:
    - {guard: length, params: {max_chars: 500}}
"""


async def test_turn_and_guard_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inner = MemorySink()
    sink = TracingSink(inner, tracer_provider=provider)
    rails = Guardrails(
        load_policy_text(POLICY), model=ScriptedModel(["Sure, here you go."]), sink=sink
    )
    await rails.chat("How do I reset my password?")
    await rails.chat("Should I buy bitcoin?")
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("invoke_agent support") == 2
    assert names.count("guard crypto") == 2 and names.count("guard length") == 1
    (chat,) = [s for s in spans if s.name.startswith("chat ")]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    blocked = [
        s for s in spans if s.name == "guard crypto" and s.attributes["tether.guard.flagged"]
    ]
    assert len(blocked) == 1
    roots = [s for s in spans if s.name == "invoke_agent support"]
    assert {r.attributes["tether.action"] for r in roots} == {"allow", "block"}
    for s in spans:
        if s.parent is not None:
            assert s.parent.span_id in {r.context.span_id for r in roots}
            assert roots[0].start_time is not None and s.start_time is not None
    assert "tether.input" not in roots[0].attributes  # content is off by default
    assert len(inner.events) == 2
