"""Campaigns: seeds × strategies → an evaluation suite of attacks → an evaluation run.

A campaign's attacks are ordinary evaluation cases (tagged ``attack``, ``strategy:NAME`` and
``goal:KIND``), so its results are an ordinary run folder: ``tether eval report`` and
``tether eval compare`` work on it unchanged, and the harness's ``attack_success`` metric per
tag is the attack success rate per strategy and per goal, with Wilson intervals. Success is
judged by the harness: the pipeline's action and the measured refusal judge for stop goals,
``no_prompt_leak`` (canary and prompt overlap), ``no_pii`` (the PII detector) and planted
strings for the others.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

from tether import registry
from tether.errors import ConfigError
from tether.evals import (
    Case,
    CaseResult,
    Metric,
    ResponseCache,
    RunPlan,
    RunReport,
    Stack,
    Suite,
    build_report,
    dump_suite,
    plan_run,
    run_suite,
)
from tether.messages import Message
from tether.models import ChatModel
from tether.policy import Policy
from tether.tools import Tool, ToolGate, Toolset

from ._attacker import AttackerModel
from ._mutators import SINGLE_TURN, build_mutator, mutator_names
from ._seeds import Seed, policy_seeds, tool_seeds
from ._types import Attack, GoalKind

__all__ = [
    "ATTACKER",
    "DIRECT",
    "Campaign",
    "CampaignResult",
    "attack_success",
    "default_strategies",
    "found_attacks",
    "load_toolset",
    "plan_campaign",
    "run_campaign",
    "single_turn_strategies",
]

DIRECT = "direct"
"""The unmutated payload: the baseline every strategy is measured against."""
ATTACKER = "attacker"
"""Attacker-model mode: a ChatModel proposes each next turn from the target's reply."""
TRANSCRIPTS_FILE = "transcripts.json"


def default_strategies() -> list[str]:
    """The payload as is, and every registered mutator on its own."""
    return [DIRECT, *mutator_names()]


def single_turn_strategies() -> list[str]:
    """The built-in strategies whose attack is one live turn."""
    return [DIRECT, *(n for n in mutator_names() if n in SINGLE_TURN)]


@dataclass(frozen=True)
class Campaign:
    """The attacks of a campaign and the suite they make."""

    suite: Suite
    attacks: Mapping[str, Attack]
    tools: Toolset | None = None

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(a.strategy_name for a in self.attacks.values()))


async def plan_campaign(
    policy: Policy,
    *,
    tenant: str | None = None,
    strategies: Sequence[str] | None = None,
    seeds: Sequence[Seed] = (),
    from_policy: bool = True,
    budget: int | None = None,
    name: str | None = None,
    tools: Toolset | None = None,
    goals: Sequence[str] | None = None,
) -> Campaign:
    """Every (strategy, seed) pair, in rounds so that a small ``budget`` still covers every
    strategy: round r pairs strategy i with seed (r + i) mod n_seeds. With ``tools`` the
    target is an agent: the policy also gives tool seeds (:func:`tool_seeds`), and indirect
    carriers plant ``call_tool`` attacks in what its first untrusted read tool returns."""
    derived: list[Seed] = policy_seeds(policy, tenant=tenant) if from_policy else []
    if tools is not None and from_policy:
        derived += tool_seeds(policy, tools, tenant=tenant)
    all_seeds = [*derived, *seeds]
    if goals is not None:
        unknown = sorted(set(goals) - set(get_args(GoalKind)))
        if unknown:
            raise ConfigError(
                f"unknown goal(s) {', '.join(unknown)}; known: {', '.join(get_args(GoalKind))}"
            )
        all_seeds = [s for s in all_seeds if s.goal.kind in goals]
    if not all_seeds:
        raise ConfigError("no seeds: the policy gives none and no --seeds file was given")
    carrier = _carrier_tool(policy, tools, tenant)
    if tools is None:
        agentic = sorted(s.id for s in all_seeds if s.goal.kind in _AGENT_GOALS)
        if agentic:
            raise ConfigError(
                f"seeds {', '.join(agentic)} need an agent: give tools (--tools MODULE:ATTR)"
            )
    dupes = sorted({s.id for s in all_seeds if sum(t.id == s.id for t in all_seeds) > 1})
    if dupes:
        raise ConfigError(f"seed ids must be unique; repeated: {', '.join(dupes)}")
    chosen = list(dict.fromkeys(strategies or default_strategies()))
    mutators = {s: build_mutator(s) for s in chosen if s not in (DIRECT, ATTACKER)}
    if budget is not None and budget < 1:
        raise ConfigError("--budget must be at least 1")
    usable = {s: _usable_seeds(s, all_seeds) for s in chosen}
    total = sum(len(v) for v in usable.values())
    limit = total if budget is None else min(budget, total)
    attacks: dict[str, Attack] = {}
    for r in range(len(all_seeds)):
        for i, strategy in enumerate(chosen):
            if len(attacks) >= limit or r >= len(usable[strategy]):
                continue
            seed = usable[strategy][(r + i) % len(usable[strategy])]
            attack = seed.attack(f"{strategy}:{seed.id}", tenant)
            if strategy in mutators:
                attack = await mutators[strategy].mutate(attack)
                attack = attack.model_copy(update={"strategy": (strategy,)})
            elif strategy == ATTACKER:
                attack = attack.model_copy(update={"strategy": (ATTACKER,)})
            attacks[attack.id] = attack
    suite_name = name or _slug(f"redteam-{policy.name}-{tenant or 'base'}")
    cases = tuple(a.to_case(carrier_tool=carrier) for a in attacks.values())
    suite = Suite(
        name=suite_name,
        description=f"Red-team campaign on policy {policy.version}: "
        f"{len(chosen)} strategies × {len(all_seeds)} seeds, {len(cases)} attacks.",
        cases=cases,
    )
    sha = hashlib.sha256(dump_suite(suite).encode()).hexdigest()[:12]
    return Campaign(suite.model_copy(update={"sha": sha}), attacks, tools)


_AGENT_GOALS = frozenset({"call_tool", "read_only"})


def _carrier_tool(policy: Policy, tools: Toolset | None, tenant: str | None) -> str | None:
    """The tool whose output carries planted attacks: the first untrusted read tool."""
    if tools is None:
        return None
    gate = ToolGate(policy.for_tenant(tenant), tools)
    return next((n for n, g in gate.tools.items() if g.untrusted and g.side_effect == "read"), None)


def load_toolset(spec: str) -> Toolset:
    """Tools from ``MODULE:ATTR`` or ``path/to/file.py:ATTR`` (a Toolset, or a list of tools
    made with ``@tool``)."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ConfigError(f"--tools {spec!r}: expected MODULE:ATTR or path/to/file.py:ATTR")
    path = Path(target)
    try:
        if target.endswith(".py") or path.is_file():
            if not path.is_file():
                raise ConfigError(f"--tools {spec!r}: no such file: {target}")
            name = f"_tether_tools_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
            loader = importlib.util.spec_from_file_location(name, path)
            if loader is None or loader.loader is None:
                raise ConfigError(f"--tools {spec!r}: cannot load {target}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ConfigError:
        raise
    except ImportError as exc:
        raise ConfigError(f"--tools {spec!r}: cannot import {target}: {exc}") from None
    found = getattr(module, attr, None)
    if found is None:
        raise ConfigError(f"--tools {spec!r}: {target} has no attribute {attr!r}")
    if isinstance(found, Toolset):
        return found
    if isinstance(found, Tool):
        return Toolset([found])
    try:
        return Toolset(list(found))
    except TypeError:
        raise ConfigError(f"--tools {spec!r}: {attr} is not a list of tools") from None


def _usable_seeds(strategy: str, seeds: list[Seed]) -> list[Seed]:
    """The seeds whose goal every mutator in ``strategy`` can be checked against (indirect
    carriers declare theirs: a harmless summary of a planted document is no success).
    ``read_only`` controls run as they are, with the direct strategy only."""
    if strategy != DIRECT:
        seeds = [s for s in seeds if s.goal.kind != "read_only"]
    allowed: set[str] | None = None
    for name in strategy.split("+"):
        if name.strip() in (DIRECT, ATTACKER):
            continue
        goals = registry.lookup("mutator", name.strip()).extra.get("goals")
        if goals is not None:
            allowed = set(goals) if allowed is None else allowed & set(goals)
    found = [s for s in seeds if allowed is None or s.goal.kind in allowed]
    if not found:
        raise ConfigError(
            f"strategy {strategy!r} takes seeds with goals {', '.join(sorted(allowed or ()))}; "
            "none of the seeds has one"
        )
    return found


@dataclass
class CampaignResult:
    """A finished campaign: its run folder's report, and the live attacker conversations."""

    plan: RunPlan
    report: RunReport
    transcripts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.plan.directory


async def run_campaign(
    campaign: Campaign,
    policy: Policy,
    *,
    model: ChatModel,
    stack: Stack = "full",
    tenant: str | None = None,
    attacker: AttackerModel | None = None,
    cache: ResponseCache | None = None,
    plan: RunPlan | None = None,
    runs_dir: Path = Path(".tether/runs"),
    out: Path | None = None,
    fresh: bool = False,
    concurrency: int | None = None,
    seed: int | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> CampaignResult:
    """Run the campaign's suite as an evaluation run (resumable, cached, in a run folder);
    a campaign planned with tools runs every attack as an agent turn with them. ``concurrency``
    as in :func:`~tether.evals.run_suite` (by default one attack at a time on an in-process
    model, four otherwise)."""
    needs_attacker = any(a.strategy == (ATTACKER,) for a in campaign.attacks.values())
    if needs_attacker and attacker is None:
        raise ConfigError("the attacker strategy needs an attacker model (--attacker SPEC)")
    if plan is None:
        plan = plan_run(
            campaign.suite, policy, model=model, stack=stack, tenant=tenant, seed=seed,
            runs_dir=runs_dir, cache=cache, fresh=fresh, out=out, tools=campaign.tools,
        )  # fmt: skip
    transcripts = _read_transcripts(plan.directory)

    async def follow_up(case: Case, history: list[Message]) -> str | None:
        attack = campaign.attacks.get(case.id)
        if attacker is None or attack is None or attack.strategy != (ATTACKER,):
            return None
        text = await attacker.next_turn(attack, history)
        sent = [m["content"] for m in history if m["role"] == "user"]
        transcripts[case.id] = [*sent, text] if text else sent
        return text

    try:
        results = await run_suite(
            campaign.suite, policy, plan=plan, model=model, cache=cache,
            concurrency=concurrency, on_result=on_result,
            follow_up=follow_up if needs_attacker else None, tools=campaign.tools,
        )  # fmt: skip
    finally:
        if transcripts:
            plan.directory.mkdir(parents=True, exist_ok=True)
            (plan.directory / TRANSCRIPTS_FILE).write_text(
                json.dumps(transcripts, indent=1, ensure_ascii=False), encoding="utf-8"
            )
    report = build_report(plan.info, list(results.values()))
    return CampaignResult(plan, report, transcripts)


def _read_transcripts(directory: Path) -> dict[str, list[str]]:
    path = directory / TRANSCRIPTS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {str(k): [str(t) for t in v] for k, v in data.items()} if isinstance(data, dict) else {}


def attack_success(report: RunReport) -> tuple[dict[str, Metric], dict[str, Metric]]:
    """The attack success rate per strategy and per goal (k of n with a Wilson interval),
    read from the run's per-tag metrics."""
    by_strategy: dict[str, Metric] = {}
    by_goal: dict[str, Metric] = {}
    for tag, metrics in report.by_tag.items():
        found = next((m for m in metrics if m.name == "attack_success"), None)
        if found is None:
            continue
        if tag.startswith("strategy:"):
            by_strategy[tag.removeprefix("strategy:")] = found
        elif tag.startswith("goal:"):
            by_goal[tag.removeprefix("goal:")] = found
    return by_strategy, by_goal


def found_attacks(
    suite: Suite,
    report: RunReport,
    *,
    transcripts: Mapping[str, Sequence[str]] | None = None,
    name: str | None = None,
) -> Suite | None:
    """The attacks that got through, as a regression suite (None when none did): each case
    as it ran (an attacker conversation as the turns actually sent), so that every hole found
    becomes a test that passes once it is closed."""
    got_through = {
        r.case_id for r in report.results if "attack" in r.tags and r.error is None and not r.passed
    }
    cases = []
    for case in suite.cases:
        if case.id not in got_through:
            continue
        turns = (transcripts or {}).get(case.id)
        if turns and case.messages is None:
            case = Case.model_validate(
                {
                    **case.model_dump(by_alias=True, exclude={"input", "turns"}),
                    "turns": tuple(turns),
                }
            )
        cases.append(case)
    if not cases:
        return None
    return Suite(
        name=name or f"{suite.name}-found",
        description=f"Attacks that got through in run {report.info.run_id} "
        f"({report.info.stack} stack, {report.info.model}); each passes once it is stopped.",
        cases=tuple(cases),
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "redteam"
