"""The audit record of one tool call."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tether.guards import Verdict
from tether.policy import SideEffect

from ._gate import GateAction

__all__ = ["ToolCallRecord", "ToolCallStatus", "digest"]

# "returned": handed to the caller to run (a client tool behind the gateway).
ToolCallStatus = Literal["executed", "denied", "pending", "failed", "returned"]


def digest(text: str) -> str:
    """The sha256 of a tool result, as the audit trail records it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ToolCallRecord(BaseModel):
    """One tool call the model asked for: its arguments, the gate's decision and reason, the
    approval (who decided and when) and a digest of the result.

    ``arguments`` is the JSON text the model sent; ``executed_arguments`` what actually ran
    (validated, and changed by the policy or an approver for ``modify``). ``tainted`` says
    whether untrusted content was in the conversation when the call was decided; ``verdicts``
    are the injection guard's findings on the result of a tool that reads untrusted data,
    which is ``withheld`` from the model when the policy says so."""

    model_config = ConfigDict(frozen=True)

    step: int
    call_id: str
    tool: str
    arguments: str
    executed_arguments: dict[str, Any] | None = None
    decision: GateAction
    reason: str
    rules: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    side_effect: SideEffect | None = None
    tainted: bool = False
    status: ToolCallStatus
    approval_id: str | None = None
    approval: Literal["approved", "denied", "expired"] | None = None
    approver: str | None = None
    decided_at: datetime | None = None
    result_sha256: str | None = None
    result_untrusted: bool = False
    withheld: bool = False
    verdicts: tuple[Verdict, ...] = ()
    gate_ms: float = 0.0
    run_ms: float = 0.0
    error: str | None = None
