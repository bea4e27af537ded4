"""Build a policy's guards and run them concurrently with time budgets and fail modes."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from tether import registry
from tether.policy import GuardConfig, Policy

from ._base import Guard, GuardContext, Stage, Verdict

__all__ = ["BoundGuard", "PolicyGuards", "build_guards", "run_guards"]

FORMAT_GUARD_ID = "output_format"
DEFAULT_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class BoundGuard:
    """A guard instance with the policy entry that configured it."""

    config: GuardConfig
    guard: Guard
    stage: Stage
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS

    @property
    def timeout_ms(self) -> int:
        """The policy's budget for this guard, else the guard's own default."""
        return self.config.timeout_ms or self.default_timeout_ms


@dataclass(frozen=True, slots=True)
class PolicyGuards:
    input: tuple[BoundGuard, ...]
    output: tuple[BoundGuard, ...]
    skip_after_block: bool = False  # for the input guards: see run_guards


def build_guards(policy: Policy) -> PolicyGuards:
    """Instantiate every guard the (resolved) policy names. ``output.format: json`` adds a
    ``json`` guard with action ``reask`` unless the policy configures one itself."""
    output_cfgs = list(policy.guards.output)
    if policy.output.format == "json" and not any(c.guard == "json" for c in output_cfgs):
        output_cfgs.append(
            GuardConfig(
                guard="json",
                id=FORMAT_GUARD_ID,
                params={"json_schema": policy.output.json_schema},
                action="reask",
            )
        )
    return PolicyGuards(
        input=tuple(_bind(c, "input") for c in policy.guards.input),
        output=tuple(_bind(c, "output") for c in output_cfgs),
        skip_after_block=policy.guards.skip_after_block,
    )


def _bind(cfg: GuardConfig, stage: Stage) -> BoundGuard:
    reg = registry.lookup("guard", cfg.guard)
    params = reg.validate_params(cfg.params)
    guard = reg.factory(params) if params is not None else reg.factory()
    return BoundGuard(cfg, guard, stage, int(reg.extra.get("timeout_ms", DEFAULT_TIMEOUT_MS)))


async def run_guards(
    guards: Sequence[BoundGuard],
    text: str,
    ctx: GuardContext,
    *,
    skip_after_block: bool = False,
) -> list[Verdict]:
    """Run ``guards`` on ``text`` concurrently; one verdict each, in order. A guard that raises
    or overruns ``timeout_ms`` yields an error verdict that blocks (fail closed) or is ignored
    (fail open), as its config says.

    With ``skip_after_block`` the guards run one after another, in order, and once one blocks
    (an error that fails closed included) those after it that cannot change the answer are
    not run and give no verdict: every guard but ``scope`` (its topic decides the refusal's
    wording and whether the turn is escalated) and, until a blocking guard had one, guards
    with a ``message`` of their own (the first blocking guard's message is the reply). Block
    outranks every other action, so the action and the reply are those of the full run; only
    the record of which guards would also have fired is shorter.

    Each check starts at once, in order, in the caller's task (as ``asyncio``'s eager tasks
    do). Rule-based checks finish without ever waiting, so they cost no task and no timer
    (together about 15 µs a guard, as much as a small guard's own work); a check that does
    wait (a model call, a worker thread) goes on in a task of its own, under its budget, and
    the others run meanwhile. As before, nothing can interrupt a check while it computes: a
    budget ends a check only where it waits.
    """
    loop = asyncio.get_running_loop()
    verdicts: list[Verdict | None] = []
    waiting: list[tuple[int, asyncio.Task[Verdict]]] = []
    blocked = False  # with skip_after_block: a guard so far blocked
    messaged = False  # ... and one of those has a message of its own
    previous: BoundGuard | None = None  # the guard that gave verdicts[-1]
    for bound in guards:
        if skip_after_block:
            if waiting:  # its verdict decides whether the next guard runs
                (index, task), *_ = waiting
                verdicts[index] = await task
                waiting.clear()
            last = verdicts[-1] if verdicts else None
            if (
                previous is not None
                and last is not None
                and last.flagged
                and last.action == "block"
            ):
                blocked = True
                messaged = messaged or previous.config.message is not None
            if blocked and not _may_change_reply(bound, messaged):
                continue
            previous = bound
        start = time.perf_counter()
        deadline = loop.time() + bound.timeout_ms / 1000
        try:
            check = bound.guard.check(text, ctx)
            if not isinstance(check, types.CoroutineType):  # another awaitable: no first step
                task = asyncio.ensure_future(_wait(bound, start, deadline, check))
                waiting.append((len(verdicts), task))
                verdicts.append(None)
                continue
            step = check.send(None)
        except StopIteration as done:
            verdicts.append(_finish(bound, start, done.value))
            continue
        except Exception as exc:  # a guard bug must not take the turn down with it
            verdicts.append(_finish(bound, start, f"{type(exc).__name__}: {exc}"))
            continue
        task = asyncio.ensure_future(_wait(bound, start, deadline, _Resume(check, step)))
        waiting.append((len(verdicts), task))
        verdicts.append(None)
    if waiting:
        finished = await asyncio.gather(*(task for _, task in waiting))
        for (index, _), verdict in zip(waiting, finished, strict=True):
            verdicts[index] = verdict
    return [v for v in verdicts if v is not None]


def _may_change_reply(bound: BoundGuard, messaged: bool) -> bool:
    """Whether a guard after a blocking one could still change the turn's reply or action."""
    return bound.config.guard == "scope" or (bound.config.message is not None and not messaged)


async def _wait(
    bound: BoundGuard, start: float, deadline: float, check: Awaitable[Verdict]
) -> Verdict:
    """Finish a check that waits; its budget ends at ``deadline`` (loop time)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # run_guards made this a task
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    # A timer even where the deadline has passed (asyncio.timeout would cancel at once): a
    # check that overran before it first waited still takes the step already scheduled for
    # it, and the result it then has stands, as it did under asyncio.wait_for.
    timer = loop.call_at(deadline, expire)
    try:
        verdict = await check
    except asyncio.CancelledError:
        if not expired or task.uncancel() > 0:
            raise  # cancelled from outside
        return _finish(bound, start, f"timed out after {bound.timeout_ms} ms")
    except Exception as exc:  # a guard bug must not take the turn down with it
        return _finish(bound, start, f"{type(exc).__name__}: {exc}")
    finally:
        timer.cancel()
    return _finish(bound, start, verdict)


def _finish(bound: BoundGuard, start: float, outcome: Verdict | str) -> Verdict:
    """The verdict as the runner reports it; ``outcome`` is the check's verdict or, when it
    failed, what went wrong."""
    cfg = bound.config
    latency = (time.perf_counter() - start) * 1000
    common = {"guard": cfg.key, "kind": cfg.guard, "stage": bound.stage, "latency_ms": latency}
    if isinstance(outcome, str):
        closed = cfg.fail == "closed"
        return Verdict(
            flagged=closed,
            score=1.0 if closed else 0.0,
            category="guard_error",
            action="block" if closed else "allow",
            reason=f"guard failed ({outcome}); failing {cfg.fail}",
            error=outcome,
            **common,
        )
    return outcome.model_copy(
        update={**common, "action": cfg.action if outcome.flagged else "allow"}
    )


class _Resume:
    """Awaitable that carries on a coroutine whose first step has run and yielded ``step``:
    the task awaiting this drives the coroutine from there, as ``yield from`` would have."""

    __slots__ = ("_coro", "_step")

    def __init__(self, coro: Coroutine[Any, Any, Verdict], step: Any) -> None:
        self._coro = coro
        self._step = step

    def __await__(self) -> Generator[Any, Any, Verdict]:
        coro, step = self._coro, self._step
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation: the coroutine decides what it means
                try:
                    step = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    step = coro.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
