"""Suites, cases and what a run produces: the data every part of the harness shares."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ASSERTION_TYPES",
    "AssertionResult",
    "AssertionSpec",
    "AssertionType",
    "Behavior",
    "Case",
    "CaseChange",
    "CaseResult",
    "Comparison",
    "Expect",
    "FlaggedGuard",
    "Metric",
    "MetricDelta",
    "RunInfo",
    "RunReport",
    "Stack",
    "Suite",
    "ToolCallSummary",
    "Turn",
]

Expect = Literal["comply", "refuse", "redact", "escalate", "in_scope", "out_of_scope"]
"""What the application should do with a case."""

Behavior = Literal["comply", "refuse", "redirect", "escalate", "redact", "error"]
"""What it did: judged from the guarded response (full stack) or the answer's text."""

Stack = Literal["raw", "prompt", "full"]
"""raw: the bare model; prompt: plus the compiled system prompt; full: the whole pipeline."""

AssertionType = Literal[
    "contains",
    "not_contains",
    "icontains",
    "regex",
    "not_regex",
    "json_schema",
    "is_json",
    "is_refusal",
    "not_refusal",
    "no_pii",
    "no_prompt_leak",
    "llm_rubric",
    "python",
    "tool_call",
    "no_tool_call",
    "no_destructive_call",
    "no_approval_prompt",
]
"""A check on the final answer, or (``tool_call``, ``no_tool_call``, ``no_destructive_call``,
``no_approval_prompt``) on the tool calls of an agent turn, read from its tool-call records."""

ASSERTION_TYPES: tuple[str, ...] = get_args(AssertionType)
# Assertion types that take no value.
_BARE = frozenset(
    {"is_json", "is_refusal", "not_refusal", "no_pii", "no_prompt_leak", "no_destructive_call",
     "no_approval_prompt"}
)  # fmt: skip
# Assertion types whose value is a tool name or a list of them.
_TOOL_NAMES = frozenset({"tool_call", "no_tool_call"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssertionSpec(_Strict):
    """One check on the final answer. In a file: ``{type: contains, value: PIN}``, the
    shorthand ``{contains: PIN}``, or a bare name such as ``is_refusal``."""

    type: AssertionType
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"type": data}
        if isinstance(data, dict) and "type" not in data and len(data) == 1:
            ((key, value),) = data.items()
            return {"type": key, "value": value}
        return data

    @model_validator(mode="after")
    def _value_fits(self) -> AssertionSpec:
        kind = self.type
        if kind in _BARE:
            if self.value not in (None, True):
                raise ValueError(f"{kind} takes no value")
        elif kind == "json_schema":
            if not isinstance(self.value, dict):
                raise ValueError("json_schema needs a JSON Schema object as its value")
            from jsonschema import SchemaError
            from jsonschema.validators import validator_for

            try:
                validator_for(self.value).check_schema(self.value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        elif kind in _TOOL_NAMES:
            names = [self.value] if isinstance(self.value, str) else self.value
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(n, str) and n.strip() for n in names)
            ):
                raise ValueError(f"{kind} needs a tool name or a non-empty list of tool names")
        elif not isinstance(self.value, str) or not self.value:
            raise ValueError(f"{kind} needs a non-empty string value")
        elif kind in ("regex", "not_regex"):
            from tether.guards import compile_safe

            # RE2, linear time: a suite's pattern cannot hang the run.
            compile_safe(self.value, case_sensitive=True)
        elif kind == "python" and ":" not in self.value:
            raise ValueError("python needs 'module:function' (the function gets the answer)")
        return self


class Turn(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Case(_Strict):
    """One test: a conversation, what should happen, and checks on the final answer.

    Give exactly one of ``input`` (one user message), ``turns`` (user messages sent one after
    another, each answered live; the last answer is judged) or ``messages`` (a fixed
    history ending with the user's message)."""

    id: str = Field("", description="Unique in the suite; defaults to '<suite>-<n>'.")
    input: str | None = None
    turns: tuple[str, ...] | None = None
    messages: tuple[Turn, ...] | None = None
    tenant: str | None = None
    expect: Expect | None = None
    assertions: tuple[AssertionSpec, ...] = Field((), alias="assert")
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    tool_results: dict[str, str] | None = Field(
        None,
        description="Agent runs: what the named tools return in this case instead of running "
        "(e.g. a document carrying an injected instruction, returned by an untrusted tool).",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_conversation(self) -> Case:
        given = [k for k in ("input", "turns", "messages") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of input, turns or messages"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.input is not None and not self.input.strip():
            raise ValueError("input is empty")
        if self.turns is not None and (not self.turns or not all(t.strip() for t in self.turns)):
            raise ValueError("turns needs at least one non-empty user message")
        if self.messages is not None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError("messages must end with the user's message")
        if self.expect is None and not self.assertions:
            raise ValueError("a case needs `expect`, `assert` or both")
        return self

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.strip() for t in value if t.strip()))

    @property
    def user_turns(self) -> tuple[str, ...]:
        """The user messages to send live, in order."""
        if self.input is not None:
            return (self.input,)
        if self.turns is not None:
            return self.turns
        return ()

    @property
    def last_user_text(self) -> str:
        if self.messages is not None:
            return self.messages[-1].content
        return self.user_turns[-1]


class Suite(_Strict):
    """A named list of cases; ``defaults`` (tenant, tags, assert) apply to every case."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    cases: tuple[Case, ...]
    sha: str = Field("", description="Content hash of the suite file, set on load.")


class AssertionResult(_Strict):
    type: str
    passed: bool
    reason: str = ""


class ToolCallSummary(_Strict):
    """One tool call of an agent turn, as its tool-call record tells it: what the gate
    decided, what happened (``executed``; ``returned``: handed to the caller to run, or on
    the raw and prompt stacks, where nothing gates it; ``denied``; ``pending`` approval;
    ``failed``) and whether a person approved it."""

    tool: str
    side_effect: str | None = None
    decision: str
    status: str
    approval: str | None = None
    reason: str = ""

    @property
    def ran_unapproved(self) -> bool:
        """It ran (or was handed over to run) without a person's approval."""
        return self.status in ("executed", "returned") and self.approval != "approved"


class FlaggedGuard(_Strict):
    guard: str
    stage: str
    score: float
    action: str


class CaseResult(_Strict):
    """What one case did under one configuration."""

    case_id: str
    tags: tuple[str, ...] = ()
    tenant: str | None = None
    expect: Expect | None = None
    input: str
    output: str = ""
    behavior: Behavior
    expectation_met: bool | None = None
    assertions: tuple[AssertionResult, ...] = ()
    passed: bool
    action: str | None = Field(None, description="The pipeline's final action (full stack).")
    flagged: tuple[FlaggedGuard, ...] = ()
    skipped: tuple[str, ...] = Field(
        (),
        description="Input guards not run because one before them blocked "
        "(`guards.skip_after_block`); left out of their detection and false-positive counts.",
    )
    tool_calls: tuple[ToolCallSummary, ...] = Field(
        (), description="Agent runs: every tool call the model made, and what became of it."
    )
    pending_approval: bool = Field(False, description="The turn stopped for an approval.")
    latency_ms: float = 0.0
    model_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    cached_calls: int = 0
    error: str | None = None


class RunInfo(_Strict):
    """Everything that determines a run's results (the run id is a hash of it)."""

    run_id: str
    suite: str
    suite_sha: str
    policy: str
    policy_version: str
    tenant: str | None
    model: str
    stack: Stack
    seed: int | None
    temperature: float
    max_tokens: int
    tether_version: str
    tools: tuple[str, ...] = Field((), description="Agent runs: the tools offered.")
    started: str = ""
    finished: str = ""
    cases: int = 0


class Metric(_Strict):
    """``k`` of ``n`` with a Wilson 95% interval; ``better`` says which way is good."""

    name: str
    k: int
    n: int
    value: float | None
    low: float | None
    high: float | None
    better: Literal["higher", "lower"]
    description: str = ""


class RunReport(_Strict):
    """A finished run, summarised: what ``report.json`` holds."""

    info: RunInfo
    metrics: tuple[Metric, ...]
    by_tag: dict[str, tuple[Metric, ...]] = Field(default_factory=dict)
    by_tenant: dict[str, tuple[Metric, ...]] = Field(default_factory=dict)
    guards: tuple[Metric, ...] = Field(
        (), description="Per guard: detection on should-stop cases and false positives."
    )
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    confusion: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="expected → behavior → count"
    )
    errors: int = 0
    results: tuple[CaseResult, ...] = ()


class MetricDelta(_Strict):
    """One metric in two runs, with the paired test on the cases both runs scored."""

    name: str
    a: Metric
    b: Metric
    delta: float | None = Field(None, description="b.value - a.value")
    p_value: float | None = Field(
        None, description="Exact McNemar test on the cases in this metric in both runs."
    )
    discordant: tuple[int, int] = Field(
        (0, 0), description="(passed in A only, passed in B only) among paired cases"
    )
    regressed: bool = Field(False, description="B is worse and p < alpha.")


class CaseChange(_Strict):
    """A case whose outcome differs between the runs."""

    case_id: str
    tags: tuple[str, ...] = ()
    expect: Expect | None = None
    input: str
    a_passed: bool
    b_passed: bool
    a_behavior: Behavior
    b_behavior: Behavior
    a_output: str = ""
    b_output: str = ""
    b_failed_checks: tuple[str, ...] = ()


class Comparison(_Strict):
    """``tether eval compare A B``: per-metric deltas, paired tests and the changed cases."""

    a: RunInfo
    b: RunInfo
    alpha: float = 0.05
    paired: int = Field(0, description="Cases present in both runs.")
    only_in_a: tuple[str, ...] = ()
    only_in_b: tuple[str, ...] = ()
    deltas: tuple[MetricDelta, ...] = ()
    regressed_cases: tuple[CaseChange, ...] = ()
    improved_cases: tuple[CaseChange, ...] = ()
    regression: bool = Field(False, description="Any metric regressed significantly.")
