"""The typed record of one turn, and the sinks it goes to."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from tether.guards import Stage, Verdict
from tether.models import ToolCall, Usage
from tether.tools import ToolCallRecord

__all__ = [
    "ActionTaken",
    "Event",
    "EventSink",
    "FinalAction",
    "GuardedResponse",
    "JsonlSink",
    "Latency",
    "MemorySink",
    "RevisionRound",
    "StreamChunk",
]

FinalAction = Literal["allow", "redact", "block", "escalate", "error"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ActionTaken(_Frozen):
    """Something the pipeline did to the turn, and which guards made it do so."""

    stage: Stage
    action: Literal["log", "redact", "revise", "reask", "escalate", "block", "normalize"]
    guards: tuple[str, ...]
    reason: str


class RevisionRound(_Frozen):
    """One round of deployment-time self-critique: the draft, the model's critique of it
    against the policy's principles, the rewrite, and whether the output guards passed it."""

    round: int
    reasons: str
    draft: str
    critique: str
    revised: str
    passed: bool


class Latency(_Frozen):
    """Milliseconds per stage; model and output guards add up over re-asks."""

    input_guards_ms: float = 0.0
    model_ms: float = 0.0
    output_guards_ms: float = 0.0
    total_ms: float = 0.0


class Event(_Frozen):
    """One turn, as recorded for audit and monitoring. An agent turn also records each tool
    call (``tool_calls``: arguments, the gate's decision and reason, approver, result digest),
    the model calls it took (``steps``), the approval it stopped for (``pending_approval``,
    with ``action`` ``escalate``) and the approval it resumed from (``resumed_from``)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    tenant: str | None = None
    user: str | None = None
    conversation_id: str | None = None
    policy: str
    policy_version: str
    model: str
    input: str
    output: str
    action: FinalAction
    actions: tuple[ActionTaken, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    reasks: int = 0
    revisions: tuple[RevisionRound, ...] = ()
    latency: Latency = Latency()
    usage: Usage = Usage()
    error: str | None = None
    tool_calls: tuple[ToolCallRecord, ...] = ()
    steps: int = 0
    pending_approval: str | None = None
    resumed_from: str | None = None


class GuardedResponse(_Frozen):
    """What a guarded turn returns to the caller."""

    text: str
    action: FinalAction
    actions: tuple[ActionTaken, ...]
    verdicts: tuple[Verdict, ...]
    reasks: int
    revisions: tuple[RevisionRound, ...]
    latency: Latency
    usage: Usage
    model: str
    policy_version: str
    tenant: str | None
    event_id: str
    tool_calls: tuple[ToolCallRecord, ...] = ()
    steps: int = 0
    pending_approval: str | None = Field(
        None, description="The approval this turn waits for; resume it once decided."
    )
    client_tool_calls: tuple[ToolCall, ...] = Field(
        (),
        description="Calls of the caller's own tools (``client_tools``) that passed the gate: "
        "run them and send the results back as tool messages.",
    )

    @classmethod
    def from_event(cls, event: Event) -> GuardedResponse:
        return cls(
            text=event.output,
            action=event.action,
            actions=event.actions,
            verdicts=event.verdicts,
            reasks=event.reasks,
            revisions=event.revisions,
            latency=event.latency,
            usage=event.usage,
            model=event.model,
            policy_version=event.policy_version,
            tenant=event.tenant,
            event_id=event.id,
            tool_calls=event.tool_calls,
            steps=event.steps,
            pending_approval=event.pending_approval,
        )

    @property
    def flagged(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.flagged)


class StreamChunk(_Frozen):
    """A piece of a guarded stream. The last one has ``done`` set, the finish reason and the
    whole response (whose ``text`` is what the client was sent, refusal included)."""

    text: str
    done: bool = False
    finish_reason: Literal["stop", "blocked", "escalated", "error"] | None = None
    response: GuardedResponse | None = None


@runtime_checkable
class EventSink(Protocol):
    """Where events go: one call per turn."""

    async def emit(self, event: Event) -> None: ...


class MemorySink:
    """Keeps the last ``maxlen`` events in memory (for tests, notebooks and the REPL)."""

    def __init__(self, maxlen: int | None = 10_000) -> None:
        self.events: deque[Event] = deque(maxlen=maxlen)

    async def emit(self, event: Event) -> None:
        self.events.append(event)


class JsonlSink:
    """Appends one JSON line per event to a file, flushed before ``emit`` returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    async def emit(self, event: Event) -> None:
        line = event.model_dump_json() + "\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
