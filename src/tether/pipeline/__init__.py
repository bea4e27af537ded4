"""The guarded turn: Guardrails, decisions, events and event sinks."""

from ._decide import Decision, apply_spans, decide
from ._events import (
    ActionTaken,
    Event,
    EventSink,
    FinalAction,
    GuardedResponse,
    JsonlSink,
    Latency,
    MemorySink,
    RevisionRound,
    StreamChunk,
)
from ._guardrails import Guardrails

__all__ = [
    "ActionTaken",
    "Decision",
    "Event",
    "EventSink",
    "FinalAction",
    "GuardedResponse",
    "Guardrails",
    "JsonlSink",
    "Latency",
    "MemorySink",
    "RevisionRound",
    "StreamChunk",
    "apply_spans",
    "decide",
]
