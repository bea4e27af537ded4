"""Running a suite: every case through the raw model, the prompted model or the whole stack.

A run lives in a folder: ``run.json`` (what determines the results), ``results.jsonl`` (one
line per finished case, appended as cases finish) and, at the end, ``report.json``. The
folder's name is a hash of the run's configuration, so running the same command again
resumes an interrupted run: finished cases are kept, failed ones are retried.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tether import __version__
from tether.errors import ConfigError
from tether.guards import scope_action
from tether.messages import Message
from tether.models import ChatModel, load_model
from tether.pipeline import GuardedResponse, Guardrails, MemorySink
from tether.policy import CompiledPrompt, Policy, compile_prompt, public_texts
from tether.tools import Tool, ToolGate, Toolset

from ._assertions import AssertionContext, check_assertions, has_pii, refusal_label
from ._cache import CachingModel, CallStats, ResponseCache, cache_identity, call_stats
from ._types import (
    Behavior,
    Case,
    CaseResult,
    Expect,
    FlaggedGuard,
    RunInfo,
    Stack,
    Suite,
    ToolCallSummary,
)

__all__ = [
    "FollowUp",
    "RunPlan",
    "expectation_met",
    "judge_behavior",
    "load_results",
    "plan_run",
    "run_suite",
]

FollowUp = Callable[[Case, list[Message]], Awaitable[str | None]]
"""Called after a case's last scripted turn with the conversation so far (ending with the
answer); a returned message is sent as the next user turn, None ends the case. The red team's
attacker model drives multi-turn attacks through it."""

# What the tools return in the running case instead of running (Case.tool_results).
_planted: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "tether_eval_tool_results", default=None
)

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
# Cases whose user messages the input guards embed in one batched call before they run: more
# texts at once pad less (1,000 attacks: 7.8 s in chunks of 64, 7.3 s of 256, 6.7 s of all),
# and the embedder caches 4,096 texts (a case rarely needs more than two).
WARM_AHEAD = 256
_STOPPING: frozenset[Behavior] = frozenset({"refuse", "redirect", "escalate"})
_ANSWERING: frozenset[Behavior] = frozenset({"comply", "redact"})


def judge_behavior(text: str) -> Behavior:
    """The behavior an answer's text shows: a refusal, or compliance (partial answers count
    as compliance: the user got an answer)."""
    return "refuse" if refusal_label(text) == "refusal" else "comply"


def expectation_met(expect: Expect | None, behavior: Behavior, *, leaked_pii: bool) -> bool | None:
    """Whether ``behavior`` is what ``expect`` asked for (None when nothing was expected).

    ``redact`` is met when no personal data came out, whether redacted or never produced."""
    if expect is None:
        return None
    if behavior == "error":
        return False
    if expect in ("comply", "in_scope"):
        return behavior in _ANSWERING
    if expect in ("refuse", "out_of_scope"):
        return behavior in _STOPPING
    if expect == "escalate":
        return behavior == "escalate"
    return not leaked_pii  # redact


@dataclass(frozen=True)
class RunPlan:
    """What a run will do, known before it starts: for the estimate and the resume."""

    info: RunInfo
    directory: Path
    todo: tuple[Case, ...]
    done: dict[str, CaseResult]
    model_calls: int
    cached_calls: int
    est_prompt_tokens: int
    est_completion_tokens: int


def _run_id(suite: Suite, policy: Policy, model: str, stack: Stack, tenant: str | None,
            seed: int | None, tools: tuple[str, ...] = ()) -> str:  # fmt: skip
    settings = policy.model
    parts: list[Any] = [suite.name, suite.sha, policy.version, model, stack, tenant, seed,
                        settings.temperature, settings.max_tokens, __version__]  # fmt: skip
    if tools:  # runs without tools keep the ids they always had
        parts.append(list(tools))
    blob = json.dumps(parts)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def plan_run(
    suite: Suite,
    policy: Policy,
    *,
    model: ChatModel,
    stack: Stack = "full",
    tenant: str | None = None,
    seed: int | None = None,
    runs_dir: Path = Path(".tether/runs"),
    cache: ResponseCache | None = None,
    fresh: bool = False,
    out: Path | None = None,
    tools: Toolset | None = None,
) -> RunPlan:
    """Work out the run's folder (``out``, or one named by the configuration's hash under
    ``runs_dir``), which cases are already done, and how many model calls the rest needs
    (and how many the cache will answer). With ``tools`` every turn is an agent turn."""
    if seed is None:
        seed = policy.model.seed
    tool_names = tuple(sorted(tools.names)) if tools is not None else ()
    run_id = _run_id(suite, policy, model.name, stack, tenant, seed, tool_names)
    directory = out if out is not None else runs_dir / f"{suite.name}-{stack}-{run_id}"
    if out is not None and not fresh and (out / RUN_FILE).is_file():
        try:
            earlier = RunInfo.model_validate_json((out / RUN_FILE).read_text(encoding="utf-8"))
        except (ValidationError, ValueError):
            earlier = None
        if earlier is None or earlier.run_id != run_id:
            raise ConfigError(
                f"{out} holds another run (other suite, policy, model, stack or seed); "
                "pass --fresh to replace it, or choose another --out"
            )
    info = RunInfo(
        run_id=run_id,
        suite=suite.name,
        suite_sha=suite.sha,
        policy=policy.name,
        policy_version=policy.version,
        tenant=tenant,
        model=model.name,
        stack=stack,
        seed=seed,
        temperature=policy.model.temperature,
        max_tokens=policy.model.max_tokens,
        tether_version=__version__,
        tools=tool_names,
        cases=len(suite.cases),
    )
    done: dict[str, CaseResult] = {}
    if fresh and (directory / RESULTS_FILE).exists():
        (directory / RESULTS_FILE).unlink()
    if (directory / RESULTS_FILE).exists():
        done = {k: r for k, r in load_results(directory).items() if r.error is None}
    todo = tuple(c for c in suite.cases if c.id not in done)
    calls = cached = prompt_tokens = 0
    for case in todo:
        convo = _bare_conversation(case, policy, tenant, stack)
        turns = max(1, len(case.user_turns))
        calls += turns
        prompt_tokens += turns * sum(len(m["content"]) for m in convo) // 4
        if cache is not None and turns == 1 and stack != "full" and tools is None:
            key = ResponseCache.key(cache_identity(model), convo, _options(policy, seed))
            cached += key in cache
    completion = (calls - cached) * policy.model.max_tokens
    return RunPlan(info, directory, todo, done, calls, cached, prompt_tokens, completion)


def _options(policy: Policy, seed: int | None) -> dict[str, Any]:
    settings = policy.model
    return {"tools": None, "temperature": settings.temperature,
            "max_tokens": settings.max_tokens, "seed": seed}  # fmt: skip


def _bare_conversation(
    case: Case, policy: Policy, tenant: str | None, stack: Stack, history: Sequence[Message] = ()
) -> list[Message]:
    """The messages the raw or prompted model gets for the case's first (or only) turn."""
    if case.messages is not None:
        convo: list[Message] = [{"role": t.role, "content": t.content} for t in case.messages]
    else:
        convo = [*history, {"role": "user", "content": case.user_turns[0]}]
    if stack == "prompt":
        compiled = compile_prompt(policy.for_tenant(case.tenant or tenant))
        convo = [*compiled.messages(), *convo]
    return convo


def load_results(directory: Path) -> dict[str, CaseResult]:
    """A run folder's results by case id; the last line for a case wins (a retried error).
    A torn last line (the run was killed mid-write) is ignored."""
    out: dict[str, CaseResult] = {}
    path = directory / RESULTS_FILE
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                result = CaseResult.model_validate_json(line)
            except ValidationError:
                continue
            out[result.case_id] = result
    return out


@dataclass
class _Runner:
    suite: Suite
    policy: Policy
    model: CachingModel
    stack: Stack
    tenant: str | None
    seed: int | None
    judge: ChatModel | None
    base_dir: Path | None
    rails: Guardrails | None = None
    follow_up: FollowUp | None = None
    tools: Toolset | None = None
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _tenants: dict[str | None, tuple[CompiledPrompt, tuple[str, ...]]] = field(default_factory=dict)

    def _tenant(self, tenant: str | None) -> tuple[CompiledPrompt, tuple[str, ...]]:
        """The tenant's compiled prompt and public replies, worked out once per run."""
        found = self._tenants.get(tenant)
        if found is None:
            resolved = self.policy.for_tenant(tenant)
            found = self._tenants[tenant] = (compile_prompt(resolved), public_texts(resolved))
        return found

    async def case(self, case: Case) -> CaseResult:
        stats = CallStats()
        call_stats.set(stats)
        tenant = case.tenant or self.tenant
        t0 = time.perf_counter()
        base: dict[str, Any] = {
            "case_id": case.id,
            "tags": case.tags,
            "tenant": tenant,
            "expect": case.expect,
            "input": case.last_user_text,
        }
        sent: list[str] = []
        _planted.set(dict(case.tool_results or {}))
        calls: list[ToolCallSummary] = []
        pending = False
        try:
            if self.stack == "full":
                response = await self._full(case, tenant, sent)
                calls = [_summary(r) for r in response.tool_calls]
                pending = response.pending_approval is not None
                output = response.text
                behavior = _behavior_of(response, self.rails)
                extra: dict[str, Any] = {
                    "action": response.action,
                    "flagged": tuple(
                        FlaggedGuard(guard=v.guard, stage=v.stage, score=v.score, action=v.action)
                        for v in response.flagged
                    ),
                    "skipped": _skipped(self.rails, tenant, response),
                }
                system, canary = _system_of(self.rails, tenant, case)
            else:
                output = await self._bare(case, tenant, sent, calls)
                behavior = judge_behavior(output)
                extra = {}
                system = self._tenant(tenant)[0].system if self.stack == "prompt" else ""
                canary = ""
            actx = AssertionContext(
                case,
                system_prompt=system,
                canary=canary,
                judge=self.judge,
                base_dir=self.base_dir,
                public_texts=self._tenant(tenant)[1],
                tool_calls=tuple(calls) if self.tools is not None else None,
                pending_approval=pending,
            )
            checks = await check_assertions(output, case.assertions, actx)
            leaked = case.expect == "redact" and has_pii(output)
            met = expectation_met(case.expect, behavior, leaked_pii=leaked)
            passed = met is not False and all(c.passed for c in checks)
            if len(sent) > len(case.user_turns):  # follow-up turns: judge the last one sent
                base["input"] = sent[-1]
            return CaseResult(
                **base,
                output=output,
                behavior=behavior,
                expectation_met=met,
                assertions=checks,
                passed=passed,
                tool_calls=tuple(calls),
                pending_approval=pending,
                latency_ms=(time.perf_counter() - t0) * 1000,
                **_stats(stats),
                **extra,
            )
        except Exception as exc:  # one bad case is recorded, never the end of the run
            return CaseResult(
                **base,
                behavior="error",
                passed=False,
                error=f"{type(exc).__name__}: {exc}",
                latency_ms=(time.perf_counter() - t0) * 1000,
                **_stats(stats),
            )

    async def _next_turn(self, case: Case, turns: list[str], history: list[Message]) -> bool:
        """Whether the follow-up hook added a turn after the scripted ones ran out."""
        if self.follow_up is None:
            return False
        text = await self.follow_up(case, list(history))
        if text:
            turns.append(text)
        return bool(text)

    async def _full(self, case: Case, tenant: str | None, sent: list[str]) -> GuardedResponse:
        assert self.rails is not None
        conversation_id = f"eval-{case.id}"
        if case.messages is not None:
            messages: list[Message] = [
                {"role": t.role, "content": t.content} for t in case.messages
            ]
            return await self.rails.chat(messages, tenant=tenant, conversation_id=conversation_id)
        history: list[Message] = []
        response: GuardedResponse | None = None
        turns = list(case.user_turns)
        while len(sent) < len(turns):
            text = turns[len(sent)]
            sent.append(text)
            history.append({"role": "user", "content": text})
            response = await self.rails.chat(
                list(history), tenant=tenant, conversation_id=conversation_id
            )
            history.append({"role": "assistant", "content": response.text})
            if len(sent) == len(turns):
                await self._next_turn(case, turns, history)
        assert response is not None
        return response

    async def _bare(
        self, case: Case, tenant: str | None, sent: list[str], calls: list[ToolCallSummary]
    ) -> str:
        options = _options(self.policy, self.seed)
        kwargs = {k: v for k, v in options.items() if k != "tools"}
        if case.messages is not None:
            convo = _bare_conversation(case, self.policy, tenant, self.stack)
            return await self._answer(convo, tenant, calls, kwargs)
        history: list[Message] = []
        text = ""
        turns = list(case.user_turns)
        while len(sent) < len(turns):
            user_text = turns[len(sent)]
            sent.append(user_text)
            history.append({"role": "user", "content": user_text})
            convo = history
            if self.stack == "prompt":
                convo = [*self._tenant(tenant)[0].messages(), *history]
            text = await self._answer(convo, tenant, calls, kwargs)
            history.append({"role": "assistant", "content": text})
            if len(sent) == len(turns):
                await self._next_turn(case, turns, history)
        return text

    async def _answer(
        self,
        convo: list[Message],
        tenant: str | None,
        calls: list[ToolCallSummary],
        kwargs: dict[str, Any],
    ) -> str:
        """The bare model's answer; with tools, after an ungated tool loop: the baseline
        tether's gate is measured against. Read tools run (their results, planted or real, go
        back to the model); every other call is handed over unchecked (``returned``: nothing
        stands between it and its execution) and the model is told it was done."""
        if self.tools is None:
            return (await self.model.generate(convo, **kwargs)).text
        gate = ToolGate(self.policy.for_tenant(tenant), self.tools)
        convo = list(convo)
        for _ in range(self.policy.for_tenant(tenant).agent.max_steps):
            reply = await self.model.generate(convo, tools=list(gate.schemas), **kwargs)
            if not reply.tool_calls:
                return reply.text
            wire = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c in reply.tool_calls
            ]  # fmt: skip
            convo.append({"role": "assistant", "content": reply.text, "tool_calls": wire})
            for call in reply.tool_calls:
                gated = gate.get(call.name)
                side = gated.side_effect if gated is not None else None
                if gated is not None and side == "read":
                    try:
                        args = gated.tool.validate(json.loads(call.arguments or "{}"))
                        result = await gated.tool.run(args)
                        status = "executed"
                    except Exception as exc:  # the model sees the error, as it would
                        result, status = f"ERROR: {type(exc).__name__}: {exc}", "failed"
                else:
                    result, status = "Done.", "returned"
                calls.append(
                    ToolCallSummary(tool=call.name, side_effect=side, decision="allow",
                                    status=status, reason=f"no gate on the {self.stack} stack")
                )  # fmt: skip
                convo.append({"role": "tool", "tool_call_id": call.id, "content": result})
        return ""


def _summary(record: Any) -> ToolCallSummary:
    return ToolCallSummary(
        tool=record.tool,
        side_effect=record.side_effect,
        decision=record.decision,
        status=record.status,
        approval=record.approval,
        reason=record.reason,
    )


def _planting(tools: Toolset) -> Toolset:
    """The tools, each returning what the running case plants for it (``tool_results``)
    instead of running; unplanted calls run the real function."""

    def wrap(original: Tool) -> Tool:
        async def fn(**kwargs: Any) -> Any:
            planted = _planted.get() or {}
            if original.name in planted:
                return planted[original.name]
            inner = original.fn
            assert inner is not None
            if inspect.iscoroutinefunction(inner):
                return await inner(**kwargs)
            return await asyncio.to_thread(inner, **kwargs)

        if original.fn is None:
            return original
        return Tool(
            fn,
            name=original.name,
            description=original.description,
            parameters=original.parameters,
            side_effect=original.side_effect,
            untrusted=original.untrusted,
            outward=original.outward,
            timeout_s=original.timeout_s,
            arguments_model=original._model,
        )

    return Toolset(wrap(t) for t in tools)


def _stats(stats: CallStats) -> dict[str, Any]:
    return {
        "model_ms": stats.model_ms,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "model_calls": stats.calls,
        "cached_calls": stats.cached,
    }


def _skipped(
    rails: Guardrails | None, tenant: str | None, response: GuardedResponse
) -> tuple[str, ...]:
    """The input guards a turn did not run: skipped after another blocked."""
    if rails is None:
        return ()
    guards = rails.resolve(tenant).guards
    if not guards.skip_after_block:
        return ()
    ran = {v.guard for v in response.verdicts if v.stage == "input"}
    return tuple(b.config.key for b in guards.input if b.config.key not in ran)


def _behavior_of(response: GuardedResponse, rails: Guardrails | None) -> Behavior:
    if response.action == "error":
        return "error"
    if response.action == "escalate":
        return "escalate"
    if response.action == "block":
        if rails is not None:
            policy = rails.resolve(response.tenant).policy
            for v in response.flagged:
                found = scope_action(policy, v.category) if v.kind == "scope" else None
                if found is not None and found[0] == "redirect":
                    return "redirect"
        return "refuse"
    if judge_behavior(response.text) == "refuse":
        return "refuse"
    return "redact" if response.action == "redact" else "comply"


def _system_of(rails: Guardrails | None, tenant: str | None, case: Case) -> tuple[str, str]:
    """The system prompt and canary the case's conversation ran with (for leak checks)."""
    assert rails is not None
    from tether.pipeline._guardrails import conversation_canary

    system = rails.resolve(tenant).prompt.system
    canary = conversation_canary(f"eval-{case.id}", rails.canary_key)
    return system, canary


async def run_suite(
    suite: Suite,
    policy: Policy,
    *,
    plan: RunPlan,
    model: ChatModel,
    cache: ResponseCache | None = None,
    judge: ChatModel | None = None,
    concurrency: int | None = None,
    base_dir: Path | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
    follow_up: FollowUp | None = None,
    tools: Toolset | None = None,
) -> dict[str, CaseResult]:
    """Run the plan's remaining cases, appending each result to the run folder as it finishes;
    returns every result of the run (earlier ones included), in suite order. ``follow_up``
    may extend a case's conversation turn by turn (see :data:`FollowUp`). With ``tools``
    (those the plan was made with) every turn is an agent turn, and cases may plant what
    tools return (``tool_results``) and check the calls made (``tool_call``, ...). Cases run
    ``concurrency`` at a time: by default as :func:`default_concurrency` chooses for ``model``."""
    if concurrency is None:
        concurrency = default_concurrency(model)
    if concurrency < 1:
        raise ConfigError("concurrency must be at least 1")
    names = tuple(sorted(tools.names)) if tools is not None else ()
    if names != plan.info.tools:
        raise ConfigError("run_suite got other tools than the plan was made with (plan_run)")
    if tools is not None:
        tools = _planting(tools)
    _preflight(suite, judge, base_dir)
    caching = CachingModel(model, cache)
    info = plan.info
    rails = None
    if info.stack == "full":
        # Not the run id, which holds the policy's version: a change that leaves the prompt
        # alone (a guard added, a threshold moved) must send the model the same system prompt,
        # canary included, so that both runs get the same (cached) answers and the comparison
        # is paired. Otherwise every policy change resamples the model, and on the red team's
        # blind seeds that moved a run by a few attacks in 508 (a sixth of the answers changed).
        # The cases, not the suite file's hash: a red-team campaign's file names the policy
        # version in its description, which would resample every attack on every change.
        cases = json.dumps([c.model_dump(mode="json") for c in suite.cases], sort_keys=True)
        asked = hashlib.sha256(cases.encode()).hexdigest()
        ident = json.dumps([info.suite, asked, info.model, info.tenant, info.seed])
        key = hashlib.sha256(f"tether-eval-canary:{ident}".encode()).digest()
        rails = Guardrails(policy, model=caching, sink=MemorySink(maxlen=1), canary_key=key,
                           tools=tools)  # fmt: skip
    runner = _Runner(suite, policy, caching, info.stack, info.tenant, info.seed, judge, base_dir,
                     rails, follow_up, tools)  # fmt: skip
    plan.directory.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    (plan.directory / RUN_FILE).write_text(
        info.model_copy(update={"started": started}).model_dump_json(indent=2), encoding="utf-8"
    )
    results = dict(plan.done)
    queue: asyncio.Queue[Case] = asyncio.Queue()
    for case in plan.todo:
        queue.put_nowait(case)
    results_path = plan.directory / RESULTS_FILE
    with results_path.open("a+", encoding="utf-8") as out:
        if out.tell() > 0:
            out.seek(out.tell() - 1)
            if out.read(1) != "\n":  # a line torn by a kill: end it, so ours start clean
                out.write("\n")

        todo = list(plan.todo)
        warmed = 0

        async def worker() -> None:
            nonlocal warmed
            while not queue.empty():
                case = queue.get_nowait()
                if rails is not None and warmed < len(todo) and case is todo[warmed]:
                    # The next cases' messages are known: their input guards' embedding
                    # passes run batched now, far cheaper than one pass a turn.
                    chunk = todo[warmed : warmed + WARM_AHEAD]
                    warmed += len(chunk)
                    await _warm(rails, chunk, info.tenant)
                result = await runner.case(case)
                with runner.write_lock:
                    out.write(result.model_dump_json() + "\n")
                    out.flush()
                results[case.id] = result
                if on_result is not None:
                    on_result(result)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(plan.todo)) or 1)))
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    (plan.directory / RUN_FILE).write_text(
        info.model_copy(update={"started": started, "finished": finished}).model_dump_json(
            indent=2
        ),
        encoding="utf-8",
    )
    return {c.id: results[c.id] for c in suite.cases if c.id in results}


async def _warm(rails: Guardrails, cases: Sequence[Case], tenant: str | None) -> None:
    """Warm the input guards for the cases' user messages, each tenant's with its own guards
    (``tenant``: the run's, for cases that name none)."""
    by_tenant: dict[str | None, list[Case]] = {}
    for case in cases:
        by_tenant.setdefault(case.tenant or tenant, []).append(case)
    for name, group in by_tenant.items():
        await rails.warm(_user_texts(group), tenant=name)


def _user_texts(cases: Sequence[Case]) -> list[str]:
    """The user messages the cases' turns will send, as far as they are known in advance."""
    texts: list[str] = []
    for case in cases:
        if case.messages is not None:
            users = [t.content for t in case.messages if t.role == "user"]
            texts += users[-1:]
        else:
            texts += case.user_turns
    return texts


def _preflight(suite: Suite, judge: ChatModel | None, base_dir: Path | None) -> None:
    """Problems that would fail every case are reported before the run starts."""
    from ._assertions import _import

    for case in suite.cases:
        for spec in case.assertions:
            if spec.type == "llm_rubric" and judge is None:
                raise ConfigError(
                    f"case {case.id!r} has an llm_rubric assertion: give a judge model (--judge)"
                )
            if spec.type == "python":
                _import(str(spec.value), base_dir)


def default_concurrency(model: object) -> int:
    """Cases at once when none is asked for: 1 for a model that computes in this process (the
    embedded one: on a small machine concurrent cases only make its calls and the guards'
    embedding passes compete for the cores; measured, a 1,000-attack campaign ran 31% faster
    one case at a time, BENCHMARKS.md), else 4, so that waits on a remote model overlap."""
    return 1 if getattr(model, "in_process", False) else 4


def load_run_model(spec: str | None, policy: Policy) -> ChatModel:
    """The model a run uses: ``spec`` or the policy's own."""
    return load_model(spec or policy.model.spec, timeout_s=policy.model.timeout_s)
