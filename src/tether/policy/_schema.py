"""The policy file's schema: pydantic models that forbid unknown fields."""

from __future__ import annotations

import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "ACTION_ORDER",
    "GATE_MODE_ORDER",
    "SIDE_EFFECT_ORDER",
    "TOPIC_ACTION_ORDER",
    "Action",
    "AgentOverlay",
    "AgentSettings",
    "ArgRule",
    "ArgValue",
    "Example",
    "Exfiltration",
    "ExfiltrationOverlay",
    "ForbiddenTopic",
    "GateMode",
    "GuardConfig",
    "Guards",
    "Identity",
    "ModelSettings",
    "OutputSpec",
    "Policy",
    "Recovery",
    "RecoveryOverlay",
    "Refusal",
    "Revision",
    "Scope",
    "SideEffect",
    "SideEffectModes",
    "SideEffectModesOverlay",
    "TenantOverlay",
    "Tone",
    "ToolOverlay",
    "ToolSpec",
    "Topic",
    "TopicAction",
]

Action = Literal["log", "redact", "revise", "reask", "escalate", "block"]
"""What happens when a guard flags: from least to most strict."""
ACTION_ORDER: dict[str, int] = {
    "log": 0,
    "redact": 1,
    "revise": 2,
    "reask": 3,
    "escalate": 4,
    "block": 5,
}

TopicAction = Literal["redirect", "refuse", "escalate"]
"""How to answer a request on a forbidden or out-of-scope topic: from least to most strict."""
TOPIC_ACTION_ORDER: dict[str, int] = {"redirect": 0, "refuse": 1, "escalate": 2}

SLUG = r"^[a-z0-9][a-z0-9_.-]*$"
TEMPLATE_FIELDS = frozenset({"assistant", "organization", "allowed_topics", "topic"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _check_template(value: str | None) -> str | None:
    """Reject placeholders that the renderer does not fill, at load time rather than mid-chat."""
    if value is None:
        return None
    for _, name, _, _ in string.Formatter().parse(value):
        if name is not None and name not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; use one of "
                + ", ".join(f"{{{f}}}" for f in sorted(TEMPLATE_FIELDS))
            )
    return value


class Identity(_Strict):
    """Who the assistant is and what it is for."""

    name: str = Field("Assistant", min_length=1, description="The assistant's name.")
    organization: str | None = Field(None, description="Who deploys it.")
    purpose: str = Field(..., min_length=1, description="One or two sentences: what it is for.")
    audience: str | None = Field(None, description="Who it talks to.")


class Topic(_Strict):
    """A topic the assistant handles, described in words and by example requests."""

    name: str = Field(..., pattern=SLUG)
    description: str = Field(..., min_length=1)
    examples: tuple[str, ...] = Field((), description="Example requests on this topic.")


class ForbiddenTopic(Topic):
    """A topic the assistant must not help with, and how it answers instead."""

    action: TopicAction = "refuse"


class Scope(_Strict):
    """What the assistant helps with and what it must not."""

    allowed_topics: tuple[Topic, ...] = ()
    forbidden_topics: tuple[ForbiddenTopic, ...] = ()
    out_of_scope: TopicAction = Field(
        "redirect", description="How to answer requests that match no allowed topic."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Scope:
        names = [t.name for t in (*self.allowed_topics, *self.forbidden_topics)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"topic names must be unique; repeated: {', '.join(dupes)}")
        return self


class Tone(_Strict):
    """Voice and style rules."""

    voice: str | None = None
    rules: tuple[str, ...] = ()


class Refusal(_Strict):
    """The words used when the assistant does not help. Placeholders: {assistant},
    {organization}, {allowed_topics}, {topic}."""

    message: str = "I'm sorry, but I can't help with that."
    redirect: str = "I can help with {allowed_topics}. What would you like to know?"
    escalation: str = "I'm passing this to a member of our team who can help you directly."
    failure: str = "Sorry, I couldn't produce a valid answer. Please try again."

    @field_validator("message", "redirect", "escalation", "failure")
    @classmethod
    def _templates(cls, value: str | None) -> str | None:
        return _check_template(value)


class Example(_Strict):
    """A few-shot edge case: a user turn and the ideal answer."""

    user: str = Field(..., min_length=1)
    assistant: str = Field(..., min_length=1)
    note: str | None = Field(None, description="Why this case matters; not sent to the model.")


class GuardConfig(_Strict):
    """One guard in the input or output list."""

    guard: str = Field(..., description="The registered guard name, e.g. deny_list.")
    id: str | None = Field(
        None, pattern=SLUG, description="Unique within its list; defaults to the guard name."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    action: Action = "block"
    fail: Literal["closed", "open"] = Field(
        "closed", description="closed: a guard error or timeout blocks; open: it is ignored."
    )
    timeout_ms: int | None = Field(
        None,
        gt=0,
        le=60_000,
        description="Time budget; default: the guard's own (1000 ms; 5000 ms for guards that "
        "run the embedding model).",
    )
    message: str | None = Field(None, description="Reply used instead of the refusal on block.")

    @field_validator("message")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return _check_template(value)

    @property
    def key(self) -> str:
        return self.id or self.guard


class Guards(_Strict):
    """Guards on the user's input and on the model's output."""

    input: tuple[GuardConfig, ...] = ()
    output: tuple[GuardConfig, ...] = ()
    skip_after_block: bool = Field(
        False,
        description="Run the input guards one after another, in order, and once one blocks, "
        "skip those after it that cannot change the reply (all but `scope` and guards with a "
        "`message` of their own): the same action and reply, at the cost of fewer guards on "
        "record. List the cheap guards first.",
    )
    check_history: Literal["off", "answers", "strict"] = Field(
        "off",
        description="Check the turns the client sends back as the assistant's. `answers`: an "
        "earlier answer must pass the output guards that block (not replayed: `pii`, "
        "`self_check`, `refusal`, `json`). `strict` also: an earlier request the input guards "
        "stop must have been answered with this policy's reply to it (refusal, redirection, "
        "escalation or guard message); right when this deployment wrote every assistant turn, "
        "not when a person or another system did. A history that fails is answered with the "
        "refusal and recorded as a block by `history`. A tenant may tighten it, not loosen it.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Guards:
        for stage in ("input", "output"):
            keys = [g.key for g in getattr(self, stage)]
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(
                    f"{stage} guards need unique ids; repeated: {', '.join(dupes)} "
                    "(give each an `id:`)"
                )
        return self


class OutputSpec(_Strict):
    """The shape the answer must have."""

    format: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = Field(
        None, description="With format json: the JSON Schema the answer must satisfy."
    )
    max_reasks: int = Field(2, ge=0, le=5, description="Re-asks before giving up.")
    holdback_chars: int = Field(
        8,
        ge=0,
        le=4096,
        description="Streaming: characters held back until the output guards have passed them "
        "(a word or number being written is always held back whole).",
    )

    @model_validator(mode="after")
    def _schema_needs_json(self) -> OutputSpec:
        if self.json_schema is not None:
            if self.format != "json":
                raise ValueError("json_schema needs `format: json`")
            from jsonschema import SchemaError
            from jsonschema.validators import validator_for

            try:
                validator_for(self.json_schema).check_schema(self.json_schema)
            except SchemaError as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
        return self


class Revision(_Strict):
    """Deployment-time self-critique: on a draft an output guard sends to `revise`, the model
    critiques it against these principles and rewrites it, up to `max_rounds` times."""

    principles: tuple[str, ...] = Field(
        (), description="What a good answer respects, e.g. 'Never state a diagnosis.'"
    )
    max_rounds: int = Field(2, ge=1, le=4)


class Recovery(_Strict):
    """Over-refusal recovery, off by default. When every input guard passed, the scope guard
    placed the request on an allowed topic and the refusal judge reads the model's draft as a
    refusal, the model answers once more: primed with ``opener`` (the conversation ends with
    that partial answer, which the model continues) on models that can continue a turn, with
    an instruction built from the topic's description on others (``fallback``). The new
    answer replaces the draft only if the judge no longer reads it as a refusal, and it goes
    through every output guard like any answer. A request any input guard but scope scored
    ``max_input_score`` or more on (a near miss, e.g. a mild jailbreak) is not retried."""

    enabled: bool = False
    opener: str = Field(
        "Sure! Here is how",
        min_length=1,
        max_length=200,
        description="The start of the answer the model continues; placeholders as in refusal.",
    )
    instruction: bool = Field(
        True,
        description="Also tell the model, in the system prompt, that the request is on the "
        "topic it matched (from the topic's description) and is to be answered.",
    )
    fallback: Literal["instruct", "none"] = Field(
        "instruct",
        description="For models that cannot continue a partial answer: retry with the "
        "instruction only (instruct) or not at all (none).",
    )
    max_input_score: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Overriding a refusal needs more certainty than letting a request through: "
        "no recovery when any input guard but scope scored this much, flagged or not.",
    )

    @field_validator("opener")
    @classmethod
    def _template(cls, value: str) -> str:
        return _check_template(value) or value


class ModelSettings(_Strict):
    """Which model answers, and how."""

    spec: str = Field("embedded", description="embedded | openai:MODEL[@BASE_URL] | scripted:FILE")
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(256, gt=0, le=32_768)
    seed: int | None = 0
    timeout_s: float = Field(60.0, gt=0)


SideEffect = Literal["read", "write", "destructive"]
"""What calling a tool can do: from least to most harmful."""
SIDE_EFFECT_ORDER: dict[str, int] = {"read": 0, "write": 1, "destructive": 2}

GateMode = Literal["allow", "require_approval", "deny"]
"""What the tool gate does with a call: from least to most strict."""
GATE_MODE_ORDER: dict[str, int] = {"allow": 0, "require_approval": 1, "deny": 2}

ArgValue = str | bool | int | float


class ArgRule(_Strict):
    """Constraints on one argument of a tool, checked after its type. A value that breaks one
    is denied with the reason, so the model can correct the call."""

    allow: tuple[ArgValue, ...] | None = Field(None, description="The only values permitted.")
    min: float | None = Field(None, description="Lowest value a number may take.")
    max: float | None = Field(
        None, description="Highest value a number may take, e.g. the largest amount to transfer."
    )
    patterns: tuple[str, ...] = Field(
        (), description="RE2 patterns a string must match in full (every one of them)."
    )
    max_length: int | None = Field(None, ge=0, description="Longest string allowed.")
    clamp: bool = Field(
        False,
        description="Move a number outside min..max to the nearest bound (the gate's `modify`) "
        "instead of denying the call.",
    )

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from tether.guards import compile_safe  # guards import policy: resolve at use

        for pattern in value:
            compile_safe(pattern, case_sensitive=True)
        return value

    @model_validator(mode="after")
    def _range(self) -> ArgRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


class ToolSpec(_Strict):
    """A tool the assistant may call, and how the gate treats its calls. A tool the policy
    does not list is never offered and every call to it is denied. Unset fields keep what the
    tool's code declares (a tool known only by name counts as destructive)."""

    name: str = Field(..., pattern=SLUG)
    description: str = Field("", description="Shown to the model instead of the docstring.")
    side_effect: SideEffect | None = Field(
        None, description="Reclassify the tool: read | write | destructive."
    )
    decision: GateMode | None = Field(
        None, description="Overrides the side-effect default in `agent.decisions`."
    )
    untrusted: bool | None = Field(
        None,
        description="Its results are untrusted content (web pages, e-mail, documents): scanned "
        "for injections, and they taint the conversation.",
    )
    outward: bool | None = Field(
        None,
        description="It sends data out (send, post, e-mail, fetch a URL): arguments copied from "
        "untrusted content are exfiltration. Unset: the code's flag, else guessed from the name.",
    )
    args: dict[str, ArgRule] = Field(
        default_factory=dict, description="Constraints per argument name."
    )
    max_calls: int | None = Field(None, ge=0, description="Calls per conversation.")


class SideEffectModes(_Strict):
    """What the gate does with a call, by the tool's side-effect class."""

    read: GateMode = "allow"
    write: GateMode = "require_approval"
    destructive: GateMode = "require_approval"


class Exfiltration(_Strict):
    """Outward calls whose arguments carry data copied from untrusted content."""

    action: Literal["require_approval", "deny"] = "deny"
    min_words: int = Field(
        8, ge=3, le=64, description="A run of this many words copied from untrusted content."
    )


class AgentSettings(_Strict):
    """The agent loop and the tool gate between the model's tool calls and their execution."""

    max_steps: int = Field(8, ge=1, le=64, description="Model calls in one turn.")
    max_tool_calls: int = Field(
        32,
        ge=0,
        le=10_000,
        description="Tool calls (executed or sent for approval) per conversation.",
    )
    decisions: SideEffectModes = Field(
        SideEffectModes(), description="The default decision per side-effect class."
    )
    after_untrusted: SideEffectModes = Field(
        SideEffectModes(),
        description="The least strict decision once untrusted content is in the conversation.",
    )
    exfiltration: Exfiltration = Exfiltration()
    on_injection: Literal["log", "withhold"] = Field(
        "withhold",
        description="Untrusted tool output the injection guard flags: log the verdict only, or "
        "also withhold the output from the model.",
    )
    approval_timeout_s: float = Field(
        86_400.0, gt=0, description="A pending approval nobody decides in time is denied."
    )


class IdentityOverlay(_Strict):
    name: str | None = None
    organization: str | None = None


class ScopeOverlay(_Strict):
    allowed_topics: tuple[str, ...] | None = Field(
        None, description="Names of base allowed topics to keep; omit to keep all."
    )
    forbidden_topics: tuple[ForbiddenTopic, ...] = Field(
        (), description="Added; a base topic's name here may add examples or a stricter action."
    )
    out_of_scope: TopicAction | None = None


class ToneOverlay(_Strict):
    voice: str | None = None
    rules: tuple[str, ...] = ()


class RefusalOverlay(_Strict):
    message: str | None = None
    redirect: str | None = None
    escalation: str | None = None
    failure: str | None = None

    @field_validator("message", "redirect", "escalation", "failure")
    @classmethod
    def _templates(cls, value: str | None) -> str | None:
        return _check_template(value)


class ToolOverlay(_Strict):
    """A base tool a tenant keeps, with stricter settings: a stricter side-effect class or
    decision, untrusted or outward turned on, narrower argument rules, fewer calls."""

    name: str = Field(..., pattern=SLUG)
    side_effect: SideEffect | None = None
    decision: GateMode | None = None
    untrusted: bool | None = None
    outward: bool | None = None
    args: dict[str, ArgRule] = Field(default_factory=dict)
    max_calls: int | None = Field(None, ge=0)


class SideEffectModesOverlay(_Strict):
    read: GateMode | None = None
    write: GateMode | None = None
    destructive: GateMode | None = None


class ExfiltrationOverlay(_Strict):
    action: Literal["require_approval", "deny"] | None = None
    min_words: int | None = Field(None, ge=3, le=64)


class RecoveryOverlay(_Strict):
    """Over-refusal recovery, narrowed: a tenant may turn it off, retry fewer requests (a lower
    ``max_input_score``) or drop the instruction-only retry; it may not turn it on, since it
    makes the model answer what it declined."""

    enabled: bool | None = None
    max_input_score: float | None = Field(None, ge=0, le=1)
    fallback: Literal["instruct", "none"] | None = None


class AgentOverlay(_Strict):
    """Stricter agent settings: fewer steps and calls, stricter decisions, shorter timeouts."""

    max_steps: int | None = Field(None, ge=1, le=64)
    max_tool_calls: int | None = Field(None, ge=0, le=10_000)
    decisions: SideEffectModesOverlay | None = None
    after_untrusted: SideEffectModesOverlay | None = None
    exfiltration: ExfiltrationOverlay | None = None
    on_injection: Literal["log", "withhold"] | None = None
    approval_timeout_s: float | None = Field(None, gt=0)


class TenantOverlay(_Strict):
    """What a tenant changes. It may only tighten: add constraints, guards, forbidden topics
    and examples; make guard actions and thresholds stricter; narrow scope; remove tools."""

    identity: IdentityOverlay | None = None
    context: tuple[str, ...] = ()
    scope: ScopeOverlay | None = None
    tone: ToneOverlay | None = None
    refusal: RefusalOverlay | None = None
    constraints: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    guards: Guards | None = None
    revision_principles: tuple[str, ...] = Field((), description="Added to revision.principles.")
    tools: tuple[str | ToolOverlay, ...] | None = Field(
        None,
        description="Base tools to keep, by name or with stricter settings; omit to keep all.",
    )
    agent: AgentOverlay | None = None
    recovery: RecoveryOverlay | None = None


class Policy(_Strict):
    """One application's declarative policy; ``tenants`` holds its overlays."""

    format_version: Literal[1] = 1
    name: str = Field(..., pattern=SLUG)
    identity: Identity
    scope: Scope = Scope()
    tone: Tone = Tone()
    refusal: Refusal = Refusal()
    constraints: tuple[str, ...] = Field((), description="Hard rules, e.g. never give a diagnosis.")
    context: tuple[str, ...] = Field((), description="Facts the assistant may rely on.")
    examples: tuple[Example, ...] = ()
    guards: Guards = Guards()
    output: OutputSpec = OutputSpec()
    revision: Revision = Revision()
    recovery: Recovery = Recovery()
    model: ModelSettings = ModelSettings()
    tools: tuple[ToolSpec, ...] = ()
    agent: AgentSettings = AgentSettings()
    tenants: dict[str, TenantOverlay] = Field(default_factory=dict)
    tenant: str | None = Field(None, description="Set on a resolved tenant policy; not in files.")

    _source: Any = PrivateAttr(default=None)

    def for_tenant(self, tenant: str | None) -> Policy:
        """This policy with ``tenant``'s overlay merged on (tighten-only); ``None`` → self."""
        if tenant is None:
            return self
        from ._tenants import resolve_tenant

        return resolve_tenant(self, tenant)

    @property
    def version(self) -> str:
        """``name[/tenant]@hash`` of this resolved policy."""
        from ._compile import policy_version

        return policy_version(self)

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: tuple[ToolSpec, ...]) -> tuple[ToolSpec, ...]:
        names = [t.name for t in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        return value

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, TenantOverlay]) -> dict[str, TenantOverlay]:
        import re

        for name in value:
            if not re.match(SLUG, name):
                raise ValueError(f"tenant name {name!r} must match {SLUG}")
        return value
