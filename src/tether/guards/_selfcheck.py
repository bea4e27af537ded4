"""An LLM judge as a guard: any ChatModel checks text against a rubric from the policy."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from pydantic import Field

from tether.errors import GuardError
from tether.registry import register

from ._base import GuardContext, GuardParams, Verdict, tighten
from ._json import extract_json

__all__ = ["SelfCheckGuard", "SelfCheckParams"]

_JUDGE = """You are a strict reviewer. Decide whether the TEXT breaks the RULES.
RULES:
{rubric}

TEXT ({role}):
<<<
{text}
>>>

Reply with one JSON object only: {{"violation": true or false, "reason": "<one sentence>"}}"""


class SelfCheckParams(GuardParams):
    rubric: str = Field(..., min_length=1, description="The rules the judge checks, in words.")
    model: str | None = Field(
        None, description="Judge model spec; default: the policy's own model."
    )
    cache_size: int = Field(1024, ge=0, le=100_000)
    max_tokens: int = Field(96, ge=16, le=1024)
    fail_on_unparseable: bool = Field(
        True,
        description="A reply that is not the JSON verdict counts as a guard error (fail mode "
        "applies); false: it counts as no violation.",
        json_schema_extra=tighten("higher"),
    )


@register("guard", "self_check", params=SelfCheckParams, stages=("input", "output"))
class SelfCheckGuard:
    """Asks a model whether the text breaks the policy's rubric, for rules patterns can't
    express. Results are cached per text and rubric; the judge's own failures are guard
    errors, so the guard's fail mode decides."""

    name = "self_check"

    def __init__(self, params: SelfCheckParams, model: Any | None = None) -> None:
        self.params = params
        self._model = model
        self._cache: OrderedDict[str, Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def _judge(self, ctx: GuardContext) -> Any:
        if self._model is not None:
            return self._model
        if self.params.model is not None:
            from tether.models import load_model

            self._model = load_model(self.params.model)
            return self._model
        model = ctx.metadata.get("model")
        if model is None:
            raise GuardError("self_check has no judge: set params.model or run it in a pipeline")
        return model

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        key = hashlib.sha256(f"{self.params.rubric}\0{ctx.stage}\0{text}".encode()).hexdigest()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        role = "the user's message" if ctx.stage == "input" else "the assistant's answer"
        prompt = _JUDGE.format(rubric=self.params.rubric.strip(), role=role, text=text)
        reply = await self._judge(ctx).generate(
            [{"role": "user", "content": prompt}],
            temperature=0.0,
            max_tokens=self.params.max_tokens,
            seed=0,
        )
        verdict = self._parse(reply.text)
        if self.params.cache_size:
            with self._lock:
                self._cache[key] = verdict
                while len(self._cache) > self.params.cache_size:
                    self._cache.popitem(last=False)
        return verdict

    def _parse(self, reply: str) -> Verdict:
        found = extract_json(reply)
        value = found[0] if found else None
        if not isinstance(value, dict) or not isinstance(value.get("violation"), bool):
            if self.params.fail_on_unparseable:
                raise GuardError(f"the judge's reply is not the JSON verdict: {reply[:120]!r}")
            return Verdict(
                flagged=False, category="self_check", reason="judge reply unparseable; ignored"
            )
        reason = str(value.get("reason") or "").strip() or "no reason given"
        flagged = value["violation"]
        return Verdict(
            flagged=flagged,
            score=1.0 if flagged else 0.0,
            category="self_check",
            reason=f"judge: {reason}" if flagged else f"judge found no violation: {reason}",
        )
