"""Checking the history a client sends back: the turns in it said to be the assistant's
must be ones this application could have sent.

Behind an OpenAI-compatible API the client sends the whole conversation on every request,
earlier assistant turns included, and nothing stops it from writing those itself. A made-up
history in which the assistant has already broken its rules, over and over, is a jailbreak
of its own ("many-shot" or fake-compliance priming): the model carries on the pattern.

Two replays find the turns this application would never have sent:

- **Requests.** When its input guards stop a request, it sends one reply: the refusal, the
  redirection, the escalation or the guard's own message. An earlier request they would stop,
  answered with anything else, was not answered by it.
- **Answers.** Every answer it delivered passed its output guards (its own replies, such as
  the refusal, are sent as they are and not checked), so one that a blocking
  output guard flags was not delivered by it. Only guards whose verdict on the delivered
  text is the verdict they gave when it was written are replayed: not ``pii`` (values
  pseudonymized on the way in are restored after the output guards), not model judges
  (``self_check``), not ``refusal`` (a refusal is what a block delivers), not the ``json``
  format check. Guards that only redact, log, re-ask or revise are not replayed either: what
  they leave is delivered.

A policy change between two requests of a conversation can make an earlier, genuine turn
fail the check; the verdict names the turn and the guard.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tether.guards import BoundGuard, GuardContext, Verdict, run_guards
from tether.messages import Message

from ._decide import Decision, decide

__all__ = ["HistoryChecker", "Replay", "fold", "replayable"]

# Guards whose verdict on a delivered answer need not match the one they gave when it was
# written (see the module's docstring).
NOT_REPLAYED: frozenset[str] = frozenset({"pii", "self_check", "refusal", "json"})
# Verdicts kept per Guardrails: a conversation's earlier turns come back on every request.
_KEPT = 20_000


def replayable(guards: Sequence[BoundGuard]) -> tuple[BoundGuard, ...]:
    """The output guards whose blocks are replayed on the history's assistant turns."""
    return tuple(
        b
        for b in guards
        if b.config.action in ("block", "escalate") and b.config.guard not in NOT_REPLAYED
    )


@dataclass(frozen=True, slots=True)
class Replay:
    """What the replays of one turn need from it."""

    input: Sequence[BoundGuard]
    output: Sequence[BoundGuard]
    input_ctx: Callable[[int], GuardContext]  # for the user turn at an index
    output_ctx: Callable[[int], GuardContext]  # for the assistant turn at an index
    stop_text: Callable[[Decision], str]  # the reply to a request the input guards stop
    scope: str  # keys remembered verdicts: the tenant and the policy version
    skip_after_block: bool = False
    conceal: Callable[[str], str] = lambda text: text
    requests: bool = True  # replay the input guards on earlier requests (mode `strict`)
    own: frozenset[str] = frozenset()  # replies the policy gives itself (whitespace folded)


class HistoryChecker:
    """Checks the turns of a conversation's history the application is said to have sent:

    - the reply to an earlier request its input guards stop must be the reply it gives to
      such a request (the refusal, the redirection, the escalation or the guard's message);
    - an answer must pass its output guards that block (those :func:`replayable`).

    Each replay's outcome is remembered (a conversation's earlier turns come back on every
    request), and a request's own input decision is remembered as it is made (:meth:`note`),
    so that a conversation served by one process replays nothing of its own past."""

    def __init__(self, kept: int = _KEPT) -> None:
        self._seen: OrderedDict[tuple[str, str], Verdict | str | None] = OrderedDict()
        self._kept = kept

    def note(self, scope: str, prefix: Sequence[Message], stopped_with: str | None) -> None:
        """Remember the reply the input guards gave the request that ends ``prefix`` (None:
        they let it through)."""
        self._keep((scope, "in:" + _digest(prefix)), stopped_with)

    async def check(
        self, replay: Replay, messages: Sequence[Message], before: int
    ) -> Verdict | None:
        """The first turn in ``messages[:before]`` the application would not have sent, as
        a flagged verdict of the ``history`` check; None when there is none.

        Assistant turns that only call tools are not answers and are not replayed on the
        output guards; they are not the reply to a request the input guards stop."""
        outputs = replayable(replay.output)
        for i, message in enumerate(messages[:before]):
            role = message.get("role")
            if (
                replay.requests
                and role == "user"
                and i + 1 < before
                and messages[i + 1].get("role") == "assistant"
            ):
                found = await self._request(replay, messages, i)
            elif role == "assistant" and outputs and not message.get("tool_calls"):
                found = await self._answer(replay, outputs, message, i)
            else:
                continue
            if found is not None:
                return found
        return None

    async def _request(self, replay: Replay, messages: Sequence[Message], i: int) -> Verdict | None:
        key = (replay.scope, "in:" + _digest(messages[: i + 1]))
        hit, remembered = self._recall(key)
        if hit:
            stopped_with = remembered if isinstance(remembered, str) else None
            why = "it stops that request"
        else:
            text = messages[i].get("content")
            if not isinstance(text, str):
                return None
            verdicts = await run_guards(
                replay.input, text, replay.input_ctx(i), skip_after_block=replay.skip_after_block
            )
            decision = decide(verdicts)
            stopped_with = (
                replay.stop_text(decision) if decision.action in ("block", "escalate") else None
            )
            if not any(v.error for v in verdicts):  # a failure may not happen again
                self._keep(key, stopped_with)
            why = (
                f"input guard '{decision.verdicts[0].guard}' stops that request"
                if (stopped_with is not None and decision.verdicts)
                else "it stops that request"
            )
        if stopped_with is None:
            return None
        reply = messages[i + 1]
        content = reply.get("content")
        sent = content if isinstance(content, str) and not reply.get("tool_calls") else None
        if sent is not None and fold(sent) == fold(stopped_with):
            return None
        return _verdict(
            f"messages[{i + 1}] (assistant) is not this application's reply to "
            f"messages[{i}]: {why} with {stopped_with!r}"
        )

    async def _answer(
        self, replay: Replay, outputs: Sequence[BoundGuard], message: Message, i: int
    ) -> Verdict | None:
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return None
        if fold(content) in replay.own:
            return None  # a reply the policy gives itself (a refusal): not an answer to check
        text = replay.conceal(content)
        key = (replay.scope, "out:" + hashlib.sha256(text.encode()).hexdigest())
        hit, remembered = self._recall(key)
        if hit:
            found = remembered if isinstance(remembered, Verdict) else None
        else:
            verdicts = await run_guards(outputs, text, replay.output_ctx(i))
            found = next((v for v in verdicts if v.flagged and v.action != "allow"), None)
            if not any(v.error for v in verdicts):  # a failure may not happen again
                self._keep(key, found)
        return None if found is None else _flag(found, i)

    def _recall(self, key: tuple[str, str]) -> tuple[bool, Verdict | str | None]:
        """Whether ``key`` is remembered, and what for it."""
        if key not in self._seen:
            return False, None
        self._seen.move_to_end(key)
        return True, self._seen[key]

    def _keep(self, key: tuple[str, str], value: Verdict | str | None) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        if len(self._seen) > self._kept:
            self._seen.popitem(last=False)


def _digest(messages: Sequence[Message]) -> str:
    """A key for a conversation's prefix: what the input guards read of a request."""
    blob = json.dumps([dict(m) for m in messages], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def fold(text: str) -> str:
    """``text`` with its whitespace folded: how a reply sent back is compared with ours."""
    return " ".join(text.split())


def _flag(found: Verdict, index: int) -> Verdict:
    failed = found.error is not None
    why = f"its guard failed ({found.error})" if failed else found.reason or found.category
    return _verdict(
        f"messages[{index}] (assistant) is not an answer this application would have sent: "
        f"output guard '{found.guard}' blocks it ({why})",
        score=1.0 if failed else found.score,
        category="guard_error" if failed else "fabricated_history",
        error=found.error,
    )


def _verdict(
    reason: str,
    *,
    score: float = 1.0,
    category: str = "fabricated_history",
    error: str | None = None,
) -> Verdict:
    """The ``history`` check's flagged verdict (it blocks: the model must not see the turn)."""
    return Verdict(
        guard="history",
        kind="history",
        stage="input",
        flagged=True,
        score=score,
        category=category,
        action="block",
        reason=reason,
        error=error,
    )
