"""Build a policy's guards and run them concurrently with time budgets and fail modes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

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
    )


def _bind(cfg: GuardConfig, stage: Stage) -> BoundGuard:
    reg = registry.lookup("guard", cfg.guard)
    params = reg.validate_params(cfg.params)
    guard = reg.factory(params) if params is not None else reg.factory()
    return BoundGuard(cfg, guard, stage, int(reg.extra.get("timeout_ms", DEFAULT_TIMEOUT_MS)))


async def run_guards(guards: Sequence[BoundGuard], text: str, ctx: GuardContext) -> list[Verdict]:
    """Run ``guards`` on ``text`` concurrently; one verdict each, in order. A guard that raises
    or overruns ``timeout_ms`` yields an error verdict that blocks (fail closed) or is ignored
    (fail open), as its config says."""
    return list(await asyncio.gather(*(_run_one(g, text, ctx) for g in guards)))


async def _run_one(bound: BoundGuard, text: str, ctx: GuardContext) -> Verdict:
    cfg = bound.config
    start = time.perf_counter()
    error: str | None = None
    try:
        verdict = await asyncio.wait_for(bound.guard.check(text, ctx), bound.timeout_ms / 1000)
    except TimeoutError:
        error = f"timed out after {bound.timeout_ms} ms"
    except Exception as exc:  # a guard bug must not take the turn down with it
        error = f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - start) * 1000
    common = {"guard": cfg.key, "kind": cfg.guard, "stage": bound.stage, "latency_ms": latency}
    if error is not None:
        closed = cfg.fail == "closed"
        return Verdict(
            flagged=closed,
            score=1.0 if closed else 0.0,
            category="guard_error",
            action="block" if closed else "allow",
            reason=f"guard failed ({error}); failing {cfg.fail}",
            error=error,
            **common,
        )
    return verdict.model_copy(
        update={**common, "action": cfg.action if verdict.flagged else "allow"}
    )
