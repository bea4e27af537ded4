"""Agent tools: the @tool registry, the gate between a model's tool calls and their
execution, provenance (taint) tracking, approvals and the audit record of each call."""

from ._approvals import (
    Approval,
    ApprovalStatus,
    ApprovalStore,
    MemoryApprovalStore,
    SqliteApprovalStore,
    ThreadedApprovalStore,
    new_approval,
)
from ._audit import ToolCallRecord, ToolCallStatus, digest
from ._gate import GateAction, GateDecision, GatedTool, GateState, ToolGate
from ._taint import Provenance
from ._tool import Tool, ToolArgumentsError, Toolset, infer_outward, parse_docstring, tool

__all__ = [
    "Approval",
    "ApprovalStatus",
    "ApprovalStore",
    "GateAction",
    "GateDecision",
    "GateState",
    "GatedTool",
    "MemoryApprovalStore",
    "Provenance",
    "SqliteApprovalStore",
    "ThreadedApprovalStore",
    "Tool",
    "ToolArgumentsError",
    "ToolCallRecord",
    "ToolCallStatus",
    "ToolGate",
    "Toolset",
    "digest",
    "infer_outward",
    "new_approval",
    "parse_docstring",
    "tool",
]
