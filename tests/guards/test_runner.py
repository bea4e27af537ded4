"""Running guards: concurrency, time budgets and fail modes."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import pytest

from tether.guards import BoundGuard, GuardContext, Verdict, run_guards
from tether.policy import GuardConfig

CTX = GuardContext(stage="input")


class Sleepy:
    name = "sleepy"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        await asyncio.sleep(self.seconds)
        return Verdict(flagged="bad" in text, reason="said bad")


class Broken:
    name = "broken"

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        raise RuntimeError("model file corrupt")


def bound(guard: object, **cfg: object) -> BoundGuard:
    return BoundGuard(GuardConfig(guard=guard.name, **cfg), guard, "input")  # type: ignore[arg-type]


class Recording:
    """Notes when each check starts and ends, to show the checks overlap."""

    name = "recording"
    log: ClassVar[list[str]] = []

    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        self.log.append(f"start {self.tag}")
        await asyncio.sleep(0.05)
        self.log.append(f"end {self.tag}")
        return Verdict(flagged="bad" in text, reason="said bad")


async def test_guards_run_concurrently_and_keep_order() -> None:
    Recording.log = []
    guards = [bound(Recording(str(i)), id=f"g{i}") for i in range(5)]
    verdicts = await run_guards(guards, "bad", CTX)
    # Every check started before the first one finished: they ran at the same time.
    assert [e.split()[0] for e in Recording.log[:5]] == ["start"] * 5
    assert [v.guard for v in verdicts] == ["g0", "g1", "g2", "g3", "g4"]
    assert all(v.flagged and v.action == "block" and v.stage == "input" for v in verdicts)
    assert all(v.latency_ms >= 40 for v in verdicts)


async def test_timeout_fails_closed_by_default_and_open_when_configured() -> None:
    closed, opened = await run_guards(
        [
            bound(Sleepy(5), id="slow_closed", timeout_ms=50),
            bound(Sleepy(5), id="slow_open", timeout_ms=50, fail="open"),
        ],
        "fine",
        CTX,
    )
    assert closed.flagged and closed.action == "block" and closed.error == "timed out after 50 ms"
    assert "failing closed" in closed.reason
    assert (
        not opened.flagged and opened.action == "allow" and opened.error == "timed out after 50 ms"
    )


async def test_exception_is_recorded_and_fails_closed() -> None:
    (verdict,) = await run_guards([bound(Broken())], "hello", CTX)
    assert verdict.flagged and verdict.action == "block"
    assert verdict.error == "RuntimeError: model file corrupt"
    assert verdict.category == "guard_error"


async def test_unflagged_verdict_is_allow_whatever_the_configured_action() -> None:
    (verdict,) = await run_guards([bound(Sleepy(0), action="escalate")], "fine", CTX)
    assert not verdict.flagged and verdict.action == "allow"


class Computing:
    """Finishes without ever waiting, as rule-based guards do."""

    name = "computing"

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        return Verdict(flagged="bad" in text, reason="said bad")


class BrokenLater:
    name = "broken_later"

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        await asyncio.sleep(0)
        raise RuntimeError("lost the model")


class NotACoroutine:
    """A check written as a plain method that returns some other awaitable."""

    name = "future"

    def check(self, text: str, ctx: GuardContext) -> asyncio.Future[Verdict]:
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        future.set_result(Verdict(flagged=True, reason="from a future"))
        return future


class RaisesOnCall:
    name = "raises_on_call"

    def check(self, text: str, ctx: GuardContext) -> asyncio.Future[Verdict]:
        raise ValueError("bad configuration")


class Overrunning:
    """Computes past its budget before it first waits, then waits for nothing."""

    name = "overrunning"

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        until = time.perf_counter() + 0.02
        while time.perf_counter() < until:  # computing: nothing can interrupt it
            pass
        await asyncio.sleep(0)
        return Verdict(flagged=True, reason="done")


async def test_checks_that_wait_and_checks_that_do_not_mix_in_order() -> None:
    Recording.log = []
    guards = [
        bound(Computing(), id="a"),
        bound(Recording("b"), id="b"),
        bound(BrokenLater(), id="c"),
        bound(Computing(), id="d"),
        bound(NotACoroutine(), id="e"),
        bound(RaisesOnCall(), id="f"),
    ]
    verdicts = await run_guards(guards, "bad", CTX)
    assert [v.guard for v in verdicts] == ["a", "b", "c", "d", "e", "f"]
    assert [v.flagged for v in verdicts] == [True] * 6
    assert verdicts[1].error is None and verdicts[4].reason == "from a future"
    assert verdicts[2].error == "RuntimeError: lost the model"
    assert verdicts[5].error == "ValueError: bad configuration"


async def test_a_check_past_its_budget_keeps_the_step_it_had_already_earned() -> None:
    # As under asyncio.wait_for: the step scheduled before the budget ran out still runs.
    (verdict,) = await run_guards([bound(Overrunning(), timeout_ms=1)], "x", CTX)
    assert verdict.error is None and verdict.reason == "done"


async def test_cancelling_the_run_cancels_the_checks_that_wait() -> None:
    cancelled: list[str] = []

    class Waiting:
        name = "waiting"

        async def check(self, text: str, ctx: GuardContext) -> Verdict:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.append(text)
                raise
            return Verdict(flagged=False)

    task = asyncio.ensure_future(run_guards([bound(Waiting(), timeout_ms=10_000)], "x", CTX))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == ["x"]


class Named:
    """A check that finishes at once (or after ``wait`` seconds) under a given guard name."""

    def __init__(self, name: str, wait: float | None = None) -> None:
        self.name = name
        self.wait = wait
        self.calls = 0

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        self.calls += 1
        if self.wait is not None:
            await asyncio.sleep(self.wait)
        return Verdict(flagged=f"<{self.name}>" in text, reason=f"said {self.name}")


async def test_after_a_block_only_guards_that_could_change_the_reply_run() -> None:
    cheap, scan, scope = Named("deny_list"), Named("jailbreak", wait=0), Named("scope", wait=0)
    worded = Named("other")
    guards = [
        bound(cheap),
        bound(scan, action="escalate"),  # block outranks escalate: cannot change the action
        bound(scope),  # its topic words the refusal and may escalate the turn
        bound(worded, message="Not that."),  # no blocking guard had a message yet
    ]
    verdicts = await run_guards(guards, "<deny_list>", CTX, skip_after_block=True)
    assert [v.guard for v in verdicts] == ["deny_list", "scope", "other"]
    assert (cheap.calls, scan.calls, scope.calls, worded.calls) == (1, 0, 1, 1)
    # Without the option every guard runs, as before.
    verdicts = await run_guards(guards, "<deny_list>", CTX)
    assert [v.guard for v in verdicts] == ["deny_list", "jailbreak", "scope", "other"]


async def test_a_blocking_guard_with_a_message_makes_later_messages_moot() -> None:
    first, second = Named("first", wait=0), Named("second")
    guards = [bound(first, message="First."), bound(second, message="Second.")]
    verdicts = await run_guards(guards, "<first> <second>", CTX, skip_after_block=True)
    assert [v.guard for v in verdicts] == ["first"] and second.calls == 0


async def test_nothing_is_skipped_when_nothing_blocks() -> None:
    guards = [
        bound(Named("a", wait=0), action="escalate"),
        bound(Named("b")),
        bound(Named("c", wait=0), action="redact"),
        bound(Named("d")),
    ]
    # Flagged but not blocking (escalate, redact): the rest still run.
    verdicts = await run_guards(guards, "<a> <c>", CTX, skip_after_block=True)
    assert [v.guard for v in verdicts] == ["a", "b", "c", "d"]
    assert [v.action for v in verdicts] == ["escalate", "allow", "redact", "allow"]


async def test_a_guard_that_fails_closed_blocks_and_what_follows_is_skipped() -> None:
    after = Named("after")
    verdicts = await run_guards(
        [bound(Sleepy(5), timeout_ms=30), bound(Broken()), bound(after)],
        "fine",
        CTX,
        skip_after_block=True,
    )
    (timed_out,) = verdicts
    assert timed_out.error == "timed out after 30 ms" and timed_out.action == "block"
    assert after.calls == 0
    # Failing open is no block: the next guard runs (and this one fails closed).
    verdicts = await run_guards(
        [bound(Sleepy(5), timeout_ms=30, fail="open"), bound(Broken()), bound(after)],
        "fine",
        CTX,
        skip_after_block=True,
    )
    assert [v.guard for v in verdicts] == ["sleepy", "broken"] and after.calls == 0


async def test_skipping_guards_run_one_after_another() -> None:
    Recording.log = []
    guards = [bound(Recording(str(i)), id=f"g{i}") for i in range(3)]
    verdicts = await run_guards(guards, "fine", CTX, skip_after_block=True)
    assert Recording.log == ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
    assert [v.guard for v in verdicts] == ["g0", "g1", "g2"]
