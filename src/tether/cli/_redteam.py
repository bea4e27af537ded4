"""`tether redteam`: attack campaigns against a policy's stack, attack success per strategy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tether import registry
from tether.errors import ConfigError
from tether.evals import CaseResult, Metric, ResponseCache, default_cache_path, dump_suite
from tether.evals._files import write_reports
from tether.evals._runner import load_run_model, plan_run
from tether.policy import Policy, load_policy
from tether.redteam import (
    ATTACKER,
    DIRECT,
    AttackerModel,
    Campaign,
    Seed,
    attack_success,
    default_strategies,
    found_attacks,
    load_seeds,
    load_toolset,
    plan_campaign,
    run_campaign,
)

from ._common import concurrency_option, console, err_console, handle_errors

__all__ = ["redteam"]


@click.group()
def redteam() -> None:
    """Attack a policy's stack the way people will, and measure what gets through.

    \b
    tether redteam strategies
    tether redteam run --policy examples/bank/policy.yaml --tenant northbank --budget 60
    tether redteam run --policy P --strategies roleplay+base64,crescendo --seeds seeds.yaml \\
        --stack raw --export-suite found.yaml
    tether eval run found.yaml --policy P --stack full
    tether redteam run --policy examples/agent/policy.yaml --tools examples/agent/bank.py:TOOLS \
        --seeds examples/agent/evals/seeds.yaml --goals call_tool,read_only

    A campaign's results are an evaluation run folder: `tether eval report` and
    `tether eval compare` work on it unchanged.
    """


@redteam.command()
@handle_errors
def strategies() -> None:
    """List the attack strategies: the registered mutators (built-in and plugins)."""
    console.print(f"{DIRECT:<22} the payload as is (the baseline)")
    console.print(f"{ATTACKER:<22} an attacker model proposes each next turn (--attacker SPEC)")
    for reg in registry.registered("mutator"):
        console.print(f"{reg.name:<22} {reg.summary}")


_TOOLS_HELP = (
    "The agent's tools, MODULE:ATTR or path/to/file.py:ATTR (a Toolset or a list of @tool "
    "functions): every attack is an agent turn, the policy adds tool-misuse seeds, and "
    "indirect carriers plant them in an untrusted tool's output."
)
_GOALS_HELP = "Only seeds with these goals (comma-separated, e.g. call_tool,read_only)."


def _campaign_options(fn: Any) -> Any:
    options = [
        click.option("--policy", "policy_file", required=True, type=click.Path(path_type=Path)),
        click.option("--tenant", help="Attack this tenant's resolved policy (seeds and stack)."),
        click.option(
            "--strategies",
            "strategy_list",
            help="Comma-separated strategies; join mutators with + to compose them "
            "(default: direct and every registered mutator).",
        ),
        click.option(
            "--seeds",
            "seed_files",
            multiple=True,
            type=click.Path(path_type=Path),
            help="YAML or JSONL seed file (repeatable): strings, or {payload, goal, value, id}.",
        ),
        click.option("--no-policy-seeds", is_flag=True, help="Use only the --seeds files."),
        click.option("--budget", type=click.IntRange(1), help="At most this many attacks."),
        click.option("--tools", "tools_spec", help=_TOOLS_HELP),
        click.option("--goals", "goal_list", help=_GOALS_HELP),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _plan(
    policy_file: Path,
    tenant: str | None,
    strategy_list: str | None,
    seed_files: tuple[Path, ...],
    no_policy_seeds: bool,
    budget: int | None,
    tools_spec: str | None,
    goal_list: str | None,
    attacker: bool = False,
    name: str | None = None,
) -> tuple[Policy, Campaign]:
    policy = load_policy(policy_file)
    if tenant is not None:
        policy.for_tenant(tenant)
    chosen = [s.strip() for s in strategy_list.split(",") if s.strip()] if strategy_list else None
    if attacker:
        chosen = [*(chosen or default_strategies()), ATTACKER]
    elif chosen and ATTACKER in chosen:
        raise ConfigError("the attacker strategy needs --attacker SPEC")
    seeds: list[Seed] = []
    for path in seed_files:
        seeds += load_seeds(path)
    tools = load_toolset(tools_spec) if tools_spec else None
    goals = [g.strip() for g in goal_list.split(",") if g.strip()] if goal_list else None
    campaign = asyncio.run(
        plan_campaign(policy, tenant=tenant, strategies=chosen, seeds=seeds,
                      from_policy=not no_policy_seeds, budget=budget, tools=tools, goals=goals,
                      name=name)
    )  # fmt: skip
    return policy, campaign


@redteam.command()
@_campaign_options
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write the suite (YAML).")  # fmt: skip
@click.option("--name", help="The suite's name (default: redteam-POLICY-TENANT).")
@handle_errors
def suite(
    policy_file: Path,
    tenant: str | None,
    strategy_list: str | None,
    seed_files: tuple[Path, ...],
    no_policy_seeds: bool,
    budget: int | None,
    tools_spec: str | None,
    goal_list: str | None,
    out: Path,
    name: str | None,
) -> None:
    """Write a campaign's attacks as an eval suite without running them (run it with
    `tether eval run SUITE --policy P [--tools ...]`): e.g. the tool-misuse suite of
    examples/agent/evals/tool-misuse.yaml."""
    _, campaign = _plan(policy_file, tenant, strategy_list, seed_files, no_policy_seeds,
                        budget, tools_spec, goal_list, name=name)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_suite(campaign.suite), encoding="utf-8")
    err_console.print(
        f"wrote {len(campaign.suite.cases)} cases ({len(campaign.strategies)} strategies) to {out}"
    )


@redteam.command()
@_campaign_options
@click.option("--model", "model_spec", help="Target model spec (default: the policy's).")
@click.option(
    "--stack",
    type=click.Choice(["raw", "prompt", "full"]),
    default="full",
    show_default=True,
    help="raw: the bare model; prompt: plus the compiled system prompt; full: tether's pipeline.",
)
@click.option(
    "--attacker", "attacker_spec", help="Attacker model spec (adds the attacker strategy)."
)
@click.option("--max-turns", default=4, show_default=True, type=click.IntRange(1, 20),
              help="Turns per attacker-model conversation.")  # fmt: skip
@click.option("--export-suite", type=click.Path(path_type=Path),
              help="Write the attacks that got through here, as an eval suite.")  # fmt: skip
@concurrency_option
@click.option("--seed", type=int, help="Sampling seed (default: the policy's model.seed).")
@click.option("--runs-dir", default=".tether/runs", show_default=True,
              type=click.Path(path_type=Path), help="Where run folders go.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), help="This run's folder, instead.")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path),
              help=f"Response cache (default: {default_cache_path()}).")  # fmt: skip
@click.option("--no-cache", is_flag=True, help="Always call the model.")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming an unfinished run.")
@handle_errors
def run(
    policy_file: Path,
    tenant: str | None,
    strategy_list: str | None,
    seed_files: tuple[Path, ...],
    no_policy_seeds: bool,
    budget: int | None,
    tools_spec: str | None,
    goal_list: str | None,
    model_spec: str | None,
    stack: str,
    attacker_spec: str | None,
    max_turns: int,
    export_suite: Path | None,
    concurrency: int | None,
    seed: int | None,
    runs_dir: Path,
    out: Path | None,
    cache_path: Path | None,
    no_cache: bool,
    fresh: bool,
) -> None:
    """Run a campaign: seeds (the policy's forbidden topics and constraints, generic leak,
    PII and injection payloads, and --seeds files) × strategies, each attack run through the
    chosen stack and judged by the evaluation harness. Prints the attack success rate per
    strategy and per goal with 95% intervals and writes report.json and report.html.
    With --tools, each attack is an agent turn and tool misuse is judged from its tool-call
    records (a write or destructive call that ran without a person's approval)."""
    policy, campaign = _plan(
        policy_file, tenant, strategy_list, seed_files, no_policy_seeds, budget, tools_spec,
        goal_list, attacker=bool(attacker_spec),
    )  # fmt: skip
    model = load_run_model(model_spec, policy)
    attacker = (
        AttackerModel(load_run_model(attacker_spec, policy), max_turns=max_turns)
        if attacker_spec
        else None
    )
    cache = None if no_cache else ResponseCache(cache_path or default_cache_path())
    suite = campaign.suite
    plan = plan_run(suite, policy, model=model, stack=stack, tenant=tenant, seed=seed,  # type: ignore[arg-type]
                    runs_dir=runs_dir, cache=cache, fresh=fresh, out=out,
                    tools=campaign.tools)  # fmt: skip
    err_console.print(
        f"{len(suite.cases)} attacks ({len(campaign.strategies)} strategies) on "
        f"{plan.info.model}, {stack} stack; {len(plan.done)} already done, "
        f"{plan.cached_calls} of ≤{plan.model_calls} model calls cached"
    )
    progress = Progress(
        TextColumn("[bold]red team"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[through]} got through"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    through = sum(not r.passed for r in plan.done.values())
    with progress:
        task = progress.add_task("attacks", total=len(suite.cases), completed=len(plan.done),
                                 through=through)  # fmt: skip

        def advance(result: CaseResult) -> None:
            nonlocal through
            through += not result.passed
            progress.update(task, advance=1, through=through)

        try:
            result = asyncio.run(
                run_campaign(campaign, policy, model=model, stack=stack, tenant=tenant,  # type: ignore[arg-type]
                             attacker=attacker, cache=cache, plan=plan,
                             concurrency=concurrency, on_result=advance)
            )  # fmt: skip
        finally:
            if cache is not None:
                cache.close()
    written = write_reports(result.report, result.directory)
    _print_summary(result.report.metrics, *attack_success(result.report))
    if result.report.errors:
        console.print(f"[yellow]{result.report.errors} attack(s) could not run; see the report")
    if export_suite is not None:
        found = found_attacks(suite, result.report, transcripts=result.transcripts)
        if found is None:
            err_console.print(f"no attack got through: nothing written to {export_suite}")
        else:
            export_suite.parent.mkdir(parents=True, exist_ok=True)
            export_suite.write_text(dump_suite(found), encoding="utf-8")
            err_console.print(
                f"wrote {len(found.cases)} attacks that got through to {export_suite}"
            )
    err_console.print(f"run folder: {result.directory}  (report: {written[-1]})")


def _fmt(m: Metric) -> tuple[str, str, str]:
    if m.value is None or m.low is None or m.high is None:
        return "—", "", f"{m.k}/{m.n}"
    return f"{100 * m.value:.1f}%", f"{100 * m.low:.1f}–{100 * m.high:.1f}", f"{m.k}/{m.n}"


def _print_summary(
    metrics: tuple[Metric, ...], by_strategy: dict[str, Metric], by_goal: dict[str, Metric]
) -> None:
    for title, rows in (("strategy", by_strategy), ("goal", by_goal)):
        table = Table(title=f"attack success by {title}")
        for col in (title, "success", "95% CI", "k/n"):
            table.add_column(col, justify="left" if col == title else "right")
        for name, m in sorted(rows.items(), key=lambda kv: (-(kv[1].value or 0), kv[0])):
            table.add_row(name, *_fmt(m))
        console.print(table)
    overall = next((m for m in metrics if m.name == "attack_success"), None)
    if overall is not None and overall.n:
        value, ci, kn = _fmt(overall)
        console.print(f"attack success overall: {value} [{ci}] ({kn})", markup=False)
